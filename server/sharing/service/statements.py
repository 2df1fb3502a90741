"""The resale compliance statement (转供电合规) of a site's period, from what was posted: the
loss period's grid figures and shares, the common-area runs' shares, and each account's
energy charges from daily usage (`server.sharing.compliance.statement` decides the flags).
Staff read the site's; a tenant reads its own line and the site's figures (the tenant API)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from server.accounts.models import Account
from server.core.errors import NotFound
from server.sharing.compliance import Statement, TenantLine, TenantUse, statement
from server.sharing.models import SharingRun
from server.sharing.periods import period_of
from server.sharing.service.losses import LossView, posted_period
from server.sharing.service.usage import site_account_use


@dataclass(frozen=True, slots=True)
class SiteStatement:
    site_id: int
    site: str
    period: str
    losses: LossView
    statement: Statement


async def site_statement(
    site_ids: Sequence[int], site_id: int, period: str, tz: ZoneInfo
) -> SiteStatement:
    """The site's statement; NotFound until the period's losses are posted (the grid's
    figures are what every price is compared with)."""
    if site_id not in site_ids:
        raise NotFound("园区不存在", site_id=site_id)
    p = period_of(period, tz)
    losses = await posted_period(site_id, p.code)
    if losses is None:
        raise NotFound("该账期尚未录入电网账单和关口表读数", period=p.code)
    use = await site_account_use(site_id, p)
    common: dict[int, int] = {}
    runs = SharingRun.filter(pool__site_id=site_id, period=p.code).values_list("lines", flat=True)
    for lines in await runs:
        for x in lines:  # type: ignore[union-attr]
            common[int(x["account_id"])] = common.get(int(x["account_id"]), 0) + int(
                x["amount_fen"]
            )
    loss = {line.account_id: line.amount_fen for line in losses.lines}
    ids = sorted(set(use) | set(common) | set(loss))
    names = {
        a["id"]: (a["number"], a["tenant_name"])
        for a in await Account.filter(id__in=ids).values("id", "number", "tenant_name")
    }
    uses = [
        TenantUse(
            i,
            *names[i],
            use[i].kwh if i in use else Decimal(0),
            use[i].energy_fen if i in use else 0,
            common.get(i, 0),
            loss.get(i, 0),
        )
        for i in ids
    ]
    made = statement(losses.balance, uses, losses.entry.cap)
    return SiteStatement(site_id, losses.site, p.code, losses, made)


async def account_statement(
    account_id: int, site_id: int, period: str, tz: ZoneInfo
) -> tuple[SiteStatement, TenantLine | None]:
    """One account's line of its site's statement (the caller proved the account is theirs)."""
    whole = await site_statement([site_id], site_id, period, tz)
    mine = next((x for x in whole.statement.lines if x.use.account_id == account_id), None)
    return whole, mine
