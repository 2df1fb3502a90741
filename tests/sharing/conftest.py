"""A small park for the sharing tests: one site, a three-floor building with a tenant per floor
(120, 200 and 180 m²), each on a flat ¥0.70 tariff with its meter read at the start and the
end of November 2026; a lift master meter on no account, read at the same times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from server.accounts.models import Account
from server.billing.pipeline import process_readings
from server.metering.models import Meter
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.places.models import Site
from server.tariffs.models import TariffKind, TariffPlan
from server.tariffs.service import assign, create_plan
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)

TZ = ZoneInfo("Asia/Shanghai")
NOV_1 = datetime(2026, 11, 1, tzinfo=TZ)
DEC_1 = datetime(2026, 12, 1, tzinfo=TZ)


@dataclass
class Building:
    site: Site
    accounts: list[Account]
    meters: list[Meter]
    lift: Meter
    plan: TariffPlan


async def flat_plan(site: Site, name: str, price: str) -> TariffPlan:
    return await create_plan(
        site.id, name, TariffKind.ELECTRICITY, {"kind": "flat", "unit": "kWh", "price": price},
        effective_from=datetime(2026, 1, 1, tzinfo=TZ), actor="staff:0",
    )  # fmt: skip


async def read(meter: Meter, at: datetime, total: str) -> None:
    await process_readings([IncomingReading(meter.id, Reading(at, Decimal(total)))], now=at)


async def three_floors(
    use: tuple[str, ...] = ("300", "500", "400"), lift_use: str = "1234.5",
    prices: tuple[str, ...] = ("0.70", "0.70", "0.70"),
) -> Building:  # fmt: skip
    site = await create_site(await create_organisation(), name="电梯公摊园区")
    building = await create_building(site, name="A栋")
    plans: dict[str, TariffPlan] = {}
    accounts, meters = [], []
    for n, (area, kwh, price) in enumerate(zip(("120", "200", "180"), use, prices, strict=True)):
        floor = await create_floor(building, name=f"{n + 1}F")
        room = await create_room(floor, name=f"{n + 1}01", area_m2=Decimal(area))
        account = await create_account(room, site, tenant_name=f"{n + 1}楼商户", number=f"A{n + 1}")
        if price not in plans:
            plans[price] = await flat_plan(site, f"商业电价{price}", price)
        await assign(account.id, plans[price].id)
        meter = await create_meter(account, rated_kw=Decimal(100))
        await read(meter, NOV_1, "100.00")
        await read(meter, DEC_1, str(Decimal("100.00") + Decimal(kwh)))
        accounts.append(account)
        meters.append(meter)
    lift = await Meter.create(
        site_id=site.id, kind="electricity", model="DTSD1352", protocol="dlt645",
        address="990000000001", rated_kw=Decimal(100),
    )  # fmt: skip
    await read(lift, NOV_1, "5000.0")
    await read(lift, DEC_1, str(Decimal("5000.0") + Decimal(lift_use)))
    plan = await flat_plan(site, "公共区域电价", "0.80")
    return Building(site, accounts, meters, lift, plan)
