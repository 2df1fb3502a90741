"""The tenant's accounts: the list and the detail, over the real app."""

from __future__ import annotations

import httpx

from server.ledger.service import Channel, recharge
from tests.accounts.tenant_fixtures import (  # noqa: F401  (fixtures)
    login,
    tenant_app_fixture,
    tenant_of,
)
from tests.factories import create_account, create_building, create_floor, create_room
from tests.payments.service_fixtures import PayApp


async def test_list_shows_the_bound_accounts_only(tenant_app: PayApp) -> None:
    room = await create_room(await create_floor(await create_building(name="1号楼"), name="1F"),
                             name="0101")  # fmt: skip
    mine = await create_account(room, number="A-0101", tenant_name="张记餐饮")
    await recharge(mine.id, Channel.CASH, 12_345, key="t1", actor="staff:1")
    other = await create_account()
    tenant = await tenant_of(tenant_app, mine)
    await tenant_of(tenant_app, other)
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


async def test_no_token_is_401_and_an_unbound_account_is_404(tenant_app: PayApp) -> None:
    other = await create_account()
    async with httpx.AsyncClient(base_url=tenant_app.url) as client:
        assert (await client.get("/api/v1/accounts")).status_code == 401
    tenant = await login(tenant_app)
    answer = await tenant.get(f"/api/v1/accounts/{other.id}")
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found" and answer.json()["message"] == "账户不存在"
    assert (await tenant.get("/api/v1/accounts")).json() == {"items": []}
