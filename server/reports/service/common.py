"""What the report queries share: the scope's site filter, dates and the account labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.ledger.sql import fetch, in_list, is_pg

E4 = Decimal("0.0001")  # daily_usage quantities are whole units of 0.0001 kWh / m³


def conn() -> BaseDBAsyncClient:
    return connections.get("default")


def day_param(c: BaseDBAsyncClient, day: date) -> Any:
    """A date as the database compares it (SQLite keeps ISO text)."""
    return day if is_pg(c) else day.isoformat()


def as_day(value: Any) -> date:
    return (
        value
        if isinstance(value, date) and not isinstance(value, datetime)
        else (date.fromisoformat(str(value)[:10]))
    )


def as_time(value: Any) -> datetime | None:
    if value is None:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def quantity(units: int) -> Decimal:
    """Whole 0.0001 units → kWh / m³."""
    return (Decimal(int(units)) * E4).quantize(E4)


@dataclass(frozen=True, slots=True)
class AccountLabel:
    id: int
    number: str
    tenant_name: str
    status: str
    site: str
    building: str
    floor: str
    room: str
    balance_fen: int

    @property
    def place(self) -> str:
        return " ".join(p for p in (self.building, self.floor, self.room) if p)


async def account_labels(
    site_ids: Sequence[int], account_id: int | None = None
) -> dict[int, AccountLabel]:
    """Every account of the sites (or the one), with where it is and its wallet now."""
    if not site_ids:
        return {}
    c = conn()
    sites, params = in_list(c, "a.site_id", list(site_ids), 1, "int")
    where = [sites]
    if account_id is not None:
        params.append(account_id)
        where.append(f"a.id = ${len(params)}")
    rows = await fetch(
        c,
        "SELECT a.id, a.number, a.tenant_name, a.status, a.balance_fen, s.name AS site,"
        " b.name AS building, f.name AS floor, r.name AS room FROM account a"
        " JOIN site s ON s.id = a.site_id LEFT JOIN room r ON r.id = a.room_id"
        " LEFT JOIN floor f ON f.id = r.floor_id LEFT JOIN building b ON b.id = f.building_id"
        f" WHERE {' AND '.join(where)} ORDER BY s.name, b.name, f.sort_order, f.name, r.name,"
        " a.number, a.id",
        params,
    )
    return {
        int(r["id"]): AccountLabel(
            int(r["id"]), r["number"], r["tenant_name"], str(r["status"]), r["site"],
            r["building"] or "", r["floor"] or "", r["room"] or "", int(r["balance_fen"]),
        )
        for r in rows
    }  # fmt: skip
