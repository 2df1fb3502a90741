"""A small park's November 2026, for the reports' hand-checked examples: two shops on a TOU
plan (峰 08–24 ¥1.00, 谷 00–08 ¥0.50; from 16 Nov 00:00 ¥1.20 / ¥0.60), payments, a refund,
an adjustment, a reading of October posted in November and one of November posted in
December. Posting times are set by moving the ledger's clock (`server.ledger.write.now`).

Shop A101 (all times Asia/Shanghai):
  31 Oct 10:00  cash ¥500.00 in                                        (October: opening)
   1 Nov 00:00  reading 1000 (峰 600, 谷 400)                            first reading
  10 Nov 00:00  reading 1100 (峰 680, 谷 420): 80×1.00 + 20×0.50 = ¥90.00
  16 Nov 00:00  reading 1130 (峰 700, 谷 430): 20×1.00 + 10×0.50 = ¥25.00 (old price to 00:00)
  20 Nov 00:00  reading 1180 (峰 740, 谷 440): 40×1.20 + 10×0.60 = ¥54.00
  20 Nov 12:00  refund ¥100.00 (cash), set aside and paid out
  30 Nov 23:00  reading 1190 (峰 750, 谷 440): 10×1.20 = ¥12.00, arrives and is posted 2 Dec
  November: posted 90 + 25 + 54 = ¥169.00; opening ¥500.00, closing 500 − 169 − 100 = ¥231.00;
  used 190 kWh (峰 150, 谷 40) for ¥181.00 by reading time, of which ¥12.00 posted later;
  per band: 峰 80 + 20 + 48 + 12 = ¥160.00, 谷 10 + 5 + 6 = ¥21.00.

Shop A102:
  20 Oct 00:00  reading 500 (峰 300, 谷 200)                              first reading
   1 Nov 00:00  reading 510 (峰 308, 谷 202): 8×1.00 + 2×0.50 = ¥9.00 — October's use (a
                reading at midnight closes the day before), arrives and is posted 3 Nov
   5 Nov 09:00  Alipay ¥200.00 in
  15 Nov 12:00  reading 520 (峰 315, 谷 205): 7×1.00 + 3×0.50 = ¥8.50
  25 Nov 10:00  adjustment +¥3.00 (抄表差错补偿)
  November: opening ¥0.00, closing 200 − 9 − 8.50 + 3 = ¥185.50; posted electricity ¥17.50
  of which ¥9.00 for October's reading; used 10 kWh (峰 7, 谷 3) for ¥8.50 (峰 7, 谷 1.50).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest

from server.billing.pipeline import process_readings
from server.ledger.posting import Channel
from server.ledger.service import adjust, recharge, refund_hold, refund_settle
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.payments.service import record_counter_payment
from server.tariffs import LOCAL_TZ
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan, schedule_change
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)

DAY = [{"start": "00:00", "end": "08:00", "band": 4}, {"start": "08:00", "end": "24:00", "band": 2}]


def spec(peak: str, valley: str) -> dict:
    season = {"name": "全年", "months": list(range(1, 13)), "workday": DAY}
    return {"kind": "tou", "prices": {"2": peak, "4": valley}, "seasons": [season]}


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=LOCAL_TZ)


@dataclass
class Park:
    site_id: int
    organisation_id: int
    a101: int
    a102: int
    meter_a101: int
    meter_a102: int


async def seed_november(monkeypatch: pytest.MonkeyPatch) -> Park:
    clock = {"now": at(10, 1)}
    monkeypatch.setattr("server.ledger.write.now", lambda: clock["now"])
    org = await create_organisation(name="测试集团")
    site = await create_site(org, name="南山测试园")
    floor = await create_floor(await create_building(site, name="A栋"), name="1F")
    a101 = await create_account(await create_room(floor, name="A101"), site, number="A101",
                                tenant_name="一号便利店")  # fmt: skip
    a102 = await create_account(await create_room(floor, name="A102"), site, number="A102",
                                tenant_name="二号茶饮")  # fmt: skip
    plan = await create_plan(site.id, "商业分时", TariffKind.ELECTRICITY, spec("1.00", "0.50"),
                             effective_from=at(1, 1), actor="staff:0")  # fmt: skip
    await schedule_change(plan.id, spec("1.20", "0.60"), effective_from=at(11, 16),
                          now=at(10, 1), actor="staff:0")  # fmt: skip
    await assign(a101.id, plan.id)
    await assign(a102.id, plan.id)
    m1 = await create_meter(a101, installed_at=at(10, 1))
    m2 = await create_meter(a102, installed_at=at(10, 1))

    async def read(meter_id: int, when: datetime, total: str, peak: str, valley: str,
                   posted: datetime | None = None) -> None:  # fmt: skip
        clock["now"] = posted or when
        bands = {2: Decimal(peak), 4: Decimal(valley)}
        item = IncomingReading(meter_id, Reading(when, Decimal(total), bands))
        await process_readings([item], now=clock["now"])

    await read(m2.id, at(10, 20), "500", "300", "200")
    clock["now"] = at(10, 31, 10)
    await record_counter_payment(a101.id, "cash", 50_000, "RC-A101", actor="staff:0")
    await read(m1.id, at(11, 1), "1000", "600", "400")
    await read(m2.id, at(11, 1), "510", "308", "202", posted=at(11, 3, 9))
    clock["now"] = at(11, 5, 9)
    await recharge(a102.id, Channel.ALIPAY, 20_000, key="ali-A102", actor="tenant:o-1")
    await read(m1.id, at(11, 10), "1100", "680", "420")
    await read(m2.id, at(11, 15, 12), "520", "315", "205")
    await read(m1.id, at(11, 16), "1130", "700", "430")
    await read(m1.id, at(11, 20), "1180", "740", "440")
    clock["now"] = at(11, 20, 12)
    await refund_hold(a101.id, Channel.CASH, 10_000, key="rf-A101", actor="staff:0")
    await refund_settle("rf-A101", key="rf-A101-paid", actor="staff:0")
    clock["now"] = at(11, 25, 10)
    await adjust(a102.id, 300, key="adj-A102", actor="staff:0", reason="抄表差错补偿")
    await read(m1.id, at(11, 30, 23), "1190", "750", "440", posted=at(12, 2, 8))
    return Park(site.id, org.id, a101.id, a102.id, m1.id, m2.id)
