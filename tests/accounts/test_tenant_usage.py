"""A meter's use by day and by month, from the daily-usage table, over the real app."""

from __future__ import annotations

from datetime import UTC, date, datetime

from server.metering.models import DailyUsage, Meter
from server.metering.vocabulary import MeterKind
from tests.accounts.tenant_fixtures import tenant_of
from tests.factories import create_account, create_meter
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401

NOW = datetime(2026, 12, 5, tzinfo=UTC)


async def _day(meter: Meter, day: date, e4: int, fen: int | None, **bands: int) -> None:
    await DailyUsage.create(meter=meter, account_id=meter.account_id, day=day, quantity_e4=e4,
                            amount_fen=fen, updated_at=NOW, **bands)  # fmt: skip


async def test_usage_by_day_lists_every_day_with_its_bands(pay_app: PayApp) -> None:
    account = await create_account()
    meter = await create_meter(account)
    await _day(meter, date(2026, 12, 1), 123_400, 1_234, band2_e4=23_400, band3_e4=100_000)
    await _day(meter, date(2026, 12, 3), 10_000, 100)
    tenant = await tenant_of(pay_app, account)
    answer = await tenant.get(
        f"/api/v1/accounts/{account.id}/meters/{meter.id}/usage",
        params={"by": "day", "start": "2026-12-01", "end": "2026-12-03"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "meter_id": meter.id, "kind": "electricity", "unit": "kWh", "by": "day",
        "items": [
            {"period": "2026-12-01", "quantity": "12.3400", "amount_fen": 1_234,
             "bands": {"sharp": "0.0000", "peak": "2.3400", "flat": "10.0000",
                       "valley": "0.0000"}},
            {"period": "2026-12-02", "quantity": "0.0000", "amount_fen": None, "bands": None},
            {"period": "2026-12-03", "quantity": "1.0000", "amount_fen": 100, "bands": None},
        ],
    }  # fmt: skip


async def test_usage_by_month_sums_the_days(pay_app: PayApp) -> None:
    account = await create_account()
    meter = await create_meter(account, kind=MeterKind.WATER)
    await _day(meter, date(2026, 10, 31), 5_000, None)
    await _day(meter, date(2026, 12, 1), 10_000, None)
    await _day(meter, date(2026, 12, 2), 2_500, None)
    tenant = await tenant_of(pay_app, account)
    answer = await tenant.get(
        f"/api/v1/accounts/{account.id}/meters/{meter.id}/usage",
        params={"by": "month", "start": "2026-10-15", "end": "2026-12-31"},
    )
    body = answer.json()
    assert body["unit"] == "m³" and body["by"] == "month"
    assert [(i["period"], i["quantity"], i["amount_fen"]) for i in body["items"]] == [
        ("2026-10", "0.5000", None), ("2026-11", "0.0000", None), ("2026-12", "1.2500", None),
    ]  # fmt: skip


async def test_usage_ranges_are_bounded_and_named(pay_app: PayApp) -> None:
    account = await create_account()
    meter = await create_meter(account)
    tenant = await tenant_of(pay_app, account)
    path = f"/api/v1/accounts/{account.id}/meters/{meter.id}/usage"
    default = await tenant.get(path)
    assert default.status_code == 200 and len(default.json()["items"]) == 30
    months = await tenant.get(path, params={"by": "month"})
    assert len(months.json()["items"]) == 12
    for params, field in [
        ({"start": "2026-01-01", "end": "2026-04-03"}, "start"),  # 93 days
        ({"by": "month", "start": "2024-01-01", "end": "2026-01-01"}, "start"),  # 25 months
        ({"start": "2026-12-02", "end": "2026-12-01"}, "start"),
        ({"by": "week"}, "by"),
        ({"end": "2026-13-01"}, "end"),
    ]:
        answer = await tenant.get(path, params=params)
        assert answer.status_code == 422, params
        assert answer.json()["detail"]["field"] == field, params
    ok = await tenant.get(path, params={"start": "2026-01-01", "end": "2026-04-02"})
    assert ok.status_code == 200 and len(ok.json()["items"]) == 92


async def test_another_accounts_meter_is_404(pay_app: PayApp) -> None:
    account, other = await create_account(), await create_account()
    foreign = await create_meter(other)
    tenant = await tenant_of(pay_app, account)
    answer = await tenant.get(f"/api/v1/accounts/{account.id}/meters/{foreign.id}/usage")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
