"""A tenant recharges a bound account (owner or accountant): the site's recharge page
(choices, limits, channels), the order opened through the payment service, and the order's
status for the mini-program to poll. The credit itself arrives as the platform's signed
notification (server.payments), never from the tenant.

Errors: an amount outside the limits or a channel the site does not offer → 422 naming the
field; a closed account → 409; the platform unreachable or refusing → 502; no merchant keys
→ 503. The limits are the site's, inside the platform's own (SHUIDIAN_PAY_MIN/MAX_…).
"""

from __future__ import annotations

from typing import Any

from server.accounts.models import Account, AccountStatus
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.payments.errors import ChannelNotConfigured, OrderNotFound, PlatformUnavailable
from server.payments.models import RechargeOrder
from server.payments.providers.base import AlipayOrder, Channel, ProviderError
from server.payments.service.orders import create_recharge_order
from server.payments.service.runtime import Payments
from server.places.models import Site
from server.tenant.service.access import bound_account


class AccountClosed(Conflict):
    code = "account_closed"


class PaymentsNotConfigured(ChannelNotConfigured):
    """No merchant keys for the channel: nothing can be paid online (503)."""


NOT_CONFIGURED = "在线充值暂未开通，请联系物业缴费"


async def recharge_options(payments: Payments, identity_id: int, account_id: int) -> dict[str, Any]:
    """What the recharge page offers for a bound account."""
    account, _role = await bound_account(identity_id, account_id)
    return _options(payments, await Site.get(id=account.site_id))


def _options(payments: Payments, site: Site) -> dict[str, Any]:
    low, high = _limits(payments, site)
    choices = [int(c) for c in site.recharge_choices_fen or [] if low <= int(c) <= high]
    channels = ["wechat", "alipay"] if site.alipay_enabled else ["wechat"]
    return {"choices_fen": choices, "min_fen": low, "max_fen": high, "channels": channels}


def _limits(payments: Payments, site: Site) -> tuple[int, int]:
    cfg = payments.settings
    return max(site.recharge_min_fen, cfg.min_recharge_fen), min(
        site.recharge_max_fen, cfg.max_recharge_fen
    )


async def create_recharge(
    payments: Payments,
    identity_id: int,
    openid: str,
    account_id: int,
    amount_fen: int,
    channel: str,
) -> dict[str, Any]:
    """Open an order for the bound account; the answer carries what the payment sheet needs."""
    account, _role = await bound_account(identity_id, account_id)
    if account.status != AccountStatus.OPEN:
        raise AccountClosed("账户已销户，不能充值", account_id=account_id)
    options = _options(payments, await Site.get(id=account.site_id))
    if channel not in options["channels"]:
        raise ValidationFailed("该园区未开通此支付方式", field="channel")
    if not options["min_fen"] <= amount_fen <= options["max_fen"]:
        raise ValidationFailed(
            f"充值金额应在 {options['min_fen'] / 100:.2f} 至 {options['max_fen'] / 100:.2f} 元之间",
            field="amount_fen",
        )
    return await _open(payments, account, amount_fen, Channel(channel), openid)


async def _open(
    payments: Payments, account: Account, amount_fen: int, channel: Channel, openid: str
) -> dict[str, Any]:
    try:
        order, created = await create_recharge_order(
            payments, account.id, channel, amount_fen, actor=f"tenant:{openid}",
            payer_openid=openid if channel is Channel.WECHAT else "",
        )  # fmt: skip
    except ChannelNotConfigured as exc:
        raise PaymentsNotConfigured(NOT_CONFIGURED, channel=channel.value) from exc
    except OrderNotFound as exc:  # closed meanwhile
        raise AccountClosed("账户已销户，不能充值", account_id=account.id) from exc
    except ProviderError as exc:  # the order stays `created`: the poller queries, expires it
        if exc.code == "NOT_CONFIGURED":
            raise PaymentsNotConfigured(NOT_CONFIGURED, channel=channel.value) from exc
        raise PlatformUnavailable("支付平台暂不可用，请稍后再试", channel=channel.value) from exc
    pay = (
        {"pay_url": created.wap_url}
        if isinstance(created, AlipayOrder)
        else created.pay_params.as_dict()
    )
    return {
        "order_no": order.out_trade_no,
        "amount_fen": order.amount_fen,
        "channel": channel.value,
        "status": order.status.value,
        "expires_at": order.expires_at.isoformat(),
        "pay": pay,
    }


async def order_status(identity_id: int, order_no: str) -> dict[str, Any]:
    """An order of an account bound to the caller; `NotFound` for any other."""
    order = await RechargeOrder.filter(
        out_trade_no=order_no, account__bindings__identity_id=identity_id
    ).first()
    if order is None:
        raise NotFound("订单不存在", order_no=order_no)
    return {
        "order_no": order.out_trade_no,
        "account_id": order.account_id,
        "amount_fen": order.amount_fen,
        "channel": order.channel.value,
        "status": order.status.value,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "expires_at": order.expires_at.isoformat(),
    }
