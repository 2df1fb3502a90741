"""Tariff persistence: plans are stored in their validated JSON form, versions are added for
now or later, accounts are assigned per utility, and the loaded Tariff prices piece by piece."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from server.core.errors import NotFound
from server.tariffs import LOCAL_TZ, FlatPlan, InvalidTariff, Unit, UsageSlice, price_usage
from server.tariffs.models import TariffAssignment, TariffKind, TariffVersion
from server.tariffs.service import (
    TariffNotAssigned,
    assign,
    create_plan,
    load_tariff,
    schedule_change,
    tariff_for,
)
from tests.factories import create_account

JAN = datetime(2026, 1, 1, tzinfo=LOCAL_TZ)
NOW = datetime(2026, 5, 20, 9, 30, tzinfo=LOCAL_TZ)
JUNE = datetime(2026, 6, 1, tzinfo=LOCAL_TZ)


async def test_price_change_applies_from_its_time_and_splits_a_spanning_period(db: None) -> None:
    account = await create_account()
    plan = await create_plan(
        account.site_id, "居民电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "price": "0.60"}, effective_from=JAN, actor="staff:1",
    )  # fmt: skip
    await schedule_change(
        plan.id, FlatPlan(Decimal("0.70")), effective_from=JUNE, now=NOW, actor="staff:1"
    )
    tariff = await load_tariff(plan.id)
    assert [v.effective_from for v in tariff.versions] == [JAN, JUNE]
    # 31 May 00:00 → 2 June 00:00, 48 kWh: 24 kWh at 0.60 + 24 kWh at 0.70 = 31.20 yuan.
    spanning = UsageSlice(
        datetime(2026, 5, 31, tzinfo=LOCAL_TZ), datetime(2026, 6, 2, tzinfo=LOCAL_TZ), Decimal(48)
    )
    assert price_usage(tariff, spanning).total == Decimal("31.20")
    stored = await TariffVersion.filter(plan_id=plan.id).order_by("effective_from").first()
    assert stored is not None and stored.spec == {"kind": "flat", "unit": "kWh", "price": "0.60"}


async def test_price_changes_cannot_be_backdated_or_mis_united(db: None) -> None:
    account = await create_account()
    plan = await create_plan(
        account.site_id, "商业水价", TariffKind.WATER,
        {"kind": "flat", "unit": "m³", "price": "4.10"}, effective_from=JAN, actor="staff:1",
    )  # fmt: skip
    with pytest.raises(InvalidTariff):
        await schedule_change(
            plan.id, {"kind": "flat", "unit": "m³", "price": "4.5"},
            effective_from=datetime(2026, 5, 1, tzinfo=LOCAL_TZ), now=NOW, actor="staff:1",
        )  # fmt: skip
    with pytest.raises(InvalidTariff):  # water priced per kWh
        await schedule_change(
            plan.id, FlatPlan(Decimal("4.5"), Unit.KWH), effective_from=JUNE, now=NOW,
            actor="staff:1",
        )  # fmt: skip
    with pytest.raises(InvalidTariff):
        await create_plan(
            account.site_id, "坏方案", TariffKind.ELECTRICITY, {"kind": "flat", "price": "-1"},
            effective_from=JAN, actor="staff:1",
        )  # fmt: skip
    assert await TariffVersion.filter(plan_id=plan.id).count() == 1


async def test_assignment_is_per_utility_and_replaced_not_duplicated(db: None) -> None:
    account = await create_account()
    power = await create_plan(
        account.site_id, "电A", TariffKind.ELECTRICITY, {"kind": "flat", "price": "0.6"},
        effective_from=JAN, actor="staff:1",
    )  # fmt: skip
    power_b = await create_plan(
        account.site_id, "电B", TariffKind.ELECTRICITY, {"kind": "flat", "price": "0.8"},
        effective_from=JAN, actor="staff:1",
    )  # fmt: skip
    with pytest.raises(TariffNotAssigned):
        await tariff_for(account.id, TariffKind.ELECTRICITY)
    await assign(account.id, power.id)
    await assign(account.id, power_b.id)
    assert await TariffAssignment.filter(account_id=account.id).count() == 1
    tariff = await tariff_for(account.id, TariffKind.ELECTRICITY)
    assert tariff.versions[0].plan == FlatPlan(Decimal("0.8"))
    with pytest.raises(TariffNotAssigned):
        await tariff_for(account.id, TariffKind.WATER)
    with pytest.raises(NotFound):
        await assign(account.id, 999_999)
