"""What a tenant's screens read of metering, in a fixed number of queries whatever the
number of meters (the tenant API's account detail and usage pages, server.tenant).

    account_meters(account_ids, day=…) -> {account_id: [MeterView]}   two queries at most
    forecast_rates(account_ids) -> {account_id: daily rate text}       one query
    meter_kind(account_id, meter_id) -> MeterKind | None               one query
    usage_days(account_id, meter_id, start, end) -> [UsageDay]         one query

Reads only. A meter's day rows are those written while it belonged to `account_id`
(`daily_usage.account_id`), so a meter that moved to another account shows the new account
only its own days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tortoise import connections

from server.accounts.balance import MeterMoney
from server.ledger.sql import fetch, in_list
from server.metering.daily import from_units
from server.metering.models import MeterBilling, MeterStatus
from server.metering.service.balance import pending_recharges, to_meter_money
from server.metering.service.daily_usage import BANDS
from server.metering.service.reading_store import as_datetime
from server.metering.vocabulary import MeterKind, RelayState

LIVE = ("voltage", "current", "power", "power_factor")

_METERS = f"""
SELECT m.id, m.account_id, m.kind, m.address, m.billing, m.money_fen, m.relay_state,
       m.online, m.last_reading_at, l.instant_at, l.voltage, l.current, l.power,
       l.power_factor, d.quantity_e4 AS today_e4, d.amount_fen AS today_fen
  FROM meter m
  LEFT JOIN meter_live l ON l.meter_id = m.id
  LEFT JOIN daily_usage d ON d.meter_id = m.id AND d.day = $1 AND d.account_id = m.account_id
 WHERE m.status = '{MeterStatus.ACTIVE.value}' AND {{where}}
 ORDER BY m.id
"""


@dataclass(frozen=True, slots=True)
class MeterView:
    """An active meter as a tenant sees it: state, live values, today's use and money."""

    id: int
    account_id: int
    kind: MeterKind
    address: str
    meter_billed: bool
    relay: RelayState
    online: bool
    last_read_at: datetime | None
    live_at: datetime | None  # when U, I, P, PF were read (None: never)
    live: dict[str, Decimal]  # the values the meter has, by name (LIVE)
    today_quantity: Decimal  # CT×PT applied
    today_fen: int | None  # money the platform charged today (None: nothing charged)
    money: MeterMoney  # what the available-balance rule needs


@dataclass(frozen=True, slots=True)
class UsageDay:
    day: date
    quantity: Decimal
    bands: dict[int, Decimal]  # band number -> quantity, the bands with use
    amount_fen: int | None


async def account_meters(account_ids: Sequence[int], *, day: date) -> dict[int, list[MeterView]]:
    """The active meters of these accounts with their live values and `day`'s use."""
    if not account_ids:
        return {}
    conn = connections.get("default")
    where, params = in_list(conn, "m.account_id", list(account_ids), 2, "int")
    rows = await fetch(conn, _METERS.format(where=where), [day, *params])
    billed = [r["id"] for r in rows if r["billing"] == MeterBilling.METER.value]
    pending = await pending_recharges(conn, billed)
    out: dict[int, list[MeterView]] = {}
    for r in rows:
        out.setdefault(r["account_id"], []).append(_view(r, pending))
    return out


def _view(r: dict[str, Any], pending: dict[int, int]) -> MeterView:
    live = {n: Decimal(str(r[n])) for n in LIVE if r[n] is not None}
    return MeterView(
        id=r["id"],
        account_id=r["account_id"],
        kind=MeterKind(r["kind"]),
        address=r["address"],
        meter_billed=r["billing"] == MeterBilling.METER.value,
        relay=RelayState(r["relay_state"]),
        online=bool(r["online"]),
        last_read_at=as_datetime(r["last_reading_at"]) if r["last_reading_at"] else None,
        live_at=as_datetime(r["instant_at"]) if r["instant_at"] and live else None,
        live=live,
        today_quantity=from_units(int(r["today_e4"] or 0)),
        today_fen=None if r["today_fen"] is None else int(r["today_fen"]),
        money=to_meter_money(r["id"], r["kind"], r["billing"], r["money_fen"], pending),
    )


async def forecast_rates(account_ids: Sequence[int]) -> dict[int, str]:
    """The stored daily charge rate of each account that has one (the alarms' forecast)."""
    if not account_ids:
        return {}
    conn = connections.get("default")
    where, params = in_list(conn, "account_id", list(account_ids), 1, "int")
    rows = await fetch(
        conn, f"SELECT account_id, daily_use_fen FROM account_alarm_state WHERE {where}", params
    )
    return {r["account_id"]: r["daily_use_fen"] for r in rows if r["daily_use_fen"] is not None}


async def meter_kind(account_id: int, meter_id: int) -> MeterKind | None:
    """The kind of `meter_id` if it belongs to `account_id` (any status: a removed meter's
    history stays the account's), else None."""
    conn = connections.get("default")
    rows = await fetch(
        conn, "SELECT kind FROM meter WHERE id = $1 AND account_id = $2", [meter_id, account_id]
    )
    return MeterKind(rows[0]["kind"]) if rows else None


async def usage_days(account_id: int, meter_id: int, start: date, end: date) -> list[UsageDay]:
    """The meter's stored days in [start, end] while it belonged to `account_id`, by day."""
    conn = connections.get("default")
    bands = ", ".join(f"band{b}_e4" for b in BANDS)
    rows = await fetch(
        conn,
        f"SELECT day, quantity_e4, {bands}, amount_fen FROM daily_usage"
        " WHERE meter_id = $1 AND account_id = $2 AND day >= $3 AND day <= $4 ORDER BY day",
        [meter_id, account_id, start, end],
    )
    return [
        UsageDay(
            r["day"] if isinstance(r["day"], date) else date.fromisoformat(r["day"]),
            from_units(int(r["quantity_e4"])),
            {b: from_units(int(r[f"band{b}_e4"])) for b in BANDS if r[f"band{b}_e4"]},
            None if r["amount_fen"] is None else int(r["amount_fen"]),
        )
        for r in rows
    ]
