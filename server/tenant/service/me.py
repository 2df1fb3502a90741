"""The tenant's own page (/api/v1/me) and the answers of the binding window: who the caller
is and the accounts bound to them, as `AccountSummary` (server.tenant.service.views)."""

from __future__ import annotations

from typing import Any

from server.accounts.models import AccountBinding, TenantIdentity
from server.tenant.service import views


async def me(identity_id: int) -> dict[str, Any]:
    identity = await TenantIdentity.get(id=identity_id)
    return {
        "identity_id": identity.id,
        "nickname": identity.nickname,
        "accounts": await views.account_summaries(identity_id),
    }


async def bound(binding: AccountBinding) -> dict[str, Any]:
    """The answer to a successful binding: the account's summary as the tenant now sees it."""
    return {"account": await views.account_summary(binding.identity_id, binding.account_id)}
