"""The tenant API over the real app: the payments tests' `pay_app` (create_app on an
ephemeral port, the payment sandbox behind it) serves it; `Tenant` is a logged-in WeChat
user whose session is issued directly (login itself is tested with the auth routes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from server.accounts.models import Account, TenantApp, TenantIdentity
from tests.factories import bind, create_identity
from tests.payments.service_fixtures import PayApp


@dataclass
class Tenant:
    identity: TenantIdentity
    token: str
    url: str

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.request(method, path, headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.call("POST", path, **kw)


async def login(pay: PayApp, identity: TenantIdentity | None = None) -> Tenant:
    """A session for `identity` (a new one by default), as login would issue it."""
    identity = identity or await create_identity()
    token, _ = await pay.app.ctx.tenant_sessions.issue(
        identity.id, TenantApp.MINIAPP, identity.openid
    )
    return Tenant(identity, token, pay.url)


async def tenant_of(pay: PayApp, *accounts: Account) -> Tenant:
    """A logged-in tenant bound (as owner) to `accounts`."""
    tenant = await login(pay)
    for account in accounts:
        await bind(tenant.identity, account)
    return tenant
