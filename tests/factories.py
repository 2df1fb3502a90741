"""Factories for tests: `create_*` functions that make valid rows with sensible defaults.

Each takes keyword overrides and creates whatever parents it needs, so a test names only what
it cares about.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from server.accounts.models import Account, AccountBinding, TenantIdentity
from server.metering.models import Gateway, GatewayKind, Meter
from server.metering.vocabulary import MeterKind, MeterProtocol
from server.places.models import Building, Floor, Organisation, Room, Site

_seq = itertools.count(1)


def _n() -> int:
    return next(_seq)


async def create_organisation(**kw: Any) -> Organisation:
    return await Organisation.create(**{"name": f"集团{_n()}", **kw})


async def create_site(organisation: Organisation | None = None, **kw: Any) -> Site:
    organisation = organisation or await create_organisation()
    return await Site.create(**{"organisation": organisation, "name": f"园区{_n()}", **kw})


async def create_building(site: Site | None = None, **kw: Any) -> Building:
    site = site or await create_site()
    return await Building.create(**{"site": site, "name": f"{_n()}号楼", **kw})


async def create_floor(building: Building | None = None, **kw: Any) -> Floor:
    building = building or await create_building()
    return await Floor.create(**{"building": building, "name": f"{_n()}F", **kw})


async def create_room(floor: Floor | None = None, **kw: Any) -> Room:
    floor = floor or await create_floor()
    return await Room.create(
        **{"floor": floor, "name": f"{_n():04d}", "area_m2": Decimal("56.30"), **kw}
    )


async def create_account(room: Room | None = None, site: Site | None = None, **kw: Any) -> Account:
    if room is None:
        floor = await create_floor(await create_building(site) if site else None)
        room = await create_room(floor)
    if site is None:
        await room.fetch_related("floor__building__site")
        site = room.floor.building.site
    defaults: dict[str, Any] = {
        "site": site,
        "room": room,
        "number": f"H{_n():06d}",
        "tenant_name": "深圳市某某商贸有限公司",
        "phone": "13800138000",
        "opened_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return await Account.create(**{**defaults, **kw})


async def create_gateway(site: Site | None = None, **kw: Any) -> Gateway:
    site = site or await create_site()
    return await Gateway.create(
        **{"site": site, "code": f"GW{_n():05d}", "kind": GatewayKind.MQTT, **kw}
    )


async def create_meter(account: Account | None = None, **kw: Any) -> Meter:
    account = account if account is not None else await create_account()
    site_id = kw.pop("site_id", None) or account.site_id
    defaults: dict[str, Any] = {
        "site_id": site_id,
        "account": account,
        "room_id": account.room_id,  # type: ignore[attr-defined]
        "kind": MeterKind.ELECTRICITY,
        "model": "DDSY1352",
        "protocol": MeterProtocol.DLT645,
        "address": f"{_n():012d}",
        "installed_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return await Meter.create(**{**defaults, **kw})


async def create_identity(**kw: Any) -> TenantIdentity:
    return await TenantIdentity.create(**{"openid": f"o-test-{_n():08d}", **kw})


async def bind(identity: TenantIdentity, account: Account) -> AccountBinding:
    return await AccountBinding.create(identity=identity, account=account)
