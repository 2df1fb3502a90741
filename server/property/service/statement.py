"""The real-time bill (实时账单) of an account for a month: everything that moved the tenant's
position in the month, by cause, between the opening and the closing position — read from
the ledger, so it adds up to the ledger by construction (and a test proves it).

The position is the wallet plus the receivable (bills owed, negative): a fee billed lowers it
as a fee deducted does; paying a bill from the wallet moves nothing between them. Causes, from
the other side of each transaction's legs: energy (electricity and water usage, with the
month's use and exact amounts by tariff band from billing's lines), the capacity / demand
charge, each fee item, the common-area share, the loss share, payments (money in through a
channel), refunds, adjustments, transfers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections

from server.core.errors import NotFound
from server.ledger import posting
from server.ledger.sql import fetch, in_list
from server.ledger.statement import movements, position_at
from server.property import fees
from server.property.models import FeeItem

SECTIONS = (
    ("energy", "电费、水费"),
    ("capacity", "基本电费（容量/需量）"),
    ("fees", "租金、物业费等"),
    ("common", "公摊费用"),
    ("loss", "线损分摊"),
    ("payments", "缴费、充值"),
    ("refunds", "退款"),
    ("adjustments", "调账、冲正"),
    ("transfers", "过户转账"),
)
_BY_CODE = {
    "revenue:electricity": ("energy", "电费"),
    "revenue:water": ("energy", "水费"),
    "revenue:capacity": ("capacity", "基本电费"),
    "revenue:common_share": ("common", "公摊费用"),
    "revenue:loss_share": ("loss", "线损分摊"),
    "refunds_payable": ("refunds", "退款"),
    "adjustments": ("adjustments", "调账"),
}
_CHANNELS = {"wechat": "微信支付", "alipay": "支付宝", "cash": "现金", "bank": "银行转账"}


@dataclass(frozen=True, slots=True)
class BandUse:
    label: str  # the tariff's band ("峰", "谷", "平价"…)
    quantity: Decimal  # kWh or m³
    amount: Decimal  # exact yuan, before rounding to fen


@dataclass(frozen=True, slots=True)
class Line:
    section: str
    label: str
    amount_fen: int  # + raised the position, − lowered it


@dataclass(frozen=True, slots=True)
class RealtimeBill:
    account_id: int
    month: str
    opening_fen: int
    closing_fen: int
    lines: tuple[Line, ...]
    bands: tuple[BandUse, ...]

    def section_fen(self, section: str) -> int:
        return sum(ln.amount_fen for ln in self.lines if ln.section == section)

    @property
    def adds_up(self) -> bool:
        return self.opening_fen + sum(ln.amount_fen for ln in self.lines) == self.closing_fen


def _classify(code: str, item_names: dict[int, str]) -> tuple[str, str]:
    if code in _BY_CODE:
        return _BY_CODE[code]
    head, _, tail = code.partition(":")
    if head == "clearing":
        return "payments", f"缴费/充值（{_CHANNELS.get(tail, tail)}）"
    if head == "wallet":
        return "transfers", "过户转账"
    if code.startswith("revenue:item:"):
        return "fees", item_names.get(int(code[13:]), posting.spec_of(code).name)
    if head == "revenue":
        return "fees", posting.spec_of(code).name.removesuffix("收入")
    return "adjustments", code


async def realtime_bill(account_id: int, month: str, tz: ZoneInfo) -> RealtimeBill:
    """The account's month (the caller checked the account is the caller's to see)."""
    year, mon = fees.parse_month(month)
    span = fees.month_span(year, mon)
    start = datetime(span.start.year, span.start.month, 1, tzinfo=tz)
    end = datetime(span.end.year, span.end.month, 1, tzinfo=tz)
    moved = await movements(account_id, start, end)
    items = [int(m.counter_code[13:]) for m in moved if m.counter_code.startswith("revenue:item:")]
    names = dict(await FeeItem.filter(id__in=items).values_list("id", "name")) if items else {}
    sums: dict[tuple[str, str], int] = {}
    for m in moved:
        key = _classify(m.counter_code, names)
        sums[key] = sums.get(key, 0) + m.amount_fen
    order = {name: i for i, (name, _) in enumerate(SECTIONS)}
    lines = tuple(
        Line(section, label, fen)
        for (section, label), fen in sorted(
            sums.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])
        )
        if fen
    )
    energy = [m.transaction_id for m in moved if _classify(m.counter_code, names)[0] == "energy"]
    return RealtimeBill(
        account_id, f"{year:04d}-{mon:02d}", await position_at(account_id, start),
        await position_at(account_id, end), lines, await _bands(energy),
    )  # fmt: skip


async def _bands(transaction_ids: Sequence[int]) -> tuple[BandUse, ...]:
    """Use and exact amount per tariff band of the usage charges posted as these."""
    if not transaction_ids:
        return ()
    conn = connections.get("default")
    found: dict[str, tuple[Decimal, Decimal]] = {}
    ids = list(transaction_ids)
    for i in range(0, len(ids), 5000):
        where, params = in_list(conn, "transaction_id", ids[i : i + 5000], 1, "bigint")
        for r in await fetch(conn, f"SELECT lines FROM usage_charge WHERE {where}", params):
            raw: Any = r["lines"]
            for label, quantity, _price, amount in json.loads(raw) if isinstance(raw, str) else raw:
                q, a = found.get(label, (Decimal(0), Decimal(0)))
                found[label] = (q + Decimal(quantity), a + Decimal(amount))
    return tuple(BandUse(label, q, a) for label, (q, a) in sorted(found.items()))


async def realtime_bill_in_scope(
    site_ids: Sequence[int], account_id: int, month: str, tz: ZoneInfo
) -> RealtimeBill:
    """The staff's view: the account must be in one of `site_ids` (else NotFound)."""
    from server.accounts.models import Account

    if not await Account.filter(id=account_id, site_id__in=list(site_ids)).exists():
        raise NotFound("账户不存在")
    return await realtime_bill(account_id, month, tz)
