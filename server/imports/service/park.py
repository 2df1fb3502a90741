"""Preview and commit of a park workbook (see the package docstring).

`preview` reads the file, checks every row against the site and says what would be created,
writing nothing. `commit` does the same checks again under a lock on the site row (another
import into the same site waits), then writes everything in one transaction with one bulk
statement per table — buildings, floors, rooms, accounts, meters, start readings — and one
operation-log entry naming the file by its SHA-256. Any problem, or a clash the database
finds first (a concurrent change by another page), rolls the whole import back.

Accounts open with a zero balance and no money posting; the ledger is not touched. A start
reading is stored as the meter's first accepted reading (a baseline: nothing to bill), as
ingest would store the first reading a collector brings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus, BillingMode
from server.audit.service import record
from server.core.errors import Conflict, ValidationFailed
from server.core.excel import read_xlsx
from server.imports.service.plan import Gateway, Plan, SiteState, floor_order, plan
from server.imports.service.workbook import Problem, parse
from server.ledger.sql import Col, insert_rows, is_pg
from server.metering.ingest import Outcome
from server.metering.models import (
    BillingStatus,
    Meter,
    MeterStatus,
    ReadingSource,
)
from server.metering.models import Gateway as GatewayRow
from server.metering.service import reading_store
from server.metering.vocabulary import RelayState
from server.places.models import Building, Floor, Room, Site

ACTION = "import.park"


class ImportRefused(ValidationFailed):
    """The file has problems (listed in `problems`); nothing was written."""

    code = "import_refused"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"文件中有 {len(problems)} 处错误，未导入任何数据")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Preview:
    """What the file would create (`counts`) and what is wrong with it."""

    counts: dict[str, int]
    problems: list[Problem]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def load_site(site_id: int) -> SiteState:
    """The site's buildings, floors, rooms, account numbers, gateways and active meters."""
    if await Site.filter(id=site_id, retired_at__isnull=False).exists():
        raise Conflict("站点已停用，不能再导入")
    state = SiteState(site_id)
    for name, building_id, retired in await Building.filter(site_id=site_id).values_list(
        "name", "id", "retired_at"
    ):
        state.buildings[name] = building_id
        if retired is not None:
            state.retired_buildings.add(name)
    for building, name, floor_id, retired in await Floor.filter(
        building__site_id=site_id
    ).values_list("building__name", "name", "id", "retired_at"):
        state.floors[(building, name)] = floor_id
        if retired is not None:
            state.retired_floors.add((building, name))
    rooms = Room.filter(floor__building__site_id=site_id).values_list(
        "floor__building__name", "name", "id", "retired_at", "floor__retired_at",
        "floor__building__retired_at",
    )  # fmt: skip
    for building, name, room_id, *retired in await rooms:
        state.rooms[(building, name)] = room_id
        if any(at is not None for at in retired):  # in a retired floor or building too
            state.retired_rooms.add((building, name))
    for number, account_id, room_id, status in await Account.filter(site_id=site_id).values_list(
        "number", "id", "room_id", "status"
    ):
        state.numbers[number] = account_id
        if room_id is not None and status == AccountStatus.OPEN:
            state.accounts[room_id] = number
    gateways = await GatewayRow.filter(site_id=site_id, retired_at__isnull=True).values_list(
        "code", "id", "kind"
    )
    state.gateways = {code: Gateway(i, str(kind)) for code, i, kind in gateways}
    devices = await Meter.filter(site_id=site_id, status=MeterStatus.ACTIVE).values_list(
        "protocol", "address", "unit"
    )
    state.devices = {(str(p), a, u) for p, a, u in devices}
    return state


async def preview(site_id: int, data: bytes) -> Preview:
    """What importing `data` into the site would create, and every problem; writes nothing.
    An unreadable or hostile file raises ValidationFailed (server.core.excel)."""
    checked = plan(parse(read_xlsx(data)), await load_site(site_id))
    return Preview(checked.counts(), checked.problems)


async def commit(site_id: int, data: bytes, *, file_name: str, actor: str) -> dict[str, int]:
    """Import `data` into the site all or nothing; the counts of what was created.
    ImportRefused (with every problem) when the file has any."""
    parsed = parse(read_xlsx(data))  # before the lock: reading the file is the slow part
    try:
        async with in_transaction() as conn:
            if is_pg(conn):  # imports into one site queue here, so both see each other's rows
                await conn.execute_query("SELECT id FROM site WHERE id = $1 FOR UPDATE", [site_id])
            known = await load_site(site_id)
            checked = plan(parsed, known)
            if checked.problems:
                raise ImportRefused(checked.problems)
            await _write(conn, known, checked)
            counts = checked.counts()
            name = file_name[:200]
            await record(
                actor, ACTION, target_type="site", target_id=site_id, site_id=site_id,
                reason=f"Excel 导入 {name}：新建 {counts['rooms']} 个房间、"
                f"{counts['accounts']} 个户、{counts['meters']} 块表",
                detail={"file": name, "sha256": sha256(data), **counts},
            )  # fmt: skip
    except IntegrityError as exc:
        raise Conflict("导入期间站点数据被其他操作修改，请重新上传预览后再导入") from exc
    return counts


async def _write(conn: BaseDBAsyncClient, known: SiteState, todo: Plan) -> None:
    """One insert per table, ids carried forward by natural keys (RETURNING)."""
    site_id = known.site_id
    buildings = dict(known.buildings)
    rows = await insert_rows(
        conn, "building", [Col("site_id", "int"), Col("name", "text")],
        [(site_id, name) for name in todo.buildings], suffix="RETURNING id, name",
    )  # fmt: skip
    buildings |= {r["name"]: r["id"] for r in rows}
    floors = dict(known.floors)
    names = {i: n for n, i in buildings.items()}
    rows = await insert_rows(
        conn, "floor", [Col("building_id", "int"), Col("name", "text"), Col("sort_order", "int")],
        [(buildings[b], f, floor_order(f)) for b, f in todo.floors],
        suffix="RETURNING id, building_id, name",
    )  # fmt: skip
    floors |= {(names[r["building_id"]], r["name"]): r["id"] for r in rows}
    rooms = await _rooms(conn, todo, floors)
    rooms |= known.rooms
    accounts = dict(known.numbers) | await _accounts(conn, site_id, todo, rooms)
    meters = await _meters(conn, site_id, todo, known, accounts, rooms)
    await _readings(conn, todo, meters)


async def _rooms(
    conn: BaseDBAsyncClient, todo: Plan, floors: dict[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    cols = [
        Col("floor_id", "int"), Col("name", "text"), Col("area_m2", "text", "numeric"),
        Col("use", "text"),
    ]  # fmt: skip
    default = Room._meta.fields_map["use"].default
    rows = [
        (floors[(r.building, r.floor)], r.room, str(r.area), (r.use or default).value)
        for r in todo.rooms
    ]
    by_floor = {i: k for k, i in floors.items()}
    made = await insert_rows(conn, "room", cols, rows, suffix="RETURNING id, floor_id, name")
    return {(by_floor[r["floor_id"]][0], r["name"]): r["id"] for r in made}


async def _accounts(
    conn: BaseDBAsyncClient, site_id: int, todo: Plan, rooms: dict[tuple[str, str], int]
) -> dict[str, int]:
    cols = [
        Col("site_id", "int"), Col("room_id", "int"), Col("number", "text"),
        Col("tenant_name", "text"), Col("phone", "text"), Col("tenant_type", "text"),
        Col("status", "text"), Col("billing_mode", "text"), Col("balance_fen", "bigint"),
        Col("credit_limit_fen", "bigint"), Col("opened_at", "timestamptz"),
        Col("created_at", "timestamptz"), Col("electricity_carry_fen", "text"),
        Col("electricity_cumulative", "text"), Col("water_carry_fen", "text"),
        Col("water_cumulative", "text"),
    ]  # fmt: skip
    now = datetime.now(UTC)
    rows = [
        (
            site_id, rooms[key], t.number, t.tenant, t.phone, t.type.value,
            AccountStatus.OPEN.value, BillingMode.PREPAID.value, 0, 0, now, now, "0", "0", "0", "0",
        )
        for t, key in todo.tenants
    ]  # fmt: skip
    made = await insert_rows(conn, "account", cols, rows, suffix="RETURNING id, number")
    return {r["number"]: r["id"] for r in made}


async def _meters(
    conn: BaseDBAsyncClient,
    site_id: int,
    todo: Plan,
    known: SiteState,
    accounts: dict[str, int],
    rooms: dict[tuple[str, str], int],
) -> dict[tuple[str, str, int], int]:
    cols = [
        Col("site_id", "int"), Col("account_id", "int"), Col("gateway_id", "int"),
        Col("kind", "text"), Col("model", "text"), Col("protocol", "text"),
        Col("address", "text"), Col("unit", "int"), Col("ct_ratio", "int"),
        Col("pt_ratio", "int"), Col("rated_kw", "text", "numeric"), Col("billing", "text"),
        Col("status", "text"), Col("relay_state", "text"), Col("protected", "bool"),
        Col("online", "bool"), Col("missed_reads", "int"), Col("purchase_count", "int"),
        Col("installed_at", "timestamptz"), Col("room_id", "int"),
    ]  # fmt: skip
    now = datetime.now(UTC)
    rated = str(Meter._meta.fields_map["rated_kw"].default)
    rows = [
        (
            site_id, accounts[number] if number else None, known.gateways[m.gateway].id,
            m.kind.value, m.model, m.protocol.value, m.address, m.unit, m.ct, m.pt, rated,
            m.billing.value, MeterStatus.ACTIVE.value, RelayState.UNKNOWN.value, False, False,
            0, 0, now, rooms[room] if room else None,
        )
        for m, number, room in todo.meters
    ]  # fmt: skip
    made = await insert_rows(
        conn, "meter", cols, rows, suffix="RETURNING id, protocol, address, unit"
    )
    return {(r["protocol"], r["address"], r["unit"]): r["id"] for r in made}


async def _readings(
    conn: BaseDBAsyncClient, todo: Plan, meters: dict[tuple[str, str, int], int]
) -> None:
    """Each start reading as the meter's first accepted reading: a baseline, nothing billed."""
    now = datetime.now(UTC)
    rows = [
        (
            meters[(m.protocol.value, m.address, m.unit)], now, reading_store.total_text(m.start),
            "{}", Outcome.BASELINE.value, ReadingSource.MANUAL.value, BillingStatus.NONE.value,
            None, "0", "", None, None, now,
        )
        for m, _, _ in todo.meters
        if m.start is not None
    ]  # fmt: skip
    await insert_rows(conn, "meter_reading", reading_store.READING_COLS, rows)
