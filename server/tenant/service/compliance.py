"""The resale compliance statement (转供电合规) as a tenant reads it: their account's line of
the site's statement (kWh, energy, common-area and loss shares, effective prices against the
grid's average settlement price, the loss share against the cap, the flags) and the site's
figures (grid kWh and bill, loss rate, the operator's own use not passed on). The account
must be bound to the caller (404 otherwise, as for one that does not exist)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from server.core.errors import NotFound
from server.metering.service.daily_usage import zone
from server.sharing.compliance import FLAG_LABELS
from server.sharing.periods import period_of
from server.sharing.service.statements import account_statement
from server.tenant.service.access import bound_account


def _pct(rate: Decimal) -> str:
    return f"{rate * 100:.2f}%"


def last_month() -> str:
    first = datetime.now(zone()).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


async def compliance(identity_id: int, account_id: int, period: str | None) -> dict[str, Any]:
    """The statement of `period` (default: last month) for a bound account."""
    account, _ = await bound_account(identity_id, account_id)
    period = period or last_month()
    tz = zone()
    try:
        whole, mine = await account_statement(account.id, account.site_id, period, tz)  # type: ignore[attr-defined]
    except NotFound:  # the period's grid figures are not entered yet: nothing to compare with
        code = period_of(period, tz).code
        return {"account_id": account.id, "period": code, "published": False, "site": None,
                "mine": None}  # fmt: skip
    b = whole.statement.balance
    site = {
        "grid_kwh": str(b.grid_kwh), "grid_bill_fen": b.bill_fen,
        "grid_price": str(b.grid_price), "loss_kwh": str(b.loss_kwh),
        "loss_rate": _pct(b.loss_rate), "loss_cap": _pct(whole.statement.cap),
        "own_use_kwh": str(b.own_use_kwh), "own_use_fen": b.own_use_fen,
        "own_use_passed_on": False,
        "flags": [{"code": f.value, "label": FLAG_LABELS[f]} for f in whole.statement.flags],
    }  # fmt: skip
    line = None
    if mine is not None:
        line = {
            "kwh": str(mine.use.kwh), "energy_fen": mine.use.energy_fen,
            "common_fen": mine.use.common_fen, "loss_fen": mine.use.loss_fen,
            "total_fen": mine.total_fen, "energy_price": str(mine.energy_price),
            "effective_price": str(mine.effective_price), "loss_ratio": _pct(mine.loss_ratio),
            "flags": [{"code": f.value, "label": FLAG_LABELS[f]} for f in mine.flags],
        }  # fmt: skip
    return {
        "account_id": account.id, "period": whole.period, "published": True, "site": site,
        "mine": line,
    }  # fmt: skip
