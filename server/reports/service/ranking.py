"""The recharge ranking (充值排行): the accounts that paid in the most over a range of months,
with their payments per channel and how many months they paid in. The figures are the
monthly comprehensive report's payments (net of reversed payments, by posting time), summed
over the months, so the ranking and the monthly report agree to the fen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from server.reports.periods import Month
from server.reports.service.combined import months_between
from server.reports.service.common import AccountLabel
from server.reports.service.monthly import CHANNEL_NAMES, monthly_report

MAX_TOP = 500


@dataclass
class Payer:
    account: AccountLabel
    payments_fen: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    months: int = 0  # months with a payment


@dataclass(frozen=True, slots=True)
class Ranking:
    since: Month
    until: Month
    top: int
    payers: list[Payer]  # the first `top`, the most first
    channels: list[str]
    total_fen: int  # of every payer in the scope, not only the shown ones
    payer_count: int


async def recharge_ranking(
    site_ids: Sequence[int], since: Month, until: Month, tz: ZoneInfo, *, top: int = 20
) -> Ranking:
    top = max(1, min(top, MAX_TOP))
    payers: dict[int, Payer] = {}
    for month in months_between(since, until):
        for shop in (await monthly_report(site_ids, month, tz)).rows:
            if not shop.payments_fen:
                continue
            payer = payers.setdefault(shop.account.id, Payer(shop.account))
            payer.payments_fen += shop.payments_fen
            payer.months += 1
            for channel, fen in shop.payments_by_channel.items():
                payer.by_channel[channel] = payer.by_channel.get(channel, 0) + fen
    ranked = sorted(payers.values(), key=lambda p: (-p.payments_fen, p.account.number))
    used = {c for p in ranked for c, fen in p.by_channel.items() if fen}
    channels = [c for c in CHANNEL_NAMES if c in used] + sorted(used - set(CHANNEL_NAMES))
    return Ranking(
        since, until, top, ranked[:top], channels, sum(p.payments_fen for p in ranked),
        len(ranked),
    )  # fmt: skip
