"""The day's three-way reconciliation (对账): the channels' bills ↔ our orders ↔ the ledger ↔
the meters' purchase counts and money registers, one page per local day, every mismatch
listed with the way to resolve it. Reads only, except `run_bills` and `resolve`, which call
the payments services (they write the reports, the quarantine resolution and the log).

1. Bill ↔ orders (WeChat Pay, Alipay): the stored daily report of
   `server.payments.service.reconciliation.reconcile_day` (the scheduler's T+1 job, or
   `run_bills` from the page) and its differences — missing (on the bill, not ours), extra
   (ours, not on the bill), amount, duplicate — those of the caller's sites' orders (a
   number that is no order of ours only for organisation-wide staff with `unattributed`).
2. Orders ↔ ledger (every channel): per channel, the day's paid orders and counter
   payments, succeeded refunds and paid counter refunds, against the ledger's credits and
   refund settlements of the same day; every order without its credit, every credit without
   its order, every amount that differs.
3. Ledger ↔ meters (表端计费): the meters' daily findings (`server.metering.service.reconcile`:
   purchase count and money register against the confirmed recharges), those not matching.
4. To resolve: the unresolved quarantine items and held orders (a verified notification that
   disagreed with the order), resolved with a note through `resolve_quarantine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.expressions import Q, Subquery

from server.audit.service import record
from server.core.errors import NotFound, ShuidianError, ValidationFailed
from server.finance.service.orders import CHANNEL_LABELS
from server.ledger.sql import fetch, in_list
from server.metering.models import ReconciliationItem
from server.payments.models import (
    CounterPayment,
    CounterRefund,
    CounterRefundStatus,
    OrderStatus,
    Quarantine,
    RechargeOrder,
    ReconciliationDifference,
    ReconciliationReport,
    Refund,
    RefundStatus,
)
from server.payments.providers.base import Channel, ProviderError
from server.payments.service import reason_text, reconcile_day, resolve_quarantine
from server.payments.service.runtime import Payments

ONLINE = ("wechat", "alipay")
KIND_LABELS = {"missing": "账单有、平台无", "extra": "平台有、账单无", "amount": "金额不符",
               "duplicate": "重复"}  # fmt: skip
HOW_TO = {
    "missing": "核实到账后在账户上调账补记，或联系支付平台；处理后在异常处理中填写说明",
    "extra": "核实平台是否收款；未收款则冲正该笔充值",
    "amount": "以平台账单为准，差额调账；处理后填写说明",
    "duplicate": "核对是否重复入账，重复部分冲正",
}
METER_LABELS = {
    "count_mismatch": "购电次数不一致",
    "money_mismatch": "表内余额高于平台",
    "open_recharge": "充值命令未确认",
    "unreadable": "读表失败",
}
METER_HOW_TO = {
    "count_mismatch": "点抄后核对；表外充值需补记或撤销",
    "money_mismatch": "表内余额来源不明：核实后调账或重写表内金额",
    "open_recharge": "在仪表页查看命令结果，必要时重新下发",
    "unreadable": "检查通讯后点抄",
}


@dataclass(frozen=True, slots=True)
class BillSide:
    channel: str
    ran: bool
    clean: bool
    matched: int
    ignored: int
    differences: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ChannelBooks:
    """One channel's day: our records against the ledger (counts and fen)."""

    channel: str
    paid_n: int = 0
    paid_fen: int = 0
    credited_n: int = 0
    credited_fen: int = 0
    refunded_n: int = 0
    refunded_fen: int = 0
    settled_n: int = 0
    settled_fen: int = 0
    other_n: int = 0  # booked without an order (history taken over, opening balances)
    other_fen: int = 0

    @property
    def agrees(self) -> bool:
        return (self.paid_n, self.paid_fen, self.refunded_n, self.refunded_fen) == (
            self.credited_n, self.credited_fen, self.settled_n, self.settled_fen,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mismatch:
    channel: str
    what: str  # Chinese
    number: str
    ours_fen: int | None
    ledger_fen: int | None
    how: str


@dataclass(frozen=True, slots=True)
class MeterFinding:
    meter_id: int
    address: str
    site: str
    kind: str
    label: str
    meter_count: int | None
    platform_count: int | None
    meter_fen: int | None
    platform_fen: int | None
    detail: str
    how: str


@dataclass(frozen=True, slots=True)
class ToResolve:
    id: int
    channel: str
    reason: str
    number: str
    expected_fen: int | None
    notified_fen: int | None
    at: datetime
    held: bool  # the order waits (status held)


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    bills: list[BillSide]
    books: list[ChannelBooks]
    mismatches: list[Mismatch]
    meters_matched: int
    meters: list[MeterFinding]
    to_resolve: list[ToResolve] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            all(b.clean for b in self.bills if b.ran) and not self.mismatches
            and not self.meters and not self.to_resolve
        )  # fmt: skip


def _bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    return start, start + timedelta(days=1)


async def _scoped_numbers(site_ids: Sequence[int], numbers: set[str]) -> set[str]:
    if not numbers:
        return set()
    return set(
        await RechargeOrder.filter(
            out_trade_no__in=sorted(numbers), account__site_id__in=list(site_ids)
        ).values_list("out_trade_no", flat=True)
    )


async def _bills(site_ids: Sequence[int], day: date, unattributed: bool) -> list[BillSide]:
    out = []
    for channel in ONLINE:
        report = await ReconciliationReport.get_or_none(channel=channel, bill_date=day)
        if report is None:
            out.append(BillSide(channel, False, False, 0, 0, []))
            continue
        rows = await ReconciliationDifference.filter(report_id=report.id).order_by("id")
        refund_orders = {
            r.out_refund_no: r.order.out_trade_no  # type: ignore[attr-defined]
            for r in await Refund.filter(
                out_refund_no__in=[d.number for d in rows if d.row_type == "refund"]
            ).prefetch_related("order")
        }

        numbers = {d.id: _order_of(d, refund_orders) for d in rows}
        ours = await _scoped_numbers(site_ids, set(numbers.values()))
        known = await _scoped_numbers_any(set(numbers.values()))
        shown = [
            {"kind": d.kind, "label": KIND_LABELS.get(d.kind, d.kind),
             "type": "退款" if d.row_type == "refund" else "支付", "number": d.number,
             "bill_fen": d.bill_fen, "ours_fen": d.ours_fen, "how": HOW_TO.get(d.kind, "")}
            for d in rows
            if numbers[d.id] in ours or (unattributed and numbers[d.id] not in known)
        ]  # fmt: skip
        out.append(BillSide(channel, True, report.clean, report.matched, report.ignored_rows,
                            shown))  # fmt: skip
    return out


def _order_of(d: ReconciliationDifference, refund_orders: dict[str, str]) -> str:
    """The order number a difference is about (a refund's: its order's)."""
    return refund_orders.get(d.number, d.number) if d.row_type == "refund" else d.number


async def _scoped_numbers_any(numbers: set[str]) -> set[str]:
    if not numbers:
        return set()
    return set(
        await RechargeOrder.filter(out_trade_no__in=sorted(numbers)).values_list(
            "out_trade_no", flat=True
        )
    )


async def _ledger_day(
    site_ids: Sequence[int], start: datetime, end: datetime
) -> dict[str, tuple[str, str | None, int]]:
    """The day's credits and refund settlements of the sites: key -> (kind, channel, fen)."""
    conn = connections.get("default")
    sites, params = in_list(conn, "a.site_id", list(site_ids), 3, "int")
    rows = await fetch(
        conn,
        "SELECT t.\"key\", t.kind, t.channel, -SUM(CASE WHEN la.kind = 'clearing'"
        " THEN l.amount_fen ELSE 0 END) AS fen FROM ledger_transaction t"
        " JOIN account a ON a.id = t.account_id JOIN ledger_leg l ON l.transaction_id = t.id"
        " JOIN ledger_account la ON la.id = l.ledger_account_id"
        " WHERE t.kind IN ('recharge', 'refund_settle') AND t.created_at >= $1"
        f' AND t.created_at < $2 AND {sites} GROUP BY t."key", t.kind, t.channel',
        [start, end, *params],
    )
    return {r["key"]: (r["kind"], r["channel"], abs(int(r["fen"]))) for r in rows}


async def _books(
    site_ids: Sequence[int], start: datetime, end: datetime
) -> tuple[list[ChannelBooks], list[Mismatch]]:
    ledger = await _ledger_day(site_ids, start, end)
    sites = list(site_ids)
    ours: dict[str, tuple[str, str, int, str]] = {}  # ledger key -> (channel, kind, fen, no.)
    for o in await RechargeOrder.filter(
        account__site_id__in=sites, status=OrderStatus.PAID, paid_at__gte=start, paid_at__lt=end
    ):
        ours[f"pay:{o.channel.value}:{o.out_trade_no}"] = (
            o.channel.value, "recharge", o.amount_fen, o.out_trade_no,
        )  # fmt: skip
    for c in await CounterPayment.filter(
        account__site_id__in=sites, created_at__gte=start, created_at__lt=end
    ):
        ours[f"counter:{c.channel.value}:{c.reference}"] = (
            c.channel.value, "recharge", c.amount_fen, c.reference,
        )  # fmt: skip
    for r in await Refund.filter(
        order__account__site_id__in=sites, status=RefundStatus.SUCCEEDED,
        settled_at__gte=start, settled_at__lt=end,
    ).prefetch_related("order"):  # fmt: skip
        ours[f"refund:{r.out_refund_no}:settle"] = (
            r.order.channel.value, "refund", r.amount_fen, r.out_refund_no,  # type: ignore[attr-defined]
        )  # fmt: skip
    for r in await CounterRefund.filter(
        account__site_id__in=sites, status=CounterRefundStatus.PAID,
        paid_at__gte=start, paid_at__lt=end,
    ):  # fmt: skip
        ours[f"crefund:{r.number}:settle"] = (r.channel.value, "refund", r.amount_fen, r.number)
    books: dict[str, dict[str, int]] = {ch: {} for ch in CHANNEL_LABELS}

    def add(channel: str, name: str, fen: int) -> None:
        b = books.setdefault(channel, {})
        b[f"{name}_n"] = b.get(f"{name}_n", 0) + 1
        b[f"{name}_fen"] = b.get(f"{name}_fen", 0) + fen

    mismatches = []
    for key, (channel, kind, fen, number) in ours.items():
        add(channel, "paid" if kind == "recharge" else "refunded", fen)
        found = ledger.get(key)
        if found is None:
            what = "订单已付款但账本无入账" if kind == "recharge" else "退款已完成但账本无退出"
            how = "检查入账跟进；若确未入账，由支付服务补记（不可手工改余额）"
            mismatches.append(Mismatch(channel, what, number, fen, None, how))
        elif found[2] != fen:
            mismatches.append(Mismatch(channel, "金额不符", number, fen, found[2],
                                       "以支付平台为准调账，并在异常处理中说明"))  # fmt: skip
    for key, (kind, channel, fen) in ledger.items():
        if not key.startswith(("pay:", "counter:", "refund:", "crefund:")):
            # Money booked without an order of ours (a history taken over, an opening
            # balance): shown apart, not matched against orders.
            add(channel or "", "other", fen if kind == "recharge" else -fen)
            continue
        add(channel or "", "credited" if kind == "recharge" else "settled", fen)
        if key not in ours:
            what = "账本有入账但无对应订单" if kind == "recharge" else "账本有退款但无对应退款单"
            mismatches.append(Mismatch(channel or "", what, key.split(":", 2)[-1], None, fen,
                                       "核实来源；无依据则冲正"))  # fmt: skip
    return [ChannelBooks(ch, **books.get(ch, {})) for ch in CHANNEL_LABELS], mismatches


async def _meters(site_ids: Sequence[int], day: date) -> tuple[int, list[MeterFinding]]:
    rows = (
        await ReconciliationItem.filter(day=day, meter__site_id__in=list(site_ids))
        .prefetch_related("meter__site")
        .order_by("meter_id", "kind")
    )
    matched = sum(1 for r in rows if r.kind == "match")
    return matched, [
        MeterFinding(
            r.meter_id,
            r.meter.address,
            r.meter.site.name,
            r.kind,  # type: ignore[attr-defined]
            METER_LABELS.get(r.kind, r.kind),
            r.meter_count,
            r.platform_count,
            r.meter_fen,
            r.platform_fen,
            r.detail,
            METER_HOW_TO.get(r.kind, ""),
        )
        for r in rows
        if r.kind != "match"
    ]


def _quarantine_scope(site_ids: Sequence[int], unattributed: bool) -> Q:
    ours = RechargeOrder.filter(account__site_id__in=list(site_ids)).values("out_trade_no")
    scope = Q(out_trade_no__in=Subquery(ours))
    if unattributed:
        scope |= ~Q(out_trade_no__in=Subquery(RechargeOrder.all().values("out_trade_no")))
    return scope


async def _to_resolve(site_ids: Sequence[int], unattributed: bool, tz: ZoneInfo) -> list[ToResolve]:
    rows = await Quarantine.filter(_quarantine_scope(site_ids, unattributed), resolved_at=None
                                   ).order_by("-id").limit(200)  # fmt: skip
    held = set(
        await RechargeOrder.filter(
            out_trade_no__in=[r.out_trade_no for r in rows if r.out_trade_no],
            status=OrderStatus.HELD,
        ).values_list("out_trade_no", flat=True)
    )
    return [
        ToResolve(
            r.id,
            r.channel.value,
            reason_text(r.reason),
            r.out_refund_no or r.out_trade_no,
            r.expected_fen,
            r.notified_fen,
            r.created_at.astimezone(tz),
            r.out_trade_no in held,
        )
        for r in rows
    ]


async def day_view(site_ids: Sequence[int], day: date, tz: ZoneInfo, *,
                   unattributed: bool = False) -> Day:  # fmt: skip
    """The day's three-way page (see the module docstring)."""
    start, end = _bounds(day, tz)
    books, mismatches = await _books(site_ids, start, end)
    matched, meters = await _meters(site_ids, day)
    return Day(
        day, await _bills(site_ids, day, unattributed), books, mismatches, matched, meters,
        await _to_resolve(site_ids, unattributed, tz),
    )  # fmt: skip


async def run_bills(payments: Payments, day: date, today: date, *, actor: str) -> list[str]:
    """Download each configured channel's bill of `day` and reconcile it now (what the
    scheduler does each morning), in the operation log with who asked; the channels whose
    bill could not be had, in Chinese."""
    if day >= today:
        raise ValidationFailed("只能对已结束的日期对账（账单次日生成）", field="day")
    channels = [Channel(ch).value for ch in payments.configured_channels()]
    await record(
        actor, "reconciliation.run", target_type="reconciliation", target_id=day.isoformat(),
        reason=f"下载 {day} 的账单并对账", detail={"channels": channels},
    )  # fmt: skip
    failed = []
    for channel in payments.configured_channels():
        try:
            await reconcile_day(payments, channel, day)
        except (ProviderError, ShuidianError) as exc:  # the platform's answer, for the clerk
            failed.append(f"{CHANNEL_LABELS.get(Channel(channel).value, channel)}：{exc}")
    return failed


async def resolve(
    site_ids: Sequence[int], quarantine_id: int, *, unattributed: bool, actor: str,
    resolution: str,
) -> None:  # fmt: skip
    """A person closes a quarantine item with what was done (the payments service logs it)."""
    found = await Quarantine.filter(
        _quarantine_scope(site_ids, unattributed), id=quarantine_id
    ).exists()
    if not found:
        raise NotFound("异常记录不存在", quarantine_id=quarantine_id)
    if not resolution.strip():
        raise ValidationFailed("请填写处理说明", field="resolution")
    await resolve_quarantine(quarantine_id, actor=actor, resolution=resolution)
