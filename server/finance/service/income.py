"""Income (收入概况) by day, month, year or any range of local days, by channel and by
composition, read from the ledger's legs (reads only).

- By channel: the money that came in through each payment channel — the legs on the
  channels' clearing accounts (credit-positive, so negated): a recharge in, a settled refund
  out (the money left the channel), a reversed recharge out. What `money_in_days` shows on
  the dashboard, per channel.
- By composition: what was earned — the legs on the revenue accounts (electricity, water,
  rent, property and service fees, common-area and loss shares, the capacity charge); a
  reversed charge counts against its item.

Both are sums of legs of the scope's accounts' transactions posted in the range (`created_at`
in UTC, the days those of the park's zone), so each column adds up to the ledger: the
channel columns are minus the clearing accounts' legs, the item columns the revenue
accounts' legs (tests/admin/test_finance_income.py proves it against `ledger.balance_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from tortoise import connections

from server.core.errors import ValidationFailed
from server.finance.service.orders import CHANNEL_LABELS, ITEM_LABELS
from server.ledger.sql import fetch, in_list, is_pg

MAX_PERIODS = 400


class Grain(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


GRAIN_LABELS = {Grain.DAY: "按日", Grain.MONTH: "按月", Grain.YEAR: "按年"}
_PG_FORMAT = {Grain.DAY: "YYYY-MM-DD", Grain.MONTH: "YYYY-MM", Grain.YEAR: "YYYY"}
_SQLITE_FORMAT = {Grain.DAY: "%Y-%m-%d", Grain.MONTH: "%Y-%m", Grain.YEAR: "%Y"}


@dataclass(frozen=True, slots=True)
class Period:
    label: str  # "2026-12-05", "2026-12" or "2026"
    channels: dict[str, int]  # channel -> money in (fen), every channel of CHANNEL_LABELS
    items: dict[str, int]  # charge type -> revenue (fen), every item shown

    @property
    def money_in_fen(self) -> int:
        return sum(self.channels.values())

    @property
    def revenue_fen(self) -> int:
        return sum(self.items.values())


@dataclass(frozen=True, slots=True)
class Income:
    grain: Grain
    since: date
    until: date
    periods: list[Period]
    items: list[str]  # the composition's columns: every item with a leg in the range
    channel_totals: dict[str, int] = field(default_factory=dict)
    item_totals: dict[str, int] = field(default_factory=dict)

    @property
    def money_in_fen(self) -> int:
        return sum(self.channel_totals.values())

    @property
    def revenue_fen(self) -> int:
        return sum(self.item_totals.values())


def labels(grain: Grain, since: date, until: date) -> list[str]:
    """Every period of the range, oldest first (empty ones too: the chart's axis)."""
    out: list[str] = []
    if grain is Grain.DAY:
        day = since
        while day <= until:
            out.append(day.isoformat())
            day += timedelta(days=1)
    elif grain is Grain.MONTH:
        y, m = since.year, since.month
        while (y, m) <= (until.year, until.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    else:
        out = [f"{y:04d}" for y in range(since.year, until.year + 1)]
    return out


async def income(
    site_ids: Sequence[int], since: date, until: date, grain: Grain, tz: ZoneInfo
) -> Income:
    """Money in per channel and revenue per item, per period of `grain`, for the local days
    `since`..`until` (inclusive)."""
    if until < since:
        raise ValidationFailed("结束日期不能早于开始日期", field="until")
    axis = labels(grain, since, until)
    if len(axis) > MAX_PERIODS:
        raise ValidationFailed(f"区间太长：最多 {MAX_PERIODS} 个周期，请按月或按年查看")
    sums: dict[tuple[str, str], int] = {}
    if site_ids:
        conn = connections.get("default")
        if is_pg(conn):
            bucket = f"to_char(t.created_at AT TIME ZONE '{tz.key}', '{_PG_FORMAT[grain]}')"
        else:
            offset = datetime.now(tz).utcoffset()
            minutes = int(offset.total_seconds() // 60) if offset else 0
            bucket = f"strftime('{_SQLITE_FORMAT[grain]}', t.created_at, '{minutes:+d} minutes')"
        start = datetime.combine(since, time(), tz).astimezone(UTC)
        end = datetime.combine(until + timedelta(days=1), time(), tz).astimezone(UTC)
        sites, params = in_list(conn, "a.site_id", list(site_ids), 3, "int")
        rows = await fetch(
            conn,
            f"SELECT {bucket} AS period, la.code, SUM(l.amount_fen) AS fen"
            " FROM ledger_transaction t JOIN account a ON a.id = t.account_id"
            " JOIN ledger_leg l ON l.transaction_id = t.id"
            " JOIN ledger_account la ON la.id = l.ledger_account_id"
            " WHERE t.created_at >= $1 AND t.created_at < $2"
            f" AND la.kind IN ('clearing', 'revenue') AND {sites} GROUP BY 1, 2",
            [start, end, *params],
        )
        for r in rows:
            sums[(str(r["period"]), r["code"])] = int(r["fen"])
    items = sorted(
        {code.partition(":")[2] for _, code in sums if code.startswith("revenue:")},
        key=lambda item: list(ITEM_LABELS).index(item) if item in ITEM_LABELS else 99,
    )
    periods = [
        Period(
            label,
            {ch: -sums.get((label, f"clearing:{ch}"), 0) for ch in CHANNEL_LABELS},
            {item: sums.get((label, f"revenue:{item}"), 0) for item in items},
        )
        for label in axis
    ]
    return Income(
        grain, since, until, periods, items,
        {ch: sum(p.channels[ch] for p in periods) for ch in CHANNEL_LABELS},
        {item: sum(p.items[item] for p in periods) for item in items},
    )  # fmt: skip
