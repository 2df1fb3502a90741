"""Binding WeChat identities to accounts: several accounts per identity, several identities
per account, each with a role (owner / accountant). Binding twice is a no-op that keeps the
first binding; unbinding by the tenant answers 404 when there is nothing to unbind; staff
unbinding also ends the identity's sessions. Every change is in the operation log.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.errors import AccountNotFound
from server.accounts.models import (
    Account,
    AccountBinding,
    AccountStatus,
    BindingRole,
    BindingVia,
)
from server.accounts.service.sessions import SessionStore
from server.audit.service import record


async def open_account(site_id: int, number: str) -> Account:
    """The open account `number` of the site; 404 when there is none (or it is closed)."""
    account = await Account.get_or_none(site_id=site_id, number=number, status=AccountStatus.OPEN)
    if account is None:
        raise AccountNotFound("未找到该户号，请核对园区和户号", site_id=site_id, number=number)
    return account


async def bind(
    identity_id: int, account: Account, *, role: BindingRole, via: BindingVia, actor: str
) -> AccountBinding:
    """Bind the identity to the account (idempotent: an existing binding is kept as is)."""
    existing = await AccountBinding.get_or_none(identity_id=identity_id, account_id=account.id)
    if existing is not None:
        return existing
    try:
        async with in_transaction():
            binding = await AccountBinding.create(
                identity_id=identity_id, account_id=account.id, role=role, via=via
            )
            await record(
                actor, "tenant.bind", target_type="account", target_id=account.id,
                site_id=account.site_id,
                detail={"identity_id": identity_id, "role": role.value, "via": via.value},
            )  # fmt: skip
    except IntegrityError:  # the same binding made at the same moment by another request
        return await AccountBinding.get(identity_id=identity_id, account_id=account.id)
    return binding


async def unbind(identity_id: int, account_id: int, *, actor: str) -> None:
    """The tenant removes their own binding; 404 when they are not bound to the account."""
    async with in_transaction():
        binding = await AccountBinding.get_or_none(
            identity_id=identity_id, account_id=account_id
        ).prefetch_related("account")
        if binding is None:
            raise AccountNotFound("账户不存在", account_id=account_id)
        await AccountBinding.filter(id=binding.id).delete()
        await record(
            actor, "tenant.unbind", target_type="account", target_id=account_id,
            site_id=binding.account.site_id,
            detail={"identity_id": identity_id, "role": binding.role.value},
        )  # fmt: skip


async def staff_unbind(
    sessions: SessionStore, identity_id: int, account_id: int, *, actor: str
) -> int:
    """Staff remove a binding and end every session of that identity (it must log in again
    and sees only what is still bound); returns how many sessions were ended."""
    await unbind(identity_id, account_id, actor=actor)
    return await sessions.revoke_identity(identity_id)


async def count_bindings(identity_id: int) -> int:
    return await AccountBinding.filter(identity_id=identity_id).count()
