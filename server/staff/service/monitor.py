"""Room monitoring (房间监控, /admin/monitor) and a room's live panel (/admin/rooms/<id>/live):
what staff watch all day, read from the tables the core keeps up to date — the meters' state
(`meter`: online, relay), their live values (`meter_live`), the accounts' alarm state
(`account_alarm_state`), daily usage (`daily_usage`) — never recomputed from readings.

    monitor(filter, paging, today=…) -> Monitor        tree, counts by state, a page of tiles
    room_live(site_ids, room_id, today=…) -> RoomLive   one room: accounts, meters, 30 days

A page of tiles costs a fixed number of queries whatever the park's size (15,000 rooms): the
tree of floors (1), the rooms counted by floor and state (1: the filter's counts and the
tree's badges both come from it, and the page's total too), the page of rooms with their
state (1), the page's available balances (`server.metering.service.balance`, 2-3) and
today's electricity per room (1); the tree, the counts and the page run side by side. The
state is computed in SQL (`_STATE`, the same rule as the pure
`server.staff.vocabulary.classify`), so the filter and the counts need no row in Python.
Rooms reach their meters by `meter.room_id` and their accounts by `account.room_id`
(migration 0021 indexes both); a room with several open accounts shows the first and counts
them all.

The live panel sums the room's daily usage over every meter that was installed in the room
(`meter.room_id` stays on a meter that was replaced or removed), so a 换表 keeps the room's
chart continuous; the days left are the alarms' stored forecast (`forecast_from_rate`, as the
tenant's account detail shows them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.accounts.balance import Available
from server.core.errors import NotFound
from server.core.paging import Page, Paging
from server.ledger.sql import fetch, in_list, is_pg
from server.ledger.statement import Entry, entries
from server.metering.daily import from_units
from server.metering.models import MeterStatus
from server.metering.service.alarm_service import forecast_from_rate
from server.metering.service.balance import available_balances
from server.metering.service.daily_usage import zone
from server.metering.service.reading_store import as_datetime
from server.metering.vocabulary import MeterKind, RelayState
from server.staff.vocabulary import ROOM_STATES, RoomState

CHUNK = 5000  # room ids per query of today's use (an export asks for every room)
CHART_DAYS = 30
RECORDS = 8  # recent records per account on the live panel
_ACTIVE = f"'{MeterStatus.ACTIVE.value}'"
_OPEN_ACCOUNT = "'open'"  # server.accounts.models.AccountStatus.OPEN
_LIVE = ("voltage", "current", "power", "power_factor")

# The rule of `server.staff.vocabulary.classify`, in SQL over the query of `_source`.
_STATE = (
    "CASE WHEN ra.account_id IS NOT NULL AND COALESCE(m.tripped, 0) > 0 THEN 'tripped'"
    " WHEN COALESCE(m.offline, 0) > 0 THEN 'offline'"
    " WHEN ra.account_id IS NULL THEN 'vacant'"
    " WHEN ra.alarm_level > 0 THEN 'alarm'"
    " ELSE 'normal' END"
)
# Park order: sites and buildings as they were created (the order staff laid them out, and
# numeric where names like 2号楼/10号楼 would sort as text), floors by their order, rooms by
# name. Ids first: a page deep in 15,000 rooms sorts them all, and comparing names under the
# database's collation for every pair cost more than the rest of the query (bench/README.md).
_ORDER = "s.id, b.id, f.sort_order, f.id, r.name, r.id"


@dataclass(frozen=True, slots=True)
class MonitorFilter:
    site_ids: Sequence[int]  # the scope (or the one site chosen), already checked
    building_id: int | None = None
    floor_id: int | None = None
    state: RoomState | None = None
    q: str = ""  # room, tenant, account number, phone or meter address


@dataclass(frozen=True, slots=True)
class Tile:
    room_id: int
    room_name: str
    site_id: int
    site_name: str
    building_id: int
    building_name: str
    floor_id: int
    floor_name: str
    state: RoomState
    account_id: int | None
    account_number: str
    tenant_name: str
    phone: str
    accounts: int  # open accounts in the room (the tile shows the first)
    meters: int  # active meters
    offline: int
    tripped: int
    alarm_level: int
    available_fen: int | None  # the first account's available balance (None: vacant)
    today_kwh: Decimal  # electricity today, every meter of the room, CT×PT applied


@dataclass(slots=True)
class TreeFloor:
    id: int
    name: str
    states: dict[RoomState, int] = field(default_factory=dict)

    @property
    def rooms(self) -> int:
        return sum(self.states.values())

    @property
    def problems(self) -> int:
        """Rooms that need a person: tripped, in alarm or offline."""
        return sum(self.states.get(s, 0) for s in (RoomState.TRIPPED, RoomState.ALARM,
                                                   RoomState.OFFLINE))  # fmt: skip


@dataclass(slots=True)
class TreeBuilding:
    id: int
    name: str
    floors: list[TreeFloor] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(f.problems for f in self.floors)


@dataclass(slots=True)
class TreeSite:
    id: int
    name: str
    buildings: list[TreeBuilding] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(b.problems for b in self.buildings)


@dataclass(frozen=True, slots=True)
class Monitor:
    tree: list[TreeSite]
    counts: dict[RoomState, int]  # rooms of the selection (site/building/floor, search) by state
    page: Page[Tile]  # of the selection and the state filter


def local_today() -> date:
    """Today in the park's time zone (settings.timezone): the day daily usage counts in."""
    return datetime.now(zone()).date()


class _Params:
    """Numbered parameters ($1, $2…) as a statement is built; `ids` adds an IN list."""

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.conn = conn
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def ids(self, column: str, ids: Sequence[int]) -> str:
        clause, values = in_list(self.conn, column, list(ids), len(self.values) + 1, "int")
        self.values.extend(values)
        return clause


def _like(q: str) -> str:
    """A LIKE pattern for `q` anywhere, lower-cased, with its wildcards taken literally."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _source(f: MonitorFilter, p: _Params, *, narrow: bool) -> str:
    """FROM … WHERE of the scope's rooms in use, each with its open accounts (first id, count,
    deepest alarm level) and its active meters (count, offline, relay open); `narrow`
    applies the building and floor of the filter (the counts of the tree leave them out)."""
    level = "(st.state->>'level')::int" if is_pg(p.conn) else "json_extract(st.state, '$.level')"
    accounts = (
        "SELECT a.room_id, MIN(a.id) AS account_id, COUNT(*) AS accounts,"
        f" MAX(COALESCE({level}, 0)) AS alarm_level"
        # Only the states at a level join (migration 0019's partial index holds just those):
        # the thousands at level 0 are never read or parsed.
        f" FROM account a LEFT JOIN account_alarm_state st ON st.account_id = a.id AND {level} > 0"
        f" WHERE a.status = {_OPEN_ACCOUNT} AND a.room_id IS NOT NULL"
        f" AND {p.ids('a.site_id', f.site_ids)} GROUP BY a.room_id"
    )
    meters = (
        "SELECT room_id, COUNT(*) AS meters,"
        " SUM(CASE WHEN online THEN 0 ELSE 1 END) AS offline,"
        f" SUM(CASE WHEN relay_state = '{RelayState.OPEN.value}' THEN 1 ELSE 0 END) AS tripped"
        f" FROM meter WHERE status = {_ACTIVE} AND room_id IS NOT NULL"
        f" AND {p.ids('site_id', f.site_ids)} GROUP BY room_id"
    )
    where = [
        "r.retired_at IS NULL AND f.retired_at IS NULL AND b.retired_at IS NULL",
        p.ids("b.site_id", f.site_ids),
    ]
    if narrow and f.building_id is not None:
        where.append(f"b.id = {p.add(f.building_id)}")
    if narrow and f.floor_id is not None:
        where.append(f"f.id = {p.add(f.floor_id)}")
    if f.q:
        like = p.add(_like(f.q))
        match = f"LIKE {like} ESCAPE '\\'"
        where.append(
            f"(LOWER(r.name) {match}"
            " OR r.id IN (SELECT room_id FROM account"
            f" WHERE status = {_OPEN_ACCOUNT} AND room_id IS NOT NULL"
            f" AND {p.ids('site_id', f.site_ids)} AND (LOWER(tenant_name) {match}"
            f" OR LOWER(number) {match} OR phone {match}))"
            " OR r.id IN (SELECT room_id FROM meter WHERE room_id IS NOT NULL"
            f" AND {p.ids('site_id', f.site_ids)} AND LOWER(address) {match}))"
        )
    return (
        "FROM room r JOIN floor f ON f.id = r.floor_id"
        " JOIN building b ON b.id = f.building_id JOIN site s ON s.id = b.site_id"
        f" LEFT JOIN ({accounts}) ra ON ra.room_id = r.id"
        " LEFT JOIN account a ON a.id = ra.account_id"
        f" LEFT JOIN ({meters}) m ON m.room_id = r.id"
        f" WHERE {' AND '.join(where)}"
    )


async def monitor(f: MonitorFilter, paging: Paging, *, today: date | None = None) -> Monitor:
    """The tree of the scope's floors, the rooms counted by state, and the page of tiles
    (`today`: the local day, settings.timezone, by default)."""
    if not f.site_ids:
        return Monitor([], dict.fromkeys(ROOM_STATES, 0), Page([], 0, paging))
    # Side by side, each on its own pooled connection (as the dashboard's figures): the page
    # waits for the slowest of the two scans of the scope's rooms, not for their sum.
    (tree, floors_of), by_floor, tiles = await asyncio.gather(
        _tree(f.site_ids), _counts(f), room_tiles(f, paging, today=today)
    )
    for floor_id, states in by_floor.items():
        if floor_id in floors_of:
            floors_of[floor_id][1].states = states
    counts = dict.fromkeys(ROOM_STATES, 0)
    for floor_id, (building_id, _floor) in floors_of.items():
        if f.floor_id is not None and floor_id != f.floor_id:
            continue
        if f.building_id is not None and building_id != f.building_id:
            continue
        for state, n in by_floor.get(floor_id, {}).items():
            counts[state] += n
    total = counts[f.state] if f.state is not None else sum(counts.values())
    return Monitor(tree, counts, Page(tiles, total, paging))


async def _tree(site_ids: Sequence[int]) -> tuple[list[TreeSite], dict[int, tuple[int, TreeFloor]]]:
    """Sites → buildings → floors in use (one query), and each floor by id with its building."""
    conn = connections.get("default")
    p = _Params(conn)
    rows = await fetch(
        conn,
        "SELECT s.id AS site_id, s.name AS site_name, b.id AS building_id,"
        " b.name AS building_name, f.id AS floor_id, f.name AS floor_name"
        " FROM floor f JOIN building b ON b.id = f.building_id JOIN site s ON s.id = b.site_id"
        " WHERE f.retired_at IS NULL AND b.retired_at IS NULL AND s.retired_at IS NULL"
        f" AND {p.ids('s.id', site_ids)}"
        " ORDER BY s.id, b.id, f.sort_order, f.id",
        p.values,
    )
    sites: list[TreeSite] = []
    floors: dict[int, tuple[int, TreeFloor]] = {}
    for r in rows:
        if not sites or sites[-1].id != r["site_id"]:
            sites.append(TreeSite(r["site_id"], r["site_name"]))
        site = sites[-1]
        if not site.buildings or site.buildings[-1].id != r["building_id"]:
            site.buildings.append(TreeBuilding(r["building_id"], r["building_name"]))
        floor = TreeFloor(r["floor_id"], r["floor_name"])
        site.buildings[-1].floors.append(floor)
        floors[floor.id] = (r["building_id"], floor)
    return sites, floors


async def _counts(f: MonitorFilter) -> dict[int, dict[RoomState, int]]:
    """Rooms of the scope (and search) by floor and state: one grouped query."""
    conn = connections.get("default")
    p = _Params(conn)
    source = _source(f, p, narrow=False)
    rows = await fetch(
        conn,
        f"SELECT f.id AS floor_id, {_STATE} AS room_state, COUNT(*) AS n {source}"
        " GROUP BY f.id, room_state",
        p.values,
    )
    out: dict[int, dict[RoomState, int]] = {}
    for r in rows:
        out.setdefault(r["floor_id"], {})[RoomState(r["room_state"])] = int(r["n"])
    return out


async def room_tiles(f: MonitorFilter, paging: Paging, *, today: date | None = None) -> list[Tile]:
    """The filter's rooms in park order (site, building, floor, room), one page of them, with
    their state, first account's available balance and today's electricity."""
    if not f.site_ids:
        return []
    conn = connections.get("default")
    p = _Params(conn)
    source = _source(f, p, narrow=True)
    state = f" AND {_STATE} = {p.add(f.state.value)}" if f.state is not None else ""
    rows = await fetch(
        conn,
        "SELECT r.id, r.name, s.id AS site_id, s.name AS site_name, b.id AS building_id,"
        " b.name AS building_name, f.id AS floor_id, f.name AS floor_name,"
        " a.id AS account_id, a.number, a.tenant_name, a.phone,"
        " COALESCE(ra.accounts, 0) AS accounts, COALESCE(ra.alarm_level, 0) AS alarm_level,"
        " COALESCE(m.meters, 0) AS meters, COALESCE(m.offline, 0) AS offline,"
        f" COALESCE(m.tripped, 0) AS tripped, {_STATE} AS room_state"
        f" {source}{state} ORDER BY {_ORDER}"
        f" LIMIT {p.add(paging.per_page)} OFFSET {p.add(paging.offset)}",
        p.values,
    )
    balances = await available_balances([r["account_id"] for r in rows if r["account_id"]])
    used = await today_kwh(conn, [r["id"] for r in rows], today or local_today())
    return [_tile(r, balances, used) for r in rows]


def _tile(r: dict[str, Any], balances: dict[int, Available], used: dict[int, Decimal]) -> Tile:
    balance = balances.get(r["account_id"]) if r["account_id"] else None
    return Tile(
        room_id=r["id"], room_name=r["name"], site_id=r["site_id"], site_name=r["site_name"],
        building_id=r["building_id"], building_name=r["building_name"],
        floor_id=r["floor_id"], floor_name=r["floor_name"], state=RoomState(r["room_state"]),
        account_id=r["account_id"], account_number=r["number"] or "",
        tenant_name=r["tenant_name"] or "", phone=r["phone"] or "",
        accounts=int(r["accounts"]), meters=int(r["meters"]), offline=int(r["offline"]),
        tripped=int(r["tripped"]), alarm_level=int(r["alarm_level"] or 0),
        available_fen=balance.alarm_fen if balance is not None else None,
        today_kwh=used.get(r["id"], Decimal("0.0000")),
    )  # fmt: skip


async def today_kwh(
    conn: BaseDBAsyncClient, room_ids: Sequence[int], day: date
) -> dict[int, Decimal]:
    """Electricity used on `day` per room, every meter installed there (one query a chunk)."""
    out: dict[int, Decimal] = {}
    for i in range(0, len(room_ids), CHUNK):
        p = _Params(conn)
        at = p.add(day)
        rows = await fetch(
            conn,
            "SELECT m.room_id, SUM(d.quantity_e4) AS q FROM daily_usage d"
            " JOIN meter m ON m.id = d.meter_id"
            f" WHERE d.day = {at} AND m.kind = '{MeterKind.ELECTRICITY.value}'"
            f" AND {p.ids('m.room_id', room_ids[i : i + CHUNK])} GROUP BY m.room_id",
            p.values,
        )
        out |= {r["room_id"]: from_units(int(r["q"] or 0)) for r in rows}
    return out


# -- one room's live panel ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LiveAccount:
    id: int
    number: str
    tenant_name: str
    phone: str
    opened_at: datetime
    balance: Available
    days_left: Decimal | None  # the alarms' forecast at the stored daily rate (None: no rate)
    records: list[Entry]  # recent wallet movements other than usage charges, newest first

    @property
    def available_fen(self) -> int:
        return self.balance.alarm_fen


@dataclass(frozen=True, slots=True)
class LiveMeter:
    id: int
    kind: MeterKind
    address: str
    meter_billed: bool
    online: bool
    relay: RelayState
    protected: bool
    last_read_at: datetime | None
    register: Decimal | None  # the register as last read (before CT×PT)
    live_at: datetime | None  # when U, I, P, PF were read
    live: dict[str, Decimal]  # voltage V, current A, power kW, power_factor: those it gives


@dataclass(frozen=True, slots=True)
class UseDay:
    day: date
    electricity_kwh: Decimal
    water_m3: Decimal
    amount_fen: int  # what the platform charged for the day (0: nothing)


@dataclass(frozen=True, slots=True)
class RoomLive:
    room_id: int
    room_name: str
    accounts: list[LiveAccount]
    meters: list[LiveMeter]
    days: list[UseDay]  # the last CHART_DAYS days, oldest first, today last
    month: UseDay  # this month so far (its `day`: the 1st)

    @property
    def today(self) -> UseDay:
        return self.days[-1]


async def room_live(
    site_ids: Sequence[int], room_id: int, *, today: date | None = None
) -> RoomLive:
    """One room of the scope as its live panel shows it; `NotFound` outside the scope."""
    today = today or local_today()
    conn = connections.get("default")
    p = _Params(conn)
    at = p.add(room_id)
    rows = await fetch(
        conn,
        "SELECT r.id, r.name, a.id AS account_id, a.number, a.tenant_name, a.phone,"
        " a.opened_at, st.daily_use_fen"
        " FROM room r JOIN floor f ON f.id = r.floor_id JOIN building b ON b.id = f.building_id"
        f" LEFT JOIN account a ON a.room_id = r.id AND a.status = {_OPEN_ACCOUNT}"
        " LEFT JOIN account_alarm_state st ON st.account_id = a.id"
        f" WHERE r.id = {at} AND {p.ids('b.site_id', site_ids)} ORDER BY a.id",
        p.values,
    ) if site_ids else []  # fmt: skip
    if not rows:
        raise NotFound("房间不存在")
    opened = [r for r in rows if r["account_id"] is not None]
    balances = await available_balances([r["account_id"] for r in opened])
    accounts = []
    for r in opened:
        balance = balances[r["account_id"]]
        forecast = forecast_from_rate(balance.alarm_fen, r["daily_use_fen"])
        accounts.append(LiveAccount(
            r["account_id"], r["number"], r["tenant_name"], r["phone"],
            as_datetime(r["opened_at"]), balance,
            None if forecast is None else forecast.days,
            await entries(r["account_id"], limit=RECORDS),
        ))  # fmt: skip
    first = min(today - timedelta(days=CHART_DAYS - 1), today.replace(day=1))
    used = await _room_days(conn, room_id, first, today)
    days = [used.get(today - timedelta(days=n)) or _no_use(today - timedelta(days=n))
            for n in range(CHART_DAYS - 1, -1, -1)]  # fmt: skip
    month = [u for d, u in used.items() if d >= today.replace(day=1)]
    return RoomLive(
        room_id, rows[0]["name"], accounts, await _room_meters(conn, room_id), days,
        UseDay(
            today.replace(day=1),
            sum((u.electricity_kwh for u in month), Decimal("0.0000")),
            sum((u.water_m3 for u in month), Decimal("0.0000")),
            sum(u.amount_fen for u in month),
        ),
    )  # fmt: skip


def _no_use(day: date) -> UseDay:
    return UseDay(day, Decimal("0.0000"), Decimal("0.0000"), 0)


async def _room_meters(conn: BaseDBAsyncClient, room_id: int) -> list[LiveMeter]:
    rows = await fetch(
        conn,
        "SELECT m.id, m.kind, m.address, m.billing, m.online, m.relay_state, m.protected,"
        " m.last_reading_at, l.total, l.instant_at, l.voltage, l.current, l.power,"
        " l.power_factor FROM meter m LEFT JOIN meter_live l ON l.meter_id = m.id"
        f" WHERE m.room_id = $1 AND m.status = {_ACTIVE} ORDER BY m.kind, m.id",
        [room_id],
    )
    out = []
    for r in rows:
        live = {n: Decimal(str(r[n])) for n in _LIVE if r[n] is not None}
        out.append(LiveMeter(
            r["id"], MeterKind(r["kind"]), r["address"], r["billing"] == "meter",
            bool(r["online"]), RelayState(r["relay_state"]), bool(r["protected"]),
            as_datetime(r["last_reading_at"]) if r["last_reading_at"] else None,
            None if r["total"] is None else Decimal(str(r["total"])),
            as_datetime(r["instant_at"]) if r["instant_at"] and live else None, live,
        ))  # fmt: skip
    return out


async def _room_days(
    conn: BaseDBAsyncClient, room_id: int, first: date, last: date
) -> dict[date, UseDay]:
    """The room's use per day in [first, last]: every meter installed in the room, the
    removed and replaced ones included (one grouped query)."""
    rows = await fetch(
        conn,
        "SELECT d.day, m.kind, SUM(d.quantity_e4) AS q, SUM(d.amount_fen) AS fen"
        " FROM daily_usage d JOIN meter m ON m.id = d.meter_id"
        " WHERE m.room_id = $1 AND d.day >= $2 AND d.day <= $3 GROUP BY d.day, m.kind",
        [room_id, first, last],
    )
    kwh: dict[date, Decimal] = {}
    m3: dict[date, Decimal] = {}
    fen: dict[date, int] = {}
    for r in rows:
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(str(r["day"]))
        into = kwh if r["kind"] == MeterKind.ELECTRICITY.value else m3
        into[day] = into.get(day, Decimal("0.0000")) + from_units(int(r["q"] or 0))
        fen[day] = fen.get(day, 0) + int(r["fen"] or 0)
    return {
        d: UseDay(d, kwh.get(d, Decimal("0.0000")), m3.get(d, Decimal("0.0000")), fen.get(d, 0))
        for d in set(kwh) | set(m3)
    }
