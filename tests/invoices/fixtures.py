"""Invoice test helpers: an organisation set up for invoicing, and payments that went
through the real crediting paths (an online order credited as the platform's notification
would, a counter payment recorded by staff)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from server.accounts.models import Account
from server.invoices.service.buyer import Buyer, checked_buyer
from server.invoices.service.setup import set_item, set_profile
from server.payments.models import RechargeOrder
from server.payments.providers.base import Channel
from server.payments.service import credit_order, record_counter_payment

SELLER_TAX_ID = "91350100M000100Y43"
_seq = itertools.count(1)


async def set_up_invoicing(organisation_id: int, *, auto_issue_max_fen: int = 0) -> None:
    await set_profile(
        organisation_id, seller_name="南山物业服务有限公司", seller_tax_id=SELLER_TAX_ID,
        seller_address="深圳市南山区科技园 1 号", seller_phone="0755-26000000", drawer="李会计",
        auto_issue_max_fen=auto_issue_max_fen, actor="staff:1",
    )  # fmt: skip
    await set_item(organisation_id, "electricity", "*供电*电费", "1100101000000000000", "13%",
                   unit="千瓦时", actor="staff:1")  # fmt: skip
    await set_item(organisation_id, "water", "*水冰雪*自来水", "1100301010000000000", "9%",
                   unit="吨", actor="staff:1")  # fmt: skip


async def paid_online(account: Account, amount_fen: int, *, days_ago: int = 0) -> str:
    """A WeChat Pay recharge order, credited through the payment service; its number."""
    n = next(_seq)
    order = await RechargeOrder.create(
        out_trade_no=f"RINV{n:06d}{account.id}", account_id=account.id, channel=Channel.WECHAT,
        amount_fen=amount_fen, expires_at=datetime.now(UTC) + timedelta(hours=2),
        created_by="tenant:o-inv",
    )  # fmt: skip
    await credit_order(
        Channel.WECHAT, order.out_trade_no, amount_fen=amount_fen,
        transaction_id=f"4200{n:024d}", source="notify",
        paid_at=datetime.now(UTC) - timedelta(days=days_ago),
    )  # fmt: skip
    return order.out_trade_no


async def paid_counter(account: Account, amount_fen: int) -> str:
    payment, _ = await record_counter_payment(
        account.id, "cash", amount_fen, f"SJ-INV-{next(_seq)}", actor="staff:1"
    )
    return f"C{payment.id}"


def company(kind: str = "normal", **kw: str) -> Buyer:
    values = {"tax_id": "91110108MA01KPGK0L", "email": "finance@example.com"} | kw
    return checked_buyer(kind, "company", "深圳市甲乙科技有限公司", **values)
