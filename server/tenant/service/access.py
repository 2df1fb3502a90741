"""Isolation: which accounts a tenant identity may see. Every tenant query about an account
goes through `bound_account` (or joins `account_binding` on the identity itself): an account
not bound to the caller is `NotFound`, exactly like one that does not exist (never 403)."""

from __future__ import annotations

from server.accounts.models import Account, AccountBinding, BindingRole
from server.core.errors import NotFound

NOT_FOUND = "账户不存在"


async def bound_account(identity_id: int, account_id: int) -> tuple[Account, BindingRole]:
    """The account and the caller's role on it; `NotFound` unless it is bound to them."""
    binding = (
        await AccountBinding.filter(identity_id=identity_id, account_id=account_id)
        .select_related("account")
        .first()
    )
    if binding is None:
        raise NotFound(NOT_FOUND, account_id=account_id)
    return binding.account, BindingRole(binding.role)
