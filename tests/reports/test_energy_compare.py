"""Energy by period and dimension, and the year-on-year / period-on-period comparison, on
the seeded November (tests/reports/seeded.py) and on a shop read a year apart."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from server.billing.pipeline import process_readings
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.reports.periods import Grain, Month
from server.reports.service.compare import compare_report
from server.reports.service.energy import By, energy_report
from server.tariffs import LOCAL_TZ
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter, create_site
from tests.reports.seeded import seed_november

KWH = 10_000  # daily_usage units per kWh


async def test_energy_by_account_building_and_period(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    park = await seed_november(monkeypatch)
    nov = await energy_report(
        [park.site_id],
        kind="electricity",
        grain=Grain.DAY,
        by=By.ACCOUNT,
        since=date(2026, 11, 1),
        until=date(2026, 11, 30),
    )
    assert len(nov.periods) == 30
    rows = {r.label: r for r in nov.rows}
    assert (
        rows["A101 一号便利店"].total.quantity_e4,
        rows["A101 一号便利店"].total.amount_fen,
    ) == (190 * KWH, 18_100)
    assert rows["A102 二号茶饮"].total.quantity_e4 == 10 * KWH
    assert nov.total.quantity_e4 == sum(c.quantity_e4 for c in nov.totals.values()) == 200 * KWH
    a101_days = rows["A101 一号便利店"].cells
    assert sum(c.amount_fen for c in a101_days.values()) == 18_100  # spread over the days
    assert len(a101_days) == 30 and a101_days["2026-11-01"].amount_fen == 1_000  # 90 ¥ / 9 days
    by_month = await energy_report(
        [park.site_id],
        kind="electricity",
        grain=Grain.MONTH,
        by=By.BUILDING,
        since=date(2026, 10, 1),
        until=date(2026, 11, 30),
    )
    (building,) = by_month.rows
    assert building.label == "A栋" and by_month.periods == ["2026-10", "2026-11"]
    assert (building.cells["2026-10"].quantity_e4, building.cells["2026-11"].quantity_e4) == (
        10 * KWH,
        200 * KWH,
    )
    water = await energy_report(
        [park.site_id],
        kind="water",
        grain=Grain.YEAR,
        by=By.SITE,
        since=date(2026, 1, 1),
        until=date(2026, 12, 31),
    )
    assert water.rows == [] and water.total.quantity_e4 == 0
    with pytest.raises(ValueError, match="92"):
        await energy_report(
            [park.site_id],
            kind="electricity",
            grain=Grain.DAY,
            by=By.SITE,
            since=date(2026, 1, 1),
            until=date(2026, 12, 31),
        )


async def test_year_on_year_with_and_without_a_previous_year(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    park = await seed_november(monkeypatch)  # on the platform since October 2026 only
    report = await compare_report(
        [park.site_id], kind="electricity", by=By.ACCOUNT, month=Month(2026, 11)
    )
    rows = {r.label: r for r in report.rows}
    a101, a102 = rows["A101 一号便利店"], rows["A102 二号茶饮"]
    assert a101.current.quantity_e4 == 190 * KWH and a101.previous is None
    assert a101.year_before is None and a101.yoy_pct is None and a101.mom_pct is None
    assert (a102.previous.quantity_e4, a102.mom_pct) == (10 * KWH, Decimal("0.0"))
    assert report.total.year_before is None and report.total.yoy_pct is None
    assert report.total.mom_pct == Decimal("1900.0")  # 200 kWh against October's 10
    assert report.this_year[10] == 200 * KWH and report.this_year[9] == 10 * KWH
    assert report.last_year == [None] * 12

    # A shop read a year apart: November 2025 100 kWh, November 2026 150 kWh → 同比 +50 %.
    site = await create_site(name="老园区")
    account = await create_account(site=site, number="B1", tenant_name="老商户")
    plan = await create_plan(
        site.id,
        "平价",
        TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "1.00"},
        effective_from=datetime(2025, 1, 1, tzinfo=LOCAL_TZ),
        actor="staff:0",
    )
    await assign(account.id, plan.id)
    meter = await create_meter(account)
    for y, m, total in (
        (2025, 11, "1000"),
        (2025, 12, "1100"),
        (2026, 11, "1100"),
        (2026, 12, "1250"),
    ):
        at = datetime(y, m, 1, tzinfo=LOCAL_TZ)
        await process_readings([IncomingReading(meter.id, Reading(at, Decimal(total)))], now=at)
    old = await compare_report([site.id], kind="electricity", by=By.SITE, month=Month(2026, 11))
    (row,) = old.rows
    assert (row.current.quantity_e4, row.year_before.quantity_e4) == (150 * KWH, 100 * KWH)
    assert row.yoy_pct == Decimal("50.0") and row.current.amount_fen == 15_000
    assert old.last_year[10] == 100 * KWH and old.this_year[10] == 150 * KWH
