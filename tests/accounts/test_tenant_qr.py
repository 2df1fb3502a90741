"""QR binding and unbinding over the real app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from server.accounts.models import Account, AccountBinding, BindingRole, BindingTicket
from server.accounts.service.binding import staff_unbind
from server.accounts.service.sessions import RedisSessionStore
from server.accounts.service.tickets import issue_ticket, sign_ticket
from server.audit.models import OperationLog
from tests.accounts.tenant_fixtures import (  # noqa: F401  (fixtures)
    Tenant,
    login,
    tenant_app_fixture,
    tenant_of,
)
from tests.factories import create_account, create_organisation, create_site
from tests.payments.service_fixtures import PayApp


async def scan(tenant: Tenant, ticket: str) -> dict:
    answer = await tenant.post("/api/v1/bind/qr", json={"ticket": ticket})
    return {"status": answer.status_code, **answer.json()}


async def ticket_for(
    pay: PayApp, account: Account, *, role: BindingRole = BindingRole.OWNER, hours: int = 72,
    now: datetime | None = None,
) -> str:  # fmt: skip
    issued = await issue_ticket(
        pay.app.ctx.tenant_secret, account.site_id, account.number, role=role, hours=hours,
        actor="cli:test", now=now,
    )  # fmt: skip
    return issued.token


async def test_scan_binds_with_the_tickets_role_once(tenant_app: PayApp) -> None:
    account = await create_account()
    token = await ticket_for(tenant_app, account, role=BindingRole.ACCOUNTANT)
    assert token.startswith("SDB1.") and token.count(".") == 3
    tenant = await login(tenant_app)
    bound = await scan(tenant, token)
    assert bound["status"] == 200, bound
    assert bound["account"]["id"] == account.id
    assert bound["account"]["role"] == "accountant"
    ticket = await BindingTicket.get(account_id=account.id)
    assert ticket.used_at is not None and ticket.used_by_id == tenant.identity.id  # type: ignore[attr-defined]
    reused = await scan(await login(tenant_app), token)
    assert (reused["status"], reused["error"]) == (409, "ticket_used")
    actions = await OperationLog.filter(target_id=str(account.id)).values_list("action", flat=True)
    assert sorted(actions) == ["tenant.bind", "tenant.qr_ticket"]


async def test_two_scans_at_once_bind_once(tenant_app: PayApp) -> None:
    account = await create_account()
    token = await ticket_for(tenant_app, account)
    tenants = [await login(tenant_app) for _ in range(4)]
    answers = await asyncio.gather(*(scan(t, token) for t in tenants))
    assert sorted(a["status"] for a in answers) == [200, 409, 409, 409]
    assert await AccountBinding.filter(account_id=account.id).count() == 1


async def test_expired_ticket(tenant_app: PayApp) -> None:
    account = await create_account()
    token = await ticket_for(
        tenant_app, account, hours=1, now=datetime.now(UTC) - timedelta(hours=2)
    )
    answer = await scan(await login(tenant_app), token)
    assert (answer["status"], answer["error"]) == (400, "ticket_expired")


async def test_forged_and_damaged_tickets_are_invalid(tenant_app: PayApp) -> None:
    account = await create_account()
    token = await ticket_for(tenant_app, account)
    nonce = token.split(".")[1]
    later = datetime.now(UTC) + timedelta(days=30)
    forged = [
        sign_ticket(b"not-our-key" * 4, nonce, later),  # signed with another key
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature damaged
        token.replace(token.split(".")[2], str(int(later.timestamp()))),  # expiry moved
        "SDB1.x.y", "hello", sign_ticket(tenant_app.app.ctx.tenant_secret, "nonce-x", later),
    ]  # fmt: skip
    tenant = await login(tenant_app)
    for bad in forged:
        answer = await scan(tenant, bad)
        assert (answer["status"], answer["error"]) == (400, "ticket_invalid"), bad
    assert not await AccountBinding.exists(identity_id=tenant.identity.id)


async def test_binding_twice_is_idempotent_and_unbind_then_404(tenant_app: PayApp) -> None:
    account = await create_account()
    tenant = await login(tenant_app)
    assert (await scan(tenant, await ticket_for(tenant_app, account)))["status"] == 200
    again = await scan(tenant, await ticket_for(tenant_app, account, role=BindingRole.ACCOUNTANT))
    assert again["status"] == 200 and again["account"]["role"] == "owner"  # first one kept
    assert await AccountBinding.filter(account_id=account.id).count() == 1
    path = f"/api/v1/accounts/{account.id}/binding"
    assert (await tenant.call("DELETE", path)).status_code == 204
    assert (await tenant.get(f"/api/v1/accounts/{account.id}")).status_code == 404
    gone = await tenant.call("DELETE", path)
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert (await tenant.get("/api/v1/me")).json()["accounts"] == []


async def test_unbinding_someone_elses_account_is_404(tenant_app: PayApp) -> None:
    account = await create_account()
    await tenant_of(tenant_app, account)
    stranger = await login(tenant_app)
    answer = await stranger.call("DELETE", f"/api/v1/accounts/{account.id}/binding")
    assert answer.status_code == 404
    assert await AccountBinding.filter(account_id=account.id).count() == 1


async def test_several_accounts_per_identity_and_identities_per_account(
    tenant_app: PayApp,
) -> None:
    first, second = await create_account(), await create_account()
    owner = await tenant_of(tenant_app, first, second)
    accountant = await login(tenant_app)
    token = await ticket_for(tenant_app, first, role=BindingRole.ACCOUNTANT)
    assert (await scan(accountant, token))["status"] == 200
    mine = (await owner.get("/api/v1/me")).json()["accounts"]
    assert sorted(a["id"] for a in mine) == sorted([first.id, second.id])
    theirs = (await accountant.get("/api/v1/me")).json()["accounts"]
    assert [(a["id"], a["role"]) for a in theirs] == [(first.id, "accountant")]


async def test_staff_unbind_ends_the_sessions_memory(tenant_app: PayApp) -> None:
    account = await create_account()
    tenant = await tenant_of(tenant_app, account)
    sessions = tenant_app.app.ctx.tenant_sessions
    ended = await staff_unbind(sessions, tenant.identity.id, account.id, actor="staff:1")
    assert ended == 1
    assert (await tenant.get("/api/v1/me")).status_code == 401


async def test_staff_unbind_ends_the_sessions_redis(tenant_app: PayApp, redis: object) -> None:
    store = RedisSessionStore(redis, 3600)
    tenant_app.app.ctx.tenant_sessions = store
    account = await create_account()
    tenant = await tenant_of(tenant_app, account)  # issued in Redis
    second = await login(tenant_app, tenant.identity)
    assert (await tenant.get("/api/v1/me")).status_code == 200
    ended = await staff_unbind(store, tenant.identity.id, account.id, actor="staff:1")
    assert ended == 2
    assert (await tenant.get("/api/v1/me")).status_code == 401
    assert (await second.get("/api/v1/me")).status_code == 401
    assert not await AccountBinding.exists(account_id=account.id)


async def test_sites_for_the_binding_page(tenant_app: PayApp) -> None:
    site = await create_site(await create_organisation(name="示范集团"), name="星河产业园")
    answer = await (await login(tenant_app)).get("/api/v1/sites")
    assert answer.status_code == 200
    assert answer.json() == {"items": [{"id": site.id, "name": "星河产业园",
                                        "organisation": "示范集团"}]}  # fmt: skip
