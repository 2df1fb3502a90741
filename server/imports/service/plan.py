"""What an import would create, checked against what the site already has (pure: the site's
state comes in as values, see `park.load_site`).

Rooms are named by building and room number: a room number repeats at most once per
building, so a tenant or meter row can find its room. Buildings and floors that exist are
reused; a room, an account number or a meter's wire identity that exists is a clash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from server.imports.service.workbook import (
    METERS,
    ROOMS,
    TENANTS,
    MeterRow,
    Parsed,
    Problem,
    RoomRef,
    RoomRow,
    TenantRow,
)
from server.metering.vocabulary import PROTOCOL_GATEWAYS, PROTOCOL_LABELS, MeterProtocol

RoomKey = tuple[str, str]  # (building, room number)
DeviceKey = tuple[str, str, int]  # (protocol, address, unit): one active meter per site


@dataclass(frozen=True, slots=True)
class Gateway:
    id: int
    kind: str  # server.metering.models.GatewayKind value


@dataclass
class SiteState:
    """The parts of one site an import is checked against."""

    site_id: int
    buildings: dict[str, int] = field(default_factory=dict)  # name → id
    floors: dict[tuple[str, str], int] = field(default_factory=dict)  # (building, floor) → id
    rooms: dict[RoomKey, int] = field(default_factory=dict)  # → room id
    accounts: dict[int, str] = field(default_factory=dict)  # room id → open account's number
    numbers: dict[str, int] = field(default_factory=dict)  # every account number → its id
    gateways: dict[str, Gateway] = field(default_factory=dict)  # code → gateway
    devices: set[DeviceKey] = field(default_factory=set)  # active meters
    # Retired (停用) structure: kept for its history, given no new rooms, tenants or meters.
    retired_buildings: set[str] = field(default_factory=set)
    retired_floors: set[tuple[str, str]] = field(default_factory=set)
    retired_rooms: set[RoomKey] = field(default_factory=set)


@dataclass
class Plan:
    """The rows to create, in the order they are written, and every problem."""

    buildings: list[str] = field(default_factory=list)
    floors: list[tuple[str, str]] = field(default_factory=list)
    rooms: list[RoomRow] = field(default_factory=list)
    tenants: list[tuple[TenantRow, RoomKey]] = field(default_factory=list)
    # A meter, its account's number (new or existing; None: no tenant) and its room.
    meters: list[tuple[MeterRow, str | None, RoomKey | None]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def fail(self, sheet: str, row: int, column: str, message: str) -> None:
        self.problems.append(Problem(sheet, row, column, message))

    def counts(self) -> dict[str, int]:
        return {
            "buildings": len(self.buildings),
            "floors": len(self.floors),
            "rooms": len(self.rooms),
            "accounts": len(self.tenants),
            "meters": len(self.meters),
            "readings": sum(1 for m, _, _ in self.meters if m.start is not None),
        }


def floor_order(name: str) -> int:
    """A floor's place in lists: "3", "3F", "3层" → 3; "B1", "-1", "负一层" (basements) below 0."""
    found = re.search(r"\d+", name)
    if found is None:
        return 0
    number = int(found.group())
    return -number if name.startswith(("B", "b", "-", "负", "地下")) else number


def plan(parsed: Parsed, site: SiteState) -> Plan:
    """Check `parsed` against `site`; every problem is reported, not just the first."""
    out = Plan(problems=list(parsed.problems))
    _rooms(parsed.rooms, site, out)
    keys = set(site.rooms) | {(r.building, r.room) for r in out.rooms} | parsed.flawed_rooms
    by_number: dict[str, list[RoomKey]] = {}
    for key in sorted(keys):
        by_number.setdefault(key[1], []).append(key)
    tenants = _tenants(parsed.tenants, site, by_number, out)
    _meters(parsed.meters, site, by_number, tenants, out)
    order = {ROOMS: 1, TENANTS: 2, METERS: 3}
    out.problems.sort(key=lambda p: (order.get(p.sheet, 0), p.row))
    return out


def _rooms(rows: list[RoomRow], site: SiteState, out: Plan) -> None:
    seen: dict[RoomKey, int] = {}
    for r in rows:
        key = (r.building, r.room)
        if key in seen:
            out.fail(ROOMS, r.row, "房号", f"与第 {seen[key]} 行重复（同一楼栋内房号不能重复）")
            continue
        seen[key] = r.row
        if key in site.rooms:
            out.fail(ROOMS, r.row, "房号", f"本站点已有房间 {r.building} {r.room}")
            continue
        if r.building in site.retired_buildings:
            out.fail(ROOMS, r.row, "楼栋", f"楼栋 {r.building} 已停用，不能再添加房间")
            continue
        if (r.building, r.floor) in site.retired_floors:
            out.fail(ROOMS, r.row, "楼层", f"{r.building} {r.floor} 层已停用，不能再添加房间")
            continue
        out.rooms.append(r)
        if r.building not in site.buildings and r.building not in out.buildings:
            out.buildings.append(r.building)
        floor = (r.building, r.floor)
        if floor not in site.floors and floor not in out.floors:
            out.floors.append(floor)


def _find(ref: RoomRef, by_number: dict[str, list[RoomKey]], site: SiteState) -> RoomKey | str:
    """The room `ref` names, or why it names none (a retired room takes nothing new)."""
    candidates = by_number.get(ref.room, [])
    if ref.building:
        key = (ref.building, ref.room)
        if key not in candidates:
            return f"找不到房间 {ref.label()}：它不在“房间”表中，本站点也没有"
    elif len(candidates) == 1:
        key = candidates[0]
    elif not candidates:
        return f"找不到房号 {ref.room}：它不在“房间”表中，本站点也没有"
    else:
        return f"多个楼栋都有房号 {ref.room}，请填写楼栋"
    if key in site.retired_rooms:
        return f"房间 {key[0]} {key[1]} 已停用"
    return key


def _tenants(
    rows: list[TenantRow], site: SiteState, by_number: dict[str, list[RoomKey]], out: Plan
) -> dict[RoomKey, str]:
    """Check the tenant rows; returns the new account's number per room."""
    numbers: dict[str, int] = {}
    rooms: dict[RoomKey, int] = {}
    for t in rows:
        found = _find(t.ref, by_number, site)
        problems = len(out.problems)
        if isinstance(found, str):
            out.fail(TENANTS, t.row, "房号", found)
        elif found in rooms:
            out.fail(
                TENANTS, t.row, "房号", f"第 {rooms[found]} 行已为该房间开户（一个房间一个户）"
            )
        elif found in site.rooms and site.rooms[found] in site.accounts:
            held = site.accounts[site.rooms[found]]
            out.fail(TENANTS, t.row, "房号", f"该房间已有租户（户号 {held}），请先销户")
        if t.number in numbers:
            out.fail(TENANTS, t.row, "户号", f"与第 {numbers[t.number]} 行重复")
        elif t.number in site.numbers:
            out.fail(TENANTS, t.row, "户号", f"本站点已有户号 {t.number}")
        numbers.setdefault(t.number, t.row)
        if len(out.problems) == problems and not isinstance(found, str):
            rooms[found] = t.row
            out.tenants.append((t, found))
    return {key: t.number for t, key in out.tenants}


def _meters(
    rows: list[MeterRow],
    site: SiteState,
    by_number: dict[str, list[RoomKey]],
    tenants: dict[RoomKey, str],
    out: Plan,
) -> None:
    devices: dict[DeviceKey, int] = {}
    for m in rows:
        problems = len(out.problems)
        _gateway(m, site, out)
        device = (m.protocol.value, m.address, m.unit)
        if device in devices:
            out.fail(
                METERS, m.row, "表号/地址", f"与第 {devices[device]} 行是同一块表（协议、地址相同）"
            )
        elif device in site.devices:
            out.fail(METERS, m.row, "表号/地址", f"本站点已有在用的表 {m.address}")
        devices.setdefault(device, m.row)
        number, room = None, None
        if m.ref is not None:
            found = _find(m.ref, by_number, site)
            if isinstance(found, str):
                out.fail(METERS, m.row, "房号", found)
            else:  # a vacant room's meter keeps its room; its account comes with the tenant
                room = found
                number = tenants.get(found) or site.accounts.get(site.rooms.get(found, -1))
        if len(out.problems) == problems:
            out.meters.append((m, number, room))


def _gateway(m: MeterRow, site: SiteState, out: Plan) -> None:
    gateway = site.gateways.get(m.gateway)
    if gateway is None:
        out.fail(METERS, m.row, "网关编号", f"本站点没有编号为 {m.gateway} 的网关，请先登记网关")
    elif gateway.kind != PROTOCOL_GATEWAYS[MeterProtocol(m.protocol)]:
        label = PROTOCOL_LABELS[m.protocol]
        out.fail(METERS, m.row, "网关编号", f"网关 {m.gateway} 的类型不能接 {label} 协议的表")
