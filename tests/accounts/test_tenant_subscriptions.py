"""Subscribe-message allowances over the real app, and the notifier's spend."""

from __future__ import annotations

import asyncio

from server.accounts.models import SubscribeGrant
from server.accounts.service.subscriptions import spend_allowance
from tests.accounts.tenant_fixtures import (  # noqa: F401  (fixtures)
    Tenant,
    login,
    tenant_app_fixture,
)
from tests.payments.service_fixtures import PayApp

LOW, OFF, DONE = "demo-low-balance", "demo-power-off", "demo-recharge-done"


def remaining(body: dict) -> dict[str, int]:
    return {t["template_id"]: t["remaining"] for t in body["templates"]}


async def grant(tenant: Tenant, results: dict[str, str]) -> dict:
    answer = await tenant.post("/api/v1/me/subscriptions", json={"results": results})
    return {"status": answer.status_code, **answer.json()}


async def test_templates_start_at_zero_with_purpose_and_title(tenant_app: PayApp) -> None:
    tenant = await login(tenant_app)
    body = (await tenant.get("/api/v1/me/subscriptions")).json()
    assert body["templates"][0] == {
        "template_id": LOW, "purpose": "low_balance", "title": "余额不足提醒", "remaining": 0,
    }  # fmt: skip
    assert [t["purpose"] for t in body["templates"]] == ["low_balance", "power_off",
                                                         "recharge_done"]  # fmt: skip


async def test_each_accept_adds_one_and_the_rest_add_nothing(tenant_app: PayApp) -> None:
    tenant = await login(tenant_app)
    results = {LOW: "accept", OFF: "reject", DONE: "ban", "errMsg": "requestSubscribeMessage:ok"}
    first = await grant(tenant, results)
    assert first["status"] == 200
    assert remaining(first) == {LOW: 1, OFF: 0, DONE: 0}
    await grant(tenant, {LOW: "accept", OFF: "accept", DONE: "filter"})
    body = (await tenant.get("/api/v1/me/subscriptions")).json()
    assert remaining(body) == {LOW: 2, OFF: 1, DONE: 0}
    other = await login(tenant_app)
    assert remaining((await other.get("/api/v1/me/subscriptions")).json())[LOW] == 0


async def test_parallel_accepts_all_count(tenant_app: PayApp) -> None:
    tenant = await login(tenant_app)
    await asyncio.gather(*(grant(tenant, {LOW: "accept"}) for _ in range(8)))
    assert (await SubscribeGrant.get(identity_id=tenant.identity.id)).remaining == 8


async def test_unknown_template_or_result_is_422_and_records_nothing(tenant_app: PayApp) -> None:
    tenant = await login(tenant_app)
    unknown = await grant(tenant, {LOW: "accept", "not-ours": "accept"})
    assert (unknown["status"], unknown["error"]) == (422, "validation_failed")
    assert unknown["detail"] == {"field": "results.not-ours"}
    odd = await grant(tenant, {LOW: "maybe"})
    assert odd["status"] == 422
    assert not await SubscribeGrant.exists()


async def test_spend_takes_one_until_none_is_left(tenant_app: PayApp) -> None:
    tenant = await login(tenant_app)
    await grant(tenant, {LOW: "accept"})
    await grant(tenant, {LOW: "accept"})
    identity = tenant.identity.id
    spent = await asyncio.gather(*(spend_allowance(identity, LOW) for _ in range(5)))
    assert sorted(spent) == [False, False, False, True, True]
    assert await spend_allowance(identity, OFF) is False
    assert remaining((await tenant.get("/api/v1/me/subscriptions")).json())[LOW] == 0
