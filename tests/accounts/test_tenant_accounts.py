"""The tenant's accounts: the list and the detail, over the real app."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from server.ledger.service import Channel, recharge
from server.metering.models import AccountAlarmState, DailyUsage, LiveValues, MeterBilling
from server.metering.service.daily_usage import zone
from server.metering.vocabulary import MeterKind, RelayState
from server.tenant.service import detail, views
from tests.accounts.tenant_fixtures import (
    login,
    tenant_of,
)
from tests.factories import (
    bind,
    create_account,
    create_building,
    create_floor,
    create_identity,
    create_meter,
    create_room,
)
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401


async def test_list_shows_the_bound_accounts_only(pay_app: PayApp) -> None:
    room = await create_room(await create_floor(await create_building(name="1号楼"), name="1F"),
                             name="0101")  # fmt: skip
    mine = await create_account(room, number="A-0101", tenant_name="张记餐饮")
    await recharge(mine.id, Channel.CASH, 12_345, key="t1", actor="staff:1")
    other = await create_account()
    tenant = await tenant_of(pay_app, mine)
    await tenant_of(pay_app, other)
    answer = await tenant.get("/api/v1/accounts")
    assert answer.status_code == 200
    [item] = answer.json()["items"]
    site = await mine.site
    assert item == {
        "id": mine.id, "site": {"id": site.id, "name": site.name}, "number": "A-0101",
        "tenant_name": "张记餐饮", "room": "1号楼 1F 0101", "status": "open",
        "billing_mode": "prepaid", "role": "owner", "balance_fen": 12_345,
        "available_fen": 12_345,
    }  # fmt: skip


async def test_no_token_is_401_and_an_unbound_account_is_404(pay_app: PayApp) -> None:
    other = await create_account()
    async with httpx.AsyncClient(base_url=pay_app.url) as client:
        assert (await client.get("/api/v1/accounts")).status_code == 401
    tenant = await login(pay_app)
    answer = await tenant.get(f"/api/v1/accounts/{other.id}")
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found" and answer.json()["message"] == "账户不存在"
    assert (await tenant.get("/api/v1/accounts")).json() == {"items": []}


async def test_detail_of_a_prepaid_account(pay_app: PayApp) -> None:
    account = await create_account()
    await recharge(account.id, Channel.CASH, 10_000, key="t2", actor="staff:1")
    now = datetime.now(UTC).replace(microsecond=0)
    meter = await create_meter(account, relay_state=RelayState.CLOSED, online=True,
                               last_reading_at=now)  # fmt: skip
    await LiveValues.create(
        meter=meter, read_at=now, total=Decimal("100"), relay_state=RelayState.CLOSED,
        instant_at=now, voltage=Decimal("220.1234"), current=Decimal("3.2"),
        power=Decimal("0.7041"), updated_at=now,
    )  # fmt: skip
    today = datetime.now(zone()).date()
    await DailyUsage.create(meter=meter, account=account, day=today, quantity_e4=32_100,
                            band2_e4=32_100, amount_fen=321, updated_at=now)  # fmt: skip
    await DailyUsage.create(meter=meter, account=account, day=today - timedelta(days=1),
                            quantity_e4=99_000, amount_fen=990, updated_at=now)  # fmt: skip
    await AccountAlarmState.create(account=account, daily_use_fen="800")
    water = await create_meter(account, kind=MeterKind.WATER)
    tenant = await tenant_of(pay_app, account)

    answer = await tenant.get(f"/api/v1/accounts/{account.id}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["available_fen"] == 10_000 and body["balance_fen"] == 10_000
    assert body["credit_limit_fen"] == 0
    assert body["days_left"] == 12.5  # ¥100 at ¥8 a day
    assert body["today"] == {"electricity_kwh": "3.2100", "water_m3": "0.0000", "amount_fen": 321}
    first, second = body["meters"]
    assert first == {
        "id": meter.id, "address": meter.address, "kind": "electricity", "label": "电表",
        "relay": "closed", "online": True, "last_read_at": now.isoformat(),
        "live": {"voltage_v": "220.1", "current_a": "3.20", "power_kw": "0.704",
                 "at": now.isoformat()},
        "today": {"quantity": "3.2100", "unit": "kWh", "amount_fen": 321},
        "balance_fen": None,
    }  # fmt: skip
    assert second["id"] == water.id and second["live"] is None and second["relay"] == "unknown"
    assert second["today"] == {"quantity": "0.0000", "unit": "m³", "amount_fen": None}


async def test_detail_of_a_meter_billed_account_shows_the_meter_money(pay_app: PayApp) -> None:
    account = await create_account()
    meter = await create_meter(account, billing=MeterBilling.METER, money_fen=3_456)
    tenant = await tenant_of(pay_app, account)
    body = (await tenant.get(f"/api/v1/accounts/{account.id}")).json()
    assert body["balance_fen"] == 0 and body["available_fen"] == 3_456
    assert body["days_left"] is None  # no usage history to forecast from
    [shown] = body["meters"]
    assert shown["id"] == meter.id and shown["balance_fen"] == 3_456
    listed = (await tenant.get("/api/v1/accounts")).json()["items"]
    assert [a["available_fen"] for a in listed] == [3_456]


async def _queries(caplog: pytest.LogCaptureFixture, work: Awaitable[object]) -> int:
    caplog.set_level(logging.DEBUG, logger="tortoise.db_client")
    caplog.clear()
    await work
    return len([r for r in caplog.records if r.name == "tortoise.db_client"])


async def test_a_detail_costs_the_same_few_queries_whatever_the_meters(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    small, large = await create_account(), await create_account()
    await create_meter(small, billing=MeterBilling.METER, money_fen=100)
    for i in range(6):
        billing = MeterBilling.METER if i % 2 else MeterBilling.PLATFORM
        await create_meter(large, billing=billing, money_fen=100)
    identity = await create_identity()
    for account in (small, large):
        await bind(identity, account)
    one = await _queries(caplog, detail.account_detail(identity.id, small.id))
    six = await _queries(caplog, detail.account_detail(identity.id, large.id))
    assert one == six == 4  # bound account, meters with live and today, open recharges, rate
    assert await _queries(caplog, views.account_summaries(identity.id)) == 3
