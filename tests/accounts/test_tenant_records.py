"""A tenant's records over the real app: wallet entries one by one, usage charges one
record per day, newest first, paged by cursor without repeating or losing a record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.ledger.service import Channel, adjust, recharge
from server.metering.service.daily_usage import zone
from tests.accounts.tenant_fixtures import Tenant, tenant_of
from tests.factories import create_account
from tests.ledger.backdated import backdated_charges
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401


async def _pages(tenant: Tenant, path: str, **params: object) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = await tenant.get(path, params=query)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json()["items"])
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return pages


async def test_records_group_usage_per_day_and_page_by_cursor(pay_app: PayApp) -> None:
    account = await create_account()
    noon = datetime.now(zone()).replace(hour=12, minute=0, second=0, microsecond=0)
    start = noon.astimezone(UTC) - timedelta(days=6)
    # four 15-minute charges a day for five days, posted at those times
    charges = [(start + timedelta(days=d, minutes=15 * i), 10 + d) for d in range(5)
               for i in range(4)]  # fmt: skip
    await backdated_charges(account.id, charges)  # (ids grow with time, as posted for real)
    await recharge(account.id, Channel.WECHAT, 50_000, key="r1", actor="tenant:o")
    await adjust(account.id, 200, key="r2", actor="staff:1", reason="补偿")
    tenant = await tenant_of(pay_app, account)
    path = f"/api/v1/accounts/{account.id}/records"

    [everything] = await _pages(tenant, path, limit=50)
    kinds = [r["type"] for r in everything]
    assert kinds[:2] == ["adjustment", "recharge"]  # posted now, after the backdated days
    days = [r for r in everything if r["type"] == "deduction"]
    assert [r["amount_fen"] for r in days] == [-56, -52, -48, -44, -40]  # newest day first
    assert all(r["id"].startswith("d") and r["detail"] == "当日 4 笔计费合计" for r in days)
    assert everything[0] == {
        "id": everything[0]["id"], "type": "adjustment", "title": "调账", "amount_fen": 200,
        "at": everything[0]["at"], "day": everything[0]["day"], "detail": "补偿",
    }  # fmt: skip
    assert everything[1]["title"] == "微信充值" and everything[1]["amount_fen"] == 50_000

    paged = await _pages(tenant, path, limit=2)
    assert [len(p) for p in paged] == [2, 2, 2, 1]
    assert [r for p in paged for r in p] == everything  # nothing repeated, nothing lost

    [deductions] = await _pages(tenant, path, type="deduction")
    assert deductions == days
    [recharges] = await _pages(tenant, path, type="recharge")
    assert [r["amount_fen"] for r in recharges] == [50_000]
    [fees] = await _pages(tenant, path, type="fee")
    assert fees == []


async def test_records_refuse_a_bad_cursor_or_limit(pay_app: PayApp) -> None:
    account = await create_account()
    tenant = await tenant_of(pay_app, account)
    path = f"/api/v1/accounts/{account.id}/records"
    for params, field in [({"cursor": "not-a-cursor"}, "cursor"), ({"limit": 0}, "limit"),
                          ({"limit": 51}, "limit"), ({"type": "gift"}, "type")]:  # fmt: skip
        answer = await tenant.get(path, params=params)
        assert answer.status_code == 422 and answer.json()["detail"]["field"] == field, params
    assert (await tenant.get(path)).json() == {"items": [], "next_cursor": None}
