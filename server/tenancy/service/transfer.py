"""过户: hand a room's account to a new tenant — the old tenant settled as in 销户 (final
reading, last usage billed, arrears refused), the old tenant's remaining balance refunded
or, when staff tick it (both tenants agreed), moved to the new tenant's wallet through the
ledger (`server.ledger.service.transfer`); then a new account for the new tenant on the same
meters, a fresh binding code (QR ticket) for the new tenant, and the old tenant's WeChat
bindings ended.

The old account closes when its refunds are paid (at once when the balance was carried over
or nothing was left), exactly as a 销户 (`closing.complete_if_settled`); meanwhile the meters
already bill the new account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountBinding, AccountStatus, BindingRole, TenantType
from server.accounts.service.tickets import IssuedTicket, issue_ticket
from server.audit.service import record
from server.core.errors import Conflict, ValidationFailed
from server.ledger import service as ledger
from server.metering.models import Meter, MeterStatus
from server.payments.service import Payments
from server.tariffs.models import TariffAssignment
from server.tariffs.service import assign
from server.tenancy.models import AccountClosing, ClosingKind
from server.tenancy.service.closing import (
    CloseRequest,
    check_no_arrears_nor_meter_money,
    complete_if_settled,
    continue_closing,
    open_account_in_scope,
    settle_usage,
    start_closing,
)

TICKET_HOURS = 72


@dataclass(frozen=True, slots=True)
class NewTenant:
    name: str
    phone: str
    number: str  # the new account's number (户号), unique in the site
    tenant_type: TenantType | str = TenantType.COMPANY

    def checked(self) -> NewTenant:
        name, phone, number = self.name.strip(), self.phone.strip(), self.number.strip()
        if not name or len(name) > 100:
            raise ValidationFailed("请填写新租户名称（不超过100字）", field="tenant_name")
        if len(phone) > 20 or (phone and not phone.replace("-", "").isdigit()):
            raise ValidationFailed("电话号码格式不正确", field="phone")
        if not number or len(number) > 32:
            raise ValidationFailed("请填写新户号（不超过32字符）", field="number")
        if self.tenant_type not in TenantType._value2member_map_:
            raise ValidationFailed("租户类型无效", field="tenant_type")
        return NewTenant(name, phone, number, TenantType(self.tenant_type))


@dataclass(frozen=True, slots=True)
class Transferred:
    closing: AccountClosing
    new_account: Account
    ticket: IssuedTicket | None  # the new tenant's binding code (None on a re-submit)


async def transfer_account(
    payments: Payments,
    secret: bytes,
    site_ids: Sequence[int],
    account_id: int,
    tenant: NewTenant,
    request: CloseRequest,
    *,
    carry_over: bool,
    actor: str,
    now: datetime | None = None,
) -> Transferred:
    """过户 (see the module docstring). A re-submit continues the started transfer."""
    now = now or datetime.now(UTC)
    tenant, request = tenant.checked(), request.checked()
    old = await open_account_in_scope(site_ids, account_id)
    existing = await AccountClosing.get_or_none(account_id=old.id)
    if existing is not None:
        if existing.kind is not ClosingKind.TRANSFER:
            raise Conflict("该账户正在销户，不能再过户")
        closing = await continue_closing(payments, site_ids, old.id, actor=actor, now=now)
        new = await Account.get(id=existing.new_account_id)  # type: ignore[attr-defined]
        return Transferred(closing, new, None)
    if old.status is not AccountStatus.OPEN:
        raise Conflict("该账户已销户")
    readings = await settle_usage(old, request.readings, actor=actor, now=now)
    balance = await check_no_arrears_nor_meter_money(old.id)
    async with in_transaction():
        new = await _open_new_account(old, tenant, actor=actor, now=now)
        closing = await start_closing(
            old, ClosingKind.TRANSFER, readings, request, actor=actor, new_account_id=new.id
        )
        if closing.new_account_id != new.id:  # type: ignore[attr-defined]
            raise Conflict("该账户的过户已由他人发起，请刷新")  # rolls the new account back
        if carry_over and balance > 0:
            await ledger.transfer(
                old.id, new.id, balance, key=f"transfer:{closing.id}", actor=actor,
                memo=f"过户：{old.number} → {new.number}",
            )  # fmt: skip
            closing.carried_fen = balance
            await closing.save(update_fields=["carried_fen"])
        moved = await Meter.filter(account_id=old.id, status=MeterStatus.ACTIVE).update(
            account_id=new.id
        )
        ended = await AccountBinding.filter(account_id=old.id).delete()
        await record(
            actor, "account.transfer", target_type="account", target_id=old.id,
            site_id=old.site_id,  # type: ignore[attr-defined]
            detail={"new_account_id": new.id, "carried_fen": closing.carried_fen,
                    "meters_moved": moved, "bindings_ended": ended},
        )  # fmt: skip
    ticket = await issue_ticket(
        secret, old.site_id, new.number, role=BindingRole.OWNER, hours=TICKET_HOURS,  # type: ignore[attr-defined]
        actor=actor, now=now,
    )  # fmt: skip
    if closing.carried_fen:
        closing = await complete_if_settled(closing, actor=actor, now=now)
    else:
        closing = await continue_closing(payments, site_ids, old.id, actor=actor, now=now)
    return Transferred(closing, new, ticket)


async def _open_new_account(
    old: Account, tenant: NewTenant, *, actor: str, now: datetime
) -> Account:
    """The new tenant's account in the old one's room and site, with an empty wallet and the
    old account's tariff plans.

    Once the opening service is merged this is `server.tenancy.service.opening.open_account`
    (without meters: `transfer_account` moves the old account's meters over itself)."""
    if await Account.filter(site_id=old.site_id, number=tenant.number).exists():  # type: ignore[attr-defined]
        raise Conflict(f"户号“{tenant.number}”已存在，请换一个", field="number")
    try:
        new = await Account.create(
            site_id=old.site_id, room_id=old.room_id, number=tenant.number,  # type: ignore[attr-defined]
            tenant_name=tenant.name, phone=tenant.phone, tenant_type=tenant.tenant_type,
            billing_mode=old.billing_mode, opened_at=now,
        )  # fmt: skip
    except IntegrityError:
        raise Conflict(f"户号“{tenant.number}”已存在，请换一个", field="number") from None
    plans = await TariffAssignment.filter(account_id=old.id).values_list("plan_id", flat=True)
    for plan_id in plans:  # the same prices on the same meters
        await assign(new.id, int(plan_id))  # type: ignore[arg-type]
    await record(
        actor, "account.open", target_type="account", target_id=new.id,
        site_id=old.site_id,  # type: ignore[attr-defined]
        detail={"number": new.number, "from_account_id": old.id, "via": "transfer"},
    )  # fmt: skip
    return new
