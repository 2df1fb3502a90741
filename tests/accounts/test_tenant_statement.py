"""The tenant's monthly statement on the seeded November: the same numbers as the monthly
comprehensive report's row for his account, as JSON and as the Excel he downloads; another
tenant's account is a 404 (the isolation sweep calls both routes as tenant B as well)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from server.accounts.models import Account
from server.reports.periods import Month
from server.reports.service.monthly import monthly_report
from server.tariffs import LOCAL_TZ
from tests.accounts.tenant_fixtures import tenant_of
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401
from tests.reports.seeded import seed_november


async def test_statement_equals_the_monthly_report(
    pay_app: PayApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    park = await seed_november(monkeypatch)
    tenant = await tenant_of(pay_app, await Account.get(id=park.a101))
    path = f"/api/v1/accounts/{park.a101}/monthly-statement"
    answer = await tenant.get(path, params={"month": "2026-11"})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    [row] = (await monthly_report([park.site_id], Month(2026, 11), LOCAL_TZ,
                                  account_id=park.a101)).rows  # fmt: skip
    assert (got["opening_fen"], got["closing_fen"]) == (row.opening_fen, row.closing_fen)
    assert (got["opening_fen"], got["closing_fen"], got["refunds_fen"]) == (50_000, 23_100, 10_000)
    assert got["posted"]["electricity_fen"] == row.electricity_fen == 16_900
    assert got["electricity"]["quantity"] == "190.0000" and got["late_usage_fen"] == 1_200
    assert [(b["label"], b["amount_fen"]) for b in got["electricity"]["bands"]] == [
        ("峰", 16_000), ("谷", 2_100)]  # fmt: skip

    sheet = await tenant.get(f"{path}/xlsx", params={"month": "2026-11"})
    assert sheet.status_code == 200 and "attachment" in sheet.headers["content-disposition"]
    rows = {r[0]: r for r in load_workbook(io.BytesIO(sheet.content)).active.iter_rows(
        values_only=True)}  # fmt: skip
    assert rows["期初余额"][2] == 500 and rows["期末余额"][2] == 231 and rows["退费"][2] == 100
    assert rows["  其中峰时段"][1:] == (150, 160)

    other = await tenant_of(pay_app, await Account.get(id=park.a102))
    assert (await other.get(path)).status_code == 404
    bad = await tenant.get(path, params={"month": "2026-13"})
    assert bad.status_code == 422
