"""Park workbooks for the import tests, built as staff would fill in the template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.core.excel import Sheet, write_xlsx
from server.imports.service.workbook import (
    METER_COLUMNS,
    METERS,
    ROOM_COLUMNS,
    ROOMS,
    TENANT_COLUMNS,
    TENANTS,
)

Rows = Sequence[Sequence[Any]]


def book(rooms: Rows = (), tenants: Rows = (), meters: Rows = ()) -> bytes:
    """A workbook with the three sheets (headers as in the template) and these rows."""
    return write_xlsx(
        Sheet(ROOMS, list(ROOM_COLUMNS), rooms),
        Sheet(TENANTS, list(TENANT_COLUMNS), tenants),
        Sheet(METERS, list(METER_COLUMNS), meters),
    )


def room(building: str = "A栋", floor: Any = "1", number: Any = "101", area: Any = 56.3,
         use: str = "商铺") -> list[Any]:  # fmt: skip
    return [building, floor, number, area, use]


def tenant(number: Any = "101", account: Any = "A101", building: str = "A栋",
           name: str = "深圳市某某商贸有限公司", kind: str = "企业",
           phone: Any = "13800138000") -> list[Any]:  # fmt: skip
    return [building, number, account, name, kind, phone]


def meter(address: Any = "000000000101", gateway: str = "GW-T", number: Any = "101",
          building: str = "A栋", kind: str = "电表", protocol: str = "DL/T 645-2007",
          unit: Any = "", ct: Any = 1, pt: Any = 1, billing: str = "平台",
          start: Any = 0, model: str = "DDS1352") -> list[Any]:  # fmt: skip
    return [address, kind, protocol, gateway, unit, model, ct, pt, billing, building, number, start]


def park(n: int, gateway: str = "GW-T") -> bytes:
    """`n` rooms over buildings of 20 floors × 10 rooms, each with a tenant and a meter."""
    rooms, tenants, meters = [], [], []
    for i in range(n):
        b, f, r = (
            f"{i // 200 + 1}号楼",
            str(i // 10 % 20 + 1),
            f"{i // 10 % 20 + 1}{i % 10 + 1:02d}",
        )
        rooms.append(room(b, f, r, 40 + i % 30, "办公"))
        tenants.append(tenant(r, f"H{i:05d}", b, f"租户{i}", "企业", f"139{i:08d}"))
        meters.append(meter(f"{i + 1:012d}", gateway, r, b, start=f"{i}.5"))
    return book(rooms, tenants, meters)
