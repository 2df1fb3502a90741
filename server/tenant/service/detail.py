"""`AccountDetail`: the summary plus the days-left forecast, today's use and the meters with
their state and live values. Three or four queries whatever the number of meters: the
bound account (views), its active meters joined with their live values and today's daily
usage (and the open recharges of meter-billed ones), the forecast rate."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from server.accounts.balance import available
from server.core.errors import NotFound
from server.metering.service.account_meters import MeterView, account_meters, forecast_rates
from server.metering.service.alarm_service import forecast_from_rate
from server.metering.service.daily_usage import zone
from server.metering.vocabulary import MeterKind
from server.tenant.service.access import NOT_FOUND
from server.tenant.service.views import bound_rows, summary

LABEL = {MeterKind.ELECTRICITY: "电表", MeterKind.WATER: "水表"}
UNIT = {MeterKind.ELECTRICITY: "kWh", MeterKind.WATER: "m³"}
# Live values as the contract names them, shown to the places the meters give them.
LIVE = {
    "voltage": ("voltage_v", Decimal("0.1")),
    "current": ("current_a", Decimal("0.01")),
    "power": ("power_kw", Decimal("0.001")),
    "power_factor": ("power_factor", Decimal("0.01")),
}


async def account_detail(identity_id: int, account_id: int) -> dict[str, Any]:
    """The detail of a bound account; `NotFound` when it is not bound to the caller."""
    rows = await bound_rows(identity_id, account_id)
    if not rows:
        raise NotFound(NOT_FOUND, account_id=account_id)
    row = rows[0]
    today = datetime.now(zone()).date()
    meters = (await account_meters([account_id], day=today)).get(account_id, [])
    balance = available(int(row["balance_fen"]), [m.money for m in meters])
    rate = (await forecast_rates([account_id])).get(account_id)
    forecast = forecast_from_rate(balance.alarm_fen, rate)
    days = None if forecast is None or forecast.days is None else float(forecast.days)
    return {
        **summary(row, balance),
        "credit_limit_fen": int(row["credit_limit_fen"]),
        "days_left": days,
        "today": _today(meters),
        "meters": [meter_view(m) for m in meters],
    }


def _today(meters: list[MeterView]) -> dict[str, Any]:
    def used(kind: MeterKind) -> str:
        return str(sum((m.today_quantity for m in meters if m.kind is kind), Decimal("0.0000")))

    return {
        "electricity_kwh": used(MeterKind.ELECTRICITY),
        "water_m3": used(MeterKind.WATER),
        "amount_fen": sum(m.today_fen or 0 for m in meters),
    }


def meter_view(m: MeterView) -> dict[str, Any]:
    """One meter as the contract's AccountDetail.meters[] item."""
    live: dict[str, Any] | None = None
    if m.live_at is not None:
        live = {LIVE[n][0]: str(v.quantize(LIVE[n][1])) for n, v in m.live.items()}
        live["at"] = m.live_at.isoformat()
    return {
        "id": m.id,
        "address": m.address,
        "kind": m.kind.value,
        "label": LABEL[m.kind],
        "relay": m.relay.value,
        "online": m.online,
        "last_read_at": m.last_read_at.isoformat() if m.last_read_at else None,
        "live": live,
        "today": {
            "quantity": str(m.today_quantity),
            "unit": UNIT[m.kind],
            "amount_fen": m.today_fen,
        },
        "balance_fen": m.money.register_fen if m.meter_billed else None,
    }
