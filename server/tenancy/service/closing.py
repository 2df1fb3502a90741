"""销户: close an account — final reading, settlement of the last usage, refund of what
remains — never leaving money in a closed wallet.

    close_account(payments, site_ids, account_id, request, actor=…)
      1. final reading of each active meter: entered by staff (ingested and billed like any
         reading, `server.billing.pipeline.process_readings`), or the latest reading the
         meter gave (after a 点抄, `read_meters_now`), whose pending delta is billed now;
      2. arrears (a negative wallet after settlement) must be paid first: `Arrears`;
      3. the closing row (one per account: a re-submit continues it, never repeats it);
      4. refund the wallet: through the original online channel first (the account's paid
         orders, newest first, each up to what it still allows: `request_refund`), the rest
         by a counter refund (cash or bank transfer, `request_counter_refund`);
      5. complete when the wallet is zero and every refund is paid: the account is closed,
         its meters detached (they keep their room).
    continue_closing(...)   after approvals (or a failed online refund): steps 4–5 again.

While a refund waits for a second person's approval (or for the platform) the account stays
open in the "closing" state (`AccountClosing.status` pending): `closing_panel` shows it.
`closing_statement` is the settlement statement (结算单): readings, usage, money, refunds.

Meter-billed meters (表端计费) that still hold money in their register are refused: that
money would have to be read back from the meter first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.billing.pipeline import bill_pending, process_readings
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.ledger.posting import wallet
from server.ledger.sql import fetch
from server.metering.daily import from_units
from server.metering.ingest import HELD
from server.metering.models import (
    BillingStatus,
    Meter,
    MeterCommand,
    MeterStatus,
    ReadingSource,
)
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service import IncomingReading, available_balance, read_now
from server.metering.vocabulary import KIND_LABELS, MeterKind
from server.payments.models import (
    CounterChannel,
    CounterRefund,
    CounterRefundStatus,
    OrderStatus,
    RechargeOrder,
    Refund,
    RefundStatus,
)
from server.payments.service import Payments, request_counter_refund, request_refund
from server.payments.service.counter_refunds import RefundLine, refund_lines
from server.places.service.rooms import room_detail
from server.tenancy.models import AccountClosing, ClosingKind, ClosingStatus

OPEN_ONLINE = (RefundStatus.PENDING, RefundStatus.APPROVED, RefundStatus.PROCESSING)


class Arrears(Conflict):
    """Usage already consumed is owed: the tenant pays it before the account can close."""

    code = "arrears"


class MoneyOnMeter(Conflict):
    code = "money_on_meter"


class ReadingNotSettled(Conflict):
    code = "reading_not_settled"


@dataclass(frozen=True, slots=True)
class FinalReading:
    """A meter's final reading: `total` entered by staff, or None for the meter's latest."""

    meter_id: int
    total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CloseRequest:
    readings: tuple[FinalReading, ...]
    refund_channel: CounterChannel | str = CounterChannel.CASH  # cash / bank
    payee_name: str = ""
    payee_account: str = ""
    reason: str = "销户退款"

    def checked(self) -> CloseRequest:
        """Refused before anything is written: a closing started with these cannot fail later
        for want of them (a bank refund needs the payee's account)."""
        if self.refund_channel not in CounterChannel._value2member_map_:
            raise ValidationFailed("退款方式无效", field="refund_channel")
        channel = CounterChannel(self.refund_channel)
        if channel is CounterChannel.BANK and not self.payee_account.strip():
            raise ValidationFailed("银行转账退款请填写收款账号", field="payee_account")
        return CloseRequest(
            self.readings, channel, self.payee_name.strip(), self.payee_account.strip(),
            self.reason.strip() or "销户退款",
        )  # fmt: skip


def parse_total(text: str, meter_label: str) -> Decimal | None:
    """An entered register value ('' → None: use the latest reading)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationFailed(f"{meter_label}的读数不是数字", field="reading") from None
    if not value.is_finite() or value < 0 or value >= Decimal("100000000"):
        raise ValidationFailed(f"{meter_label}的读数不在有效范围内", field="reading")
    return value.quantize(Decimal("0.01"))


def register_text(value: Decimal) -> str:
    """A register value as printed: two decimals unless the meter gave more."""
    cents = value.quantize(Decimal("0.01"))
    return str(cents if cents == value else value.normalize())


# -- reading the panel ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MeterLine:
    id: int
    address: str
    kind_label: str
    last_total: str | None  # as printed (`register_text`)
    last_read_at: datetime | None
    meter_billed: bool


@dataclass(frozen=True, slots=True)
class ClosingPanel:
    room_id: int
    room_name: str
    account: Account | None  # the room's open account
    closing: AccountClosing | None  # its closing, when started
    balance_fen: int  # available balance (the one rule)
    meters: list[MeterLine] = field(default_factory=list)
    refunds: list[RefundLine] = field(default_factory=list)


async def closing_panel(site_ids: Sequence[int], room_id: int) -> ClosingPanel:
    """The room's open account, its meters and its closing state (404 outside the scope)."""
    detail = await room_detail(site_ids, room_id)
    name = detail.room.name
    if detail.account is None:
        return ClosingPanel(room_id, name, None, None, 0)
    account = await Account.get(id=detail.account.id)
    closing = await AccountClosing.get_or_none(account_id=account.id)
    balance = await available_balance(account.id)
    refunds = await refund_lines(site_ids, account_ids=[account.id]) if closing else []
    return ClosingPanel(
        room_id, name, account, closing, balance.total_fen, await _meter_lines(account.id),
        refunds,
    )  # fmt: skip


async def open_account_in_scope(site_ids: Sequence[int], account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id, site_id__in=list(site_ids))
    if account is None:
        raise NotFound("账户不存在", account_id=account_id)
    return account


async def _meter_lines(account_id: int) -> list[MeterLine]:
    meters = await Meter.filter(account_id=account_id, status=MeterStatus.ACTIVE).order_by("id")
    lines = []
    for m in meters:
        last = await StoredReading.filter(meter_id=m.id).order_by("-taken_at").first()
        line = MeterLine(
            m.id, m.address, KIND_LABELS.get(m.kind, str(m.kind)),
            register_text(last.total) if last else None, last.taken_at if last else None,
            m.billing.value == "meter",
        )  # fmt: skip
        lines.append(line)
    return lines


async def read_meters_now(
    site_ids: Sequence[int], account_id: int, *, actor: str, now: datetime | None = None
) -> list[MeterCommand]:
    """点抄 every active meter of the account (through the command service); the readings come
    back like any reading, and the close form then offers them as final readings."""
    account = await open_account_in_scope(site_ids, account_id)
    if account.status is not AccountStatus.OPEN:
        raise Conflict("该账户已销户")
    meters = await Meter.filter(account_id=account.id, status=MeterStatus.ACTIVE).order_by("id")
    return [await read_now(m.id, actor=actor, now=now) for m in meters]


# -- settlement -------------------------------------------------------------------------------
async def settle_usage(
    account: Account, readings: Sequence[FinalReading], *, actor: str, now: datetime
) -> list[dict[str, Any]]:
    """Final readings in, last usage billed; the readings as the statement prints them."""
    meters = {
        m.id: m
        for m in await Meter.filter(account_id=account.id, status=MeterStatus.ACTIVE)
    }  # fmt: skip
    given = {r.meter_id: r for r in readings}
    unknown = set(given) - set(meters)
    if unknown:
        raise ValidationFailed("读数中的表计不属于该账户", meter_ids=sorted(unknown))
    entered = [
        IncomingReading(m_id, Reading(now, given[m_id].total), source=ReadingSource.MANUAL)  # type: ignore[arg-type]
        for m_id in sorted(meters)
        if m_id in given and given[m_id].total is not None
    ]
    if entered:
        report = await process_readings(entered, now=now)
        held = [o for o in report.ingest.outcomes if o in {h.value for h in HELD}]
        if held:
            raise ReadingNotSettled(
                "录入的结算读数异常（低于上次读数、跳变过大或与已有读数冲突），已挂起待审核；"
                "请核对读数或先点抄",
                outcomes=held,
            )
        if report.failed:
            raise ReadingNotSettled("结算读数计费失败（电价未配置？），请先处理后再销户")
    pending = await StoredReading.filter(
        meter_id__in=list(meters), billing=BillingStatus.PENDING
    ).values_list("id", flat=True)
    if pending:
        _, failed, _ = await bill_pending(list(pending))
        if failed:
            raise ReadingNotSettled("最近读数计费失败（电价未配置？），请先处理后再销户")
    out = []
    for m_id in sorted(meters):
        meter = meters[m_id]
        last = await StoredReading.filter(meter_id=m_id).order_by("-taken_at").first()
        if last is None:
            raise ReadingNotSettled(f"表 {meter.address} 没有任何读数，请录入结算读数或先点抄")
        entered_now = m_id in given and given[m_id].total is not None
        out.append({
            "meter_id": m_id, "address": meter.address, "kind": meter.kind.value,
            "multiplier": meter.multiplier, "total": register_text(last.total),
            "taken_at": last.taken_at.isoformat(),
            "source": "manual" if entered_now else last.source.value,
        })  # fmt: skip
    await record(
        actor, "account.final_reading", target_type="account", target_id=account.id,
        site_id=account.site_id,  # type: ignore[attr-defined]
        detail={"readings": [{k: r[k] for k in ("meter_id", "total", "taken_at")} for r in out]},
    )  # fmt: skip
    return out


async def check_no_arrears_nor_meter_money(account_id: int) -> int:
    """The wallet after settlement (≥ 0); `Arrears` when it is negative, `MoneyOnMeter` when
    a meter-billed meter still holds money or a recharge is on its way to one."""
    balance = await available_balance(account_id)
    if balance.wallet_fen < 0:
        owed = f"{Decimal(-balance.wallet_fen) / 100:.2f}"
        raise Arrears(
            f"该账户欠费 {owed} 元，请先缴清欠费再销户/过户", owed_fen=-balance.wallet_fen
        )
    if balance.on_meters_fen or balance.free_wallet_fen != balance.wallet_fen:
        raise MoneyOnMeter("表端计费的电表内仍有余额或充值在途，请先处理表内余额")
    return balance.wallet_fen


# -- closing ----------------------------------------------------------------------------------
async def close_account(
    payments: Payments,
    site_ids: Sequence[int],
    account_id: int,
    request: CloseRequest,
    *,
    actor: str,
    now: datetime | None = None,
) -> AccountClosing:
    """销户 (see the module docstring). A re-submit of a started closing continues it."""
    now = now or datetime.now(UTC)
    request = request.checked()
    account = await open_account_in_scope(site_ids, account_id)
    existing = await AccountClosing.get_or_none(account_id=account.id)
    if existing is not None:
        return await continue_closing(payments, site_ids, account.id, actor=actor, now=now)
    if account.status is not AccountStatus.OPEN:
        raise Conflict("该账户已销户")
    readings = await settle_usage(account, request.readings, actor=actor, now=now)
    await check_no_arrears_nor_meter_money(account.id)
    await start_closing(account, ClosingKind.CLOSE, readings, request, actor=actor)
    return await continue_closing(payments, site_ids, account.id, actor=actor, now=now)


async def start_closing(
    account: Account,
    kind: ClosingKind,
    readings: list[dict[str, Any]],
    request: CloseRequest,
    *,
    actor: str,
    new_account_id: int | None = None,
) -> AccountClosing:
    """The closing row (one per account: a concurrent second start gets the first)."""
    try:
        async with in_transaction():
            closing = await AccountClosing.create(
                account_id=account.id, kind=kind, readings=readings,
                refund_channel=CounterChannel(request.refund_channel).value,
                payee_name=request.payee_name.strip()[:100],
                payee_account=request.payee_account.strip()[:64],
                new_account_id=new_account_id, requested_by=actor,
            )  # fmt: skip
            await record(
                actor, f"account.{kind.value}.start", target_type="account",
                target_id=account.id, site_id=account.site_id,  # type: ignore[attr-defined]
                reason=request.reason,
                detail={"closing_id": closing.id, "new_account_id": new_account_id},
            )  # fmt: skip
            return closing
    except IntegrityError:
        return await AccountClosing.get(account_id=account.id)


async def continue_closing(
    payments: Payments,
    site_ids: Sequence[int],
    account_id: int,
    *,
    actor: str,
    now: datetime | None = None,
) -> AccountClosing:
    """Refund what the wallet still holds, then close the account when nothing is left to
    pay out (a no-op on a closing already done)."""
    now = now or datetime.now(UTC)
    account = await open_account_in_scope(site_ids, account_id)
    closing = await AccountClosing.get_or_none(account_id=account.id)
    if closing is None:
        raise NotFound("该账户没有进行中的销户", account_id=account_id)
    if closing.status is ClosingStatus.DONE:
        return closing
    await check_no_arrears_nor_meter_money(account.id)
    await _refund_wallet(payments, closing, account, actor=actor, now=now)
    return await complete_if_settled(closing, actor=actor, now=now)


async def _refund_wallet(
    payments: Payments, closing: AccountClosing, account: Account, *, actor: str, now: datetime
) -> None:
    left = (await Account.get(id=account.id)).balance_fen
    if left <= 0:
        return
    channels = set(payments.configured_channels())
    orders = await RechargeOrder.filter(account_id=account.id, status=OrderStatus.PAID).order_by(
        "-paid_at", "-id"
    )
    # An online refund of this closing that was rejected or failed is not asked again: the
    # money goes to the counter refund instead (no loop of refused platform refunds).
    refused = set(
        await Refund.filter(
            order__account_id=account.id, created_at__gte=closing.created_at,
            status__in=(RefundStatus.REJECTED, RefundStatus.FAILED),
        ).values_list("order_id", flat=True)
    )  # fmt: skip
    for order in orders:
        refundable = order.amount_fen - order.refunded_fen
        if left <= 0 or refundable <= 0 or order.channel not in channels or order.id in refused:
            continue
        amount = min(left, refundable)
        await request_refund(
            payments, order.out_trade_no, amount, reason=_reason(closing), actor=actor, now=now
        )
        left -= amount
    if left > 0:
        attempt = await CounterRefund.filter(account_id=account.id).count()
        await request_counter_refund(
            payments.settings, account.id, CounterChannel(closing.refund_channel), left,
            reason=_reason(closing), actor=actor,
            request_key=f"closing:{closing.id}:counter:{attempt + 1}",
            payee_name=closing.payee_name or account.tenant_name,
            payee_account=closing.payee_account, now=now,
        )  # fmt: skip


def _reason(closing: AccountClosing) -> str:
    return "过户退款" if closing.kind is ClosingKind.TRANSFER else "销户退款"


async def complete_if_settled(
    closing: AccountClosing, *, actor: str, now: datetime | None = None
) -> AccountClosing:
    """Close the account if its wallet is zero and no refund of it is still open."""
    now = now or datetime.now(UTC)
    account_id: int = closing.account_id  # type: ignore[attr-defined]
    if await _open_refunds(account_id):
        return closing
    async with in_transaction():
        account = await Account.filter(id=account_id).select_for_update().first()
        locked = await AccountClosing.filter(id=closing.id).select_for_update().first()
        assert account is not None and locked is not None
        if locked.status is ClosingStatus.DONE:
            return locked
        if account.balance_fen != 0:
            return locked  # money came back (a refund failed): continue_closing refunds it
        account.status = AccountStatus.CLOSED
        account.closed_at = now
        await account.save(update_fields=["status", "closed_at"])
        detached = await Meter.filter(account_id=account_id).update(account_id=None)
        locked.status = ClosingStatus.DONE
        locked.closed_at = now
        await locked.save(update_fields=["status", "closed_at"])
        await record(
            actor, "account.close", target_type="account", target_id=account_id,
            site_id=account.site_id,  # type: ignore[attr-defined]
            detail={"closing_id": locked.id, "kind": locked.kind.value,
                    "meters_detached": detached},
        )  # fmt: skip
        return locked


async def _open_refunds(account_id: int) -> bool:
    if await CounterRefund.filter(
        account_id=account_id, status=CounterRefundStatus.PENDING
    ).exists():
        return True
    return await Refund.filter(order__account_id=account_id, status__in=OPEN_ONLINE).exists()


async def complete_after_refund(account_id: int, *, actor: str) -> AccountClosing | None:
    """After a refund of the account was approved or rejected: close it if that was the last
    thing its closing waited for (None: the account is not closing)."""
    closing = await AccountClosing.get_or_none(account_id=account_id)
    if closing is None or closing.status is ClosingStatus.DONE:
        return closing
    return await complete_if_settled(closing, actor=actor)


# -- the settlement statement -----------------------------------------------------------------
MONEY_LABELS = {
    "recharge": "充值", "charge": "扣费（用量与费用）", "adjustment": "调账",
    "reversal": "冲正", "refund_hold": "退款", "refund_void": "退款退回",
    "transfer": "过户转移",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class StatementMeter:
    address: str
    kind_label: str
    final_total: str
    final_at: datetime
    source: str
    quantity: Decimal  # used while on this account (CT×PT applied)
    amount_fen: int  # charged for it


@dataclass(frozen=True, slots=True)
class Statement:
    account: Account
    room_name: str
    closing: AccountClosing
    new_account: Account | None
    meters: list[StatementMeter]
    money: list[tuple[str, int]]  # (label, signed fen) from the wallet's ledger
    balance_fen: int
    refunds: list[RefundLine]


async def closing_statement(site_ids: Sequence[int], account_id: int) -> Statement:
    """结算单 of a started closing (404 outside the scope or when none was started)."""
    account = await open_account_in_scope(site_ids, account_id)
    closing = await AccountClosing.get_or_none(account_id=account.id)
    if closing is None:
        raise NotFound("该账户尚未销户", account_id=account_id)
    conn = connections.get("default")
    usage = {
        int(r["meter_id"]): r
        for r in await fetch(
            conn,
            "SELECT meter_id, COALESCE(SUM(quantity_e4), 0) AS q, COALESCE(SUM(amount_fen), 0)"
            " AS a FROM daily_usage WHERE account_id = $1 GROUP BY meter_id",
            [account.id],
        )
    }
    meters = []
    for r in closing.readings:
        used = usage.get(int(r["meter_id"]))
        line = StatementMeter(
            r["address"], KIND_LABELS.get(MeterKind(r["kind"]), r["kind"]), r["total"],
            datetime.fromisoformat(r["taken_at"]),
            "人工录入" if r["source"] == "manual" else "抄表",
            from_units(int(used["q"])) if used else Decimal(0),
            int(used["a"]) if used else 0,
        )  # fmt: skip
        meters.append(line)
    money = [
        (MONEY_LABELS.get(r["kind"], r["kind"]), int(r["s"]))
        for r in await fetch(
            conn,
            "SELECT t.kind, SUM(l.amount_fen) AS s FROM ledger_leg l"
            " JOIN ledger_account a ON a.id = l.ledger_account_id"
            " JOIN ledger_transaction t ON t.id = l.transaction_id"
            " WHERE a.code = $1 GROUP BY t.kind ORDER BY t.kind",
            [wallet(account.id)],
        )
    ]
    room = "—"
    if account.room_id is not None:  # type: ignore[attr-defined]
        room = (await room_detail(site_ids, account.room_id)).room.name  # type: ignore[attr-defined]
    new_account = None
    if closing.new_account_id is not None:  # type: ignore[attr-defined]
        new_account = await Account.get(id=closing.new_account_id)  # type: ignore[attr-defined]
    refunds = await refund_lines(site_ids, account_ids=[account.id])
    return Statement(
        account, room, closing, new_account, meters, money, account.balance_fen, refunds
    )
