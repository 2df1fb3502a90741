"""The energy + finance combined report (能耗财务综合表): month by month over a range, the
scope's opening balance (期初), money in, charges, refunds, adjustments and transfers, the
closing balance (期末), and the energy used with its money by reading time — each month's
figures are the monthly comprehensive report's totals (`monthly.monthly_report`), so the two
reports never disagree, and each month's closing is the next month's opening."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from server.reports.periods import Month
from server.reports.service.monthly import ShopMonth, monthly_report

MAX_MONTHS = 24


@dataclass(frozen=True, slots=True)
class CombinedMonth:
    month: Month
    opening_fen: int
    payments_fen: int
    charges_fen: int
    refunds_fen: int
    other_fen: int  # adjustments and transfers (过户), signed, + into the wallets
    closing_fen: int
    electricity_e4: int
    electricity_usage_fen: int
    water_e4: int
    water_usage_fen: int
    accounts: int  # accounts on the month's report

    @classmethod
    def of(cls, month: Month, t: ShopMonth, accounts: int) -> CombinedMonth:
        return cls(
            month, t.opening_fen, t.payments_fen, t.charges_fen, t.refunds_fen,
            t.adjustments_fen + t.transfers_fen, t.closing_fen, t.electricity_e4,
            t.electricity_usage_fen, t.water_e4, t.water_usage_fen, accounts,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CombinedReport:
    since: Month
    until: Month
    months: list[CombinedMonth]
    total: CombinedMonth  # opening of the first month, closing of the last, sums between


def months_between(since: Month, until: Month) -> list[Month]:
    """`since`…`until`, both included; ValueError when reversed or longer than MAX_MONTHS."""
    if until < since:
        raise ValueError("结束月份早于开始月份")
    out = [since]
    while out[-1] < until:
        out.append(out[-1].next())
        if len(out) > MAX_MONTHS:
            raise ValueError(f"最多 {MAX_MONTHS} 个月")
    return out


async def combined_report(
    site_ids: Sequence[int], since: Month, until: Month, tz: ZoneInfo
) -> CombinedReport:
    months = []
    for month in months_between(since, until):
        report = await monthly_report(site_ids, month, tz)
        months.append(CombinedMonth.of(month, report.total, len(report.rows)))
    first, last = months[0], months[-1]
    total = CombinedMonth(
        until, first.opening_fen, *(sum(getattr(m, name) for m in months) for name in (
            "payments_fen", "charges_fen", "refunds_fen", "other_fen")),
        last.closing_fen, *(sum(getattr(m, name) for m in months) for name in (
            "electricity_e4", "electricity_usage_fen", "water_e4", "water_usage_fen")),
        last.accounts,
    )  # fmt: skip
    return CombinedReport(since, until, months, total)
