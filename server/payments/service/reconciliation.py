"""T+1 reconciliation job: each channel's daily trade bill against our credits and refunds.

Our side of a day (Asia/Shanghai) is every paid order whose platform success time falls on
it and every succeeded refund settled on it; `server.payments.reconcile.reconcile` (pure)
matches them to the bill rows. The report and each difference are stored for finance; a
re-run of the same day replaces the previous report. A report with differences queues a
staff alert (对账差异告警, server.notify) in the same transaction, to the finance staff of each
site the differing orders belong to (of every site paid that day when no order is ours); the
same result re-run adds no second alert.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.notify.service.outbox import StaffEvent, enqueue_staff
from server.payments.models import (
    OrderStatus,
    RechargeOrder,
    ReconciliationDifference,
    ReconciliationReport,
    Refund,
    RefundStatus,
)
from server.payments.providers.base import BillRowType, Channel
from server.payments.reconcile import OurRecord, ReconcileReport, reconcile
from server.payments.service.runtime import Payments

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHANNEL_NAMES = {Channel.WECHAT: "微信支付", Channel.ALIPAY: "支付宝"}


async def our_records(channel: Channel, day: date) -> list[OurRecord]:
    start = datetime.combine(day, time(0), SHANGHAI)
    end = start + timedelta(days=1)
    records = [
        OurRecord(channel, BillRowType.PAYMENT, o.out_trade_no, "", o.amount_fen)
        for o in await RechargeOrder.filter(
            channel=channel, status=OrderStatus.PAID, paid_at__gte=start, paid_at__lt=end
        ).order_by("id")
    ]
    refunds = (
        await Refund.filter(
            order__channel=channel,
            status=RefundStatus.SUCCEEDED,
            settled_at__gte=start,
            settled_at__lt=end,
        )
        .prefetch_related("order")
        .order_by("id")
    )
    records += [
        OurRecord(channel, BillRowType.REFUND, r.order.out_trade_no, r.out_refund_no, r.amount_fen)
        for r in refunds
    ]
    return records


async def reconcile_day(
    payments: Payments, channel: Channel | str, day: date
) -> tuple[ReconciliationReport, ReconcileReport]:
    """Download the bill (ProviderError if it is not ready or its hash is wrong), match,
    store. Returns the stored report and the pure one."""
    channel = Channel(channel)
    rows = await payments.provider(channel).download_bill(day)
    report = reconcile(rows, await our_records(channel, day))
    async with in_transaction() as conn:
        stored = await ReconciliationReport.get_or_none(channel=channel, bill_date=day)
        values = dict(
            matched=report.matched,
            missing=len(report.missing),
            extra=len(report.extra),
            amount_mismatches=len(report.amount_mismatches),
            duplicates=len(report.duplicates),
            ignored_rows=report.ignored_rows,
            clean=report.clean,
        )
        if stored is None:
            stored = await ReconciliationReport.create(channel=channel, bill_date=day, **values)
        else:
            await ReconciliationDifference.filter(report_id=stored.id).delete()
            await stored.update_from_dict(values).save()
        await ReconciliationDifference.bulk_create(_differences(stored, report))
        if not report.clean:
            await _alert_staff(conn, channel, day, report)
    return stored, report


async def _alert_staff(
    conn: BaseDBAsyncClient, channel: Channel, day: date, report: ReconcileReport
) -> None:
    numbers = {m.row.out_trade_no for m in report.missing}
    numbers |= {e.record.out_trade_no for e in report.extra}
    numbers |= {a.key.number for a in report.amount_mismatches}
    numbers |= {d.key.number for d in report.duplicates}
    sites = set(
        await RechargeOrder.filter(out_trade_no__in=sorted(numbers))
        .using_db(conn)
        .values_list("account__site_id", flat=True)
    )
    if not sites:
        start = datetime.combine(day, time(0), SHANGHAI)
        sites = set(
            await RechargeOrder.filter(
                channel=channel, paid_at__gte=start, paid_at__lt=start + timedelta(days=1)
            )
            .using_db(conn)
            .values_list("account__site_id", flat=True)
        )
    counts = (len(report.missing), len(report.extra), len(report.amount_mismatches),
              len(report.duplicates))  # fmt: skip
    params = {
        "channel": CHANNEL_NAMES.get(channel, channel.value), "day": day.isoformat(),
        "missing": counts[0], "extra": counts[1], "mismatches": counts[2],
        "duplicates": counts[3],
    }  # fmt: skip
    tag = "-".join(map(str, counts))
    events = [
        StaffEvent(
            site,
            "staff.reconciliation",
            f"reconcile:{channel.value}:{day}:{site}:{tag}",
            f"reconcile.{channel.value}.{day}",
            params,
        )
        for site in sorted(s for s in sites if s is not None)
    ]
    await enqueue_staff(conn, events, now=datetime.now(SHANGHAI))


def _differences(
    stored: ReconciliationReport, report: ReconcileReport
) -> list[ReconciliationDifference]:
    out = [
        ReconciliationDifference(
            report=stored,
            kind="missing",
            row_type=m.key.type.value,
            number=m.key.number,
            bill_fen=m.row.amount_fen,
            detail={"transaction_id": m.row.transaction_id, "time": m.row.time.isoformat()},
        )
        for m in report.missing
    ]
    out += [
        ReconciliationDifference(
            report=stored,
            kind="extra",
            row_type=e.key.type.value,
            number=e.key.number,
            ours_fen=e.record.amount_fen,
        )
        for e in report.extra
    ]
    out += [
        ReconciliationDifference(
            report=stored,
            kind="amount",
            row_type=a.key.type.value,
            number=a.key.number,
            bill_fen=a.bill_fen,
            ours_fen=a.ours_fen,
        )
        for a in report.amount_mismatches
    ]
    out += [
        ReconciliationDifference(
            report=stored,
            kind="duplicate",
            row_type=d.key.type.value,
            number=d.key.number,
            detail={"side": d.side.value, "count": d.count},
        )
        for d in report.duplicates
    ]
    return out


async def reconcile_yesterday(payments: Payments, today: date) -> list[ReconciliationReport]:
    """The scheduled job (after 10:00, when bills are ready): yesterday, every configured
    channel (an unconfigured one has no bill to download)."""
    day = today - timedelta(days=1)
    return [(await reconcile_day(payments, ch, day))[0] for ch in payments.configured_channels()]
