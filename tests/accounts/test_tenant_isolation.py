"""Isolation sweep, generated from the router: every /api/v1 route (but login and the
payment platforms' signed notifications) is called as tenant B with tenant A's ids in its
path (and body), A and B in two organisations. Each answers 404 exactly as for an id that
does not exist (401 without a token), and no answer carries A's data. A route added later
joins the sweep by itself; one with a path parameter the sweep does not know fails it,
naming the parameter to add to `PARAMS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from server.payments.providers.base import Channel
from server.payments.service import create_recharge_order
from server.property.service import items as fee_items
from server.property.service.bills import BillFilter, list_bills
from server.property.service.items import ItemForm
from server.property.service.run import run_month
from tests.accounts.tenant_fixtures import (
    Tenant,
    login,
    tenant_of,
)
from tests.factories import create_account, create_meter, create_organisation, create_site
from tests.payments.service_fixtures import PayApp, pay_app_fixture  # noqa: F401

EXCLUDED = {"/api/v1/auth/login"}  # the one way in
EXCLUDED_PREFIXES = ("/api/v1/pay/notify/",)  # the platforms', verified by signature
# Bodies for routes that read one (isolation must answer before the body could matter).
BODIES: dict[str, dict[str, Any]] = {
    "POST /api/v1/accounts/<account_id:int>/recharge": {"amount_fen": 5_000, "channel": "wechat"},
    "POST /api/v1/accounts/<account_id:int>/invoices": {
        "kind": "normal",
        "title_type": "personal",
        "buyer_name": "乙",
        "email": "b@example.com",
        "payments": ["R1"],
    },
}


class World:
    """Tenant A's account with a meter and an order; tenant B bound elsewhere."""

    a: Tenant
    b: Tenant
    ids: dict[str, Any]
    secrets: list[str]  # text of A's that must never reach B


# Path parameter -> A's value for it.
PARAMS: dict[str, Callable[[World], Any]] = {
    "account_id": lambda w: w.ids["account_id"],
    "meter_id": lambda w: w.ids["meter_id"],
    "order_no": lambda w: w.ids["order_no"],
    "bill_id": lambda w: w.ids["bill_id"],
}


async def _world(pay: PayApp) -> World:
    world = World()
    site_a = await create_site(await create_organisation(name="甲集团"))
    site_b = await create_site(await create_organisation(name="乙集团"))
    mine = await create_account(site=site_a, number="A-SECRET-7", tenant_name="甲方秘密餐饮",
                                phone="13800001111")  # fmt: skip
    meter = await create_meter(mine, address="998877665544")
    order, _ = await create_recharge_order(
        pay.payments, mine.id, Channel.WECHAT, 12_345, actor="tenant:a", payer_openid="o-a"
    )
    world.a = await tenant_of(pay, mine)
    world.b = await tenant_of(pay, await create_account(site=site_b))
    bill_id = await _a_bill(site_a.id)
    world.ids = {"account_id": mine.id, "meter_id": meter.id, "order_no": order.out_trade_no,
                 "bill_id": bill_id}  # fmt: skip
    # (not A's ids: B sent them, and a 404 may name what was asked for)
    world.secrets = [
        "A-SECRET-7",
        "甲方秘密餐饮",
        "998877665544",
        "13800001111",
        "12345",
        "甲方秘密卫生费",
    ]
    return world


async def _a_bill(site_id: int) -> int:
    """A fees bill (催缴账单) of A's account: a billed item through a posted monthly run."""
    form = ItemForm("甲方秘密卫生费", "custom", "fixed", "123.45", "monthly", collection="bill")
    await fee_items.create_item(site_id, form, actor="staff:0")
    run = await run_month(site_id, "2026-03", preview=False, actor="staff:0",
                          tz=ZoneInfo("Asia/Shanghai"))  # fmt: skip
    [bill] = await list_bills(BillFilter([site_id]), today=run.created_at.date())
    return bill.id


def _swept(pay: PayApp) -> list[tuple[str, str, Any]]:
    """(method, path template, route) of every tenant route the sweep calls."""
    out = []
    for route in pay.app.router.routes:
        path = "/" + route.path.strip("/")
        if not path.startswith("/api/v1/") or path in EXCLUDED:
            continue
        if path.startswith(EXCLUDED_PREFIXES):
            continue
        out.extend((m, path, route) for m in sorted(route.methods) if m not in ("HEAD", "OPTIONS"))
    return out


def _filled(path: str, route: Any, world: World) -> str:
    for param in route.params.values():
        name = param.name
        if name not in PARAMS:
            raise AssertionError(
                f"{path}: path parameter {name!r} is unknown to the isolation sweep;"
                " add a factory of tenant A's value for it to PARAMS"
            )
        value = str(PARAMS[name](world))
        path = path.replace(f"<{name}>", value).replace(f"<{name}:{param.label}>", value)
    return path


async def _call(who: Tenant | None, method: str, path: str, body: Any, url: str) -> httpx.Response:
    if who is not None:
        return await who.call(method, path, json=body)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.request(method, path, json=body)


async def test_no_route_shows_tenant_a_to_tenant_b(pay_app: PayApp) -> None:
    world = await _world(pay_app)
    await world.b.get("/api/v1/accounts")  # the router is finalised on the first request
    routes = _swept(pay_app)
    assert len(routes) >= 7, routes
    checked = []
    for method, template, route in routes:
        path = _filled(template, route, world)
        body = BODIES.get(f"{method} {template}")
        where = f"{method} {path}"
        anonymous = await _call(None, method, path, body, pay_app.url)
        assert anonymous.status_code == 401, f"{where}: {anonymous.status_code} without a token"
        b = await login(pay_app, world.b.identity)  # a fresh session: logout is swept too
        answer = await _call(b, method, path, body, pay_app.url)
        if route.params:
            assert answer.status_code == 404, f"{where}: {answer.status_code} {answer.text}"
            assert answer.json()["error"] == "not_found", where
        leaked = [s for s in world.secrets if s in answer.text]
        assert not leaked, f"{where} shows tenant A's {leaked} to tenant B: {answer.text}"
        checked.append(where)
    # A's own GETs answer: the ids are real, so B's 404s are isolation, not bad ids.
    for method, template, route in routes:
        if method == "GET":
            path = _filled(template, route, world)
            answer = await (await login(pay_app, world.a.identity)).get(path)
            assert answer.status_code == 200, f"A {method} {path}: {answer.status_code}"
    assert any("/orders/" in c for c in checked) and any("/usage" in c for c in checked)
    assert sum("/monthly-statement" in c for c in checked) == 2  # the statement and its Excel
