"""开户: one account (one wallet) opened on the meters of a room — water and electricity
together — with an optional opening balance taken at the counter.

    opening_form(site_ids, room_id) -> OpeningForm     what the 开户 form is pre-filled with
    open_account(site_ids, room_id, tenant, meter_ids, actor=…, number=…, opening=…) -> Opened

All or nothing, in one transaction: the account row (its number given, or the site's next
free `H000001`-style number), the chosen meters attached to it (`meter.account`; each keeps
its room, installation date and readings: the next reading bills from the last one), the
operation-log entry, and the opening balance through the counter service
(`record_counter_payment`, cash or bank transfer with its receipt or reference) — this module
writes no money. The counter payment's follow-up (alarms, a meter-billed meter's top-up) runs
after the commit, as the counter service asks.

Refused in Chinese, nothing written: a room outside the staff member's sites (NotFound, as if
it did not exist), a retired room (or floor, building, site), a room that already has an
open account, a meter of another room or site, not in use, or of another open account; a
number the site already uses. Two clerks opening the same room at once queue on the room's
row (PostgreSQL `FOR UPDATE`; SQLite runs one writer at a time), so the second is refused.

A room's pre-registered tenant: nothing stores one for a vacant room (the Excel import's
租户 sheet opens the account at once), so the form is pre-filled from the room itself — its
in-use meters ticked, the next free number suggested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus, BillingMode, TenantType
from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Paging
from server.metering.models import Meter, MeterStatus
from server.metering.service.devices.meter_views import MeterFilter, MeterRow, list_meters
from server.metering.vocabulary import KIND_LABELS
from server.payments.models import CounterChannel
from server.payments.service.counter import counter_key, record_counter_payment
from server.payments.service.followups import run_followup
from server.places.models import Room
from server.places.service.rooms import AccountLine, RoomRow, room_detail

ACTION = "account.open"
NUMBER_PREFIX = "H"
NUMBER = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
PHONE = re.compile(r"^[0-9+\- ]{0,20}$")
TENANT_TYPE_LABELS = {TenantType.COMPANY: "企业", TenantType.PERSON: "个人"}
BILLING_MODE_LABELS = {BillingMode.PREPAID: "预付费", BillingMode.POSTPAID: "后付费"}
CHANNEL_LABELS = {CounterChannel.CASH: "现金", CounterChannel.BANK: "对公转账"}


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who the account is for, and how it is billed."""

    name: str
    phone: str = ""
    type: TenantType = TenantType.COMPANY
    billing_mode: BillingMode = BillingMode.PREPAID
    credit_limit_fen: int = 0


@dataclass(frozen=True, slots=True)
class OpeningBalance:
    """Money the tenant pays at the counter when the account opens."""

    amount_fen: int
    channel: CounterChannel
    reference: str  # receipt number (cash) or the bank transfer's reference


@dataclass(frozen=True, slots=True)
class Opened:
    account_id: int
    number: str
    meter_ids: tuple[int, ...]
    opening_fen: int  # 0: no opening balance


@dataclass(frozen=True, slots=True)
class MeterChoice:
    """A meter of the room as the form offers it: free to attach, or why not."""

    meter: MeterRow
    free: bool
    why_not: str = ""

    @property
    def label(self) -> str:
        return f"{KIND_LABELS[self.meter.kind]} {self.meter.address}"


@dataclass(frozen=True, slots=True)
class OpeningForm:
    room: RoomRow
    account: AccountLine | None  # the room's open account (then there is nothing to open)
    meters: list[MeterChoice]
    number: str  # the number suggested for the new account
    refusal: str = ""  # why the room cannot have an account opened now ('' : it can)
    ticked: list[int] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


async def opening_form(site_ids: Sequence[int], room_id: int) -> OpeningForm:
    """The room (NotFound outside the scope), its meters and a suggested number: 一键开户's
    pre-filled form, every free in-use meter of the room ticked."""
    detail = await room_detail(site_ids, room_id)
    room = detail.room
    rows = await list_meters(
        site_ids, Paging.everything(), MeterFilter(status=MeterStatus.ACTIVE.value, room_id=room.id)
    )
    taken = await _open_numbers([m.account_id for m in rows.items if m.account_id])
    choices = []
    for m in rows.items:
        why = ""
        if m.site_id != room.site_id:
            why = "属于其他站点"
        elif m.account_id in taken:
            why = f"已属于在用账户 {taken[m.account_id]}"
        choices.append(MeterChoice(m, not why, why))
    refusal = await _refusal(room_id, detail.account)
    return OpeningForm(
        room, detail.account, choices, await _next_number(room.site_id), refusal,
        [c.meter.id for c in choices if c.free],
    )  # fmt: skip


async def _refusal(room_id: int, account: AccountLine | None) -> str:
    if account is not None:
        return f"该房间已有在用账户 {account.number}（{account.tenant_name}），请先销户或过户"
    room = await Room.get(id=room_id).select_related("floor__building__site")
    return _retired(room)


def _retired(room: Room) -> str:
    floor = room.floor
    building = floor.building
    if room.retired_at or floor.retired_at or building.retired_at or building.site.retired_at:
        return f"房间 {room.name} 已停用，不能开户"
    return ""


async def _open_numbers(account_ids: Sequence[int]) -> dict[int, str]:
    if not account_ids:
        return {}
    rows = await Account.filter(id__in=list(account_ids), status=AccountStatus.OPEN).values_list(
        "id", "number"
    )
    return dict(rows)


async def _next_number(site_id: int) -> str:
    """The site's next free `H` + six digits, counting from the number of its accounts."""
    n = await Account.filter(site_id=site_id).count() + 1
    while True:
        candidate = f"{NUMBER_PREFIX}{n:06d}"
        if not await Account.filter(site_id=site_id, number=candidate).exists():
            return candidate
        n += 1


def _checked(tenant: Tenant, number: str, meter_ids: Sequence[int]) -> tuple[Tenant, str]:
    name = (tenant.name or "").strip()
    if not name:
        raise ValidationFailed("请填写租户名称")
    if len(name) > 100:
        raise ValidationFailed("租户名称最多 100 个字符")
    phone = (tenant.phone or "").strip()
    if not PHONE.match(phone):
        raise ValidationFailed("联系电话只能包含数字、+、- 和空格，最多 20 位")
    if type(tenant.credit_limit_fen) is not int or tenant.credit_limit_fen < 0:
        raise ValidationFailed("信用额度不能为负数")
    number = (number or "").strip()
    if number and not NUMBER.match(number):
        raise ValidationFailed("户号只能由字母、数字、- 和 _ 组成，最多 32 位")
    if not meter_ids:
        raise ValidationFailed("请至少选择一块表")
    checked = Tenant(name, phone, TenantType(tenant.type), BillingMode(tenant.billing_mode),
                     tenant.credit_limit_fen)  # fmt: skip
    return checked, number


def _checked_opening(opening: OpeningBalance | None) -> OpeningBalance | None:
    if opening is None:
        return None
    if type(opening.amount_fen) is not int or opening.amount_fen < 0:
        raise ValidationFailed("预存金额不能为负数")
    if opening.amount_fen == 0:
        return None
    reference = (opening.reference or "").strip()
    if not reference:
        raise ValidationFailed("预存款请填写收据号或银行流水号")
    if len(reference) > 64:
        raise ValidationFailed("收据号/流水号最多 64 个字符")
    return OpeningBalance(opening.amount_fen, CounterChannel(opening.channel), reference)


async def open_account(
    site_ids: Sequence[int],
    room_id: int,
    tenant: Tenant,
    meter_ids: Sequence[int],
    *,
    actor: str,
    number: str = "",
    opening: OpeningBalance | None = None,
) -> Opened:
    """Open one account on the room's `meter_ids` (see the module docstring)."""
    tenant, number = _checked(tenant, number, meter_ids)
    opening = _checked_opening(opening)
    wanted = sorted(set(meter_ids))
    try:
        async with in_transaction():
            room = await _locked_room(site_ids, room_id)
            site_id = room.floor.building.site_id  # type: ignore[attr-defined]
            if refusal := _retired(room):
                raise Conflict(refusal)
            current = await Account.filter(room_id=room.id, status=AccountStatus.OPEN).first()
            if current is not None:
                raise Conflict(await _refusal(room.id, _line(current)))
            meters = await _free_meters(site_ids, site_id, room, wanted)
            if number:
                if await Account.filter(site_id=site_id, number=number).exists():
                    raise Conflict(f"户号 {number} 在本站点已存在，请换一个")
            else:
                number = await _next_number(site_id)
            account = await Account.create(
                site_id=site_id, room_id=room.id, number=number, tenant_name=tenant.name,
                phone=tenant.phone, tenant_type=tenant.type, billing_mode=tenant.billing_mode,
                credit_limit_fen=tenant.credit_limit_fen, opened_at=_now(),
            )  # fmt: skip
            await Meter.filter(id__in=wanted).update(account_id=account.id)
            labels = "、".join(f"{KIND_LABELS[m.kind]} {m.address}" for m in meters)
            await record(
                actor, ACTION, target_type="account", target_id=account.id, site_id=site_id,
                reason=f"房间 {room.name} 开户 {number}（{tenant.name}），表计：{labels}",
                detail={
                    "room_id": room.id, "number": number, "tenant_name": tenant.name,
                    "meter_ids": wanted, "billing_mode": tenant.billing_mode.value,
                    "credit_limit_fen": tenant.credit_limit_fen,
                    "opening_fen": opening.amount_fen if opening else 0,
                },
            )  # fmt: skip
            if opening is not None:
                await record_counter_payment(
                    account.id, opening.channel, opening.amount_fen, opening.reference,
                    actor=actor, payer_name=tenant.name, memo=f"开户预存 {number}",
                )  # fmt: skip
    except IntegrityError as exc:  # a number or meter taken by another page at the same moment
        raise Conflict("户号或表计刚被其他操作占用，请刷新后重试") from exc
    if opening is not None:  # after the commit, as the counter service asks
        await run_followup(counter_key(opening.channel, opening.reference))
    return Opened(account.id, number, tuple(wanted), opening.amount_fen if opening else 0)


def _line(a: Account) -> AccountLine:
    return AccountLine(a.id, a.number, a.tenant_name, a.phone, a.balance_fen, a.opened_at)


async def _locked_room(site_ids: Sequence[int], room_id: int) -> Room:
    """The room, locked: a second opening of it waits here, then sees the first's account
    (SQLite ignores FOR UPDATE: it has one writer at a time anyway)."""
    query = Room.filter(id=room_id, floor__building__site_id__in=list(site_ids))
    room = await query.select_for_update().first()
    if room is None:
        raise NotFound("房间不存在")
    await room.fetch_related("floor__building__site")
    return room


async def _free_meters(
    site_ids: Sequence[int], site_id: int, room: Room, wanted: list[int]
) -> list[Meter]:
    """The chosen meters, locked, each checked; a meter outside the scope is NotFound."""
    meters = (
        await Meter.filter(id__in=wanted, site_id__in=list(site_ids))
        .select_for_update()
        .order_by("kind", "address")
    )
    if len(meters) != len(wanted):
        raise NotFound("表计不存在")
    owners = await _open_numbers([m.account_id for m in meters if m.account_id])  # type: ignore[attr-defined]
    for m in meters:
        name = f"{KIND_LABELS[m.kind]} {m.address}"
        if m.site_id != site_id:  # type: ignore[attr-defined]
            raise Conflict(f"{name} 属于其他站点，不能开在本房间的账户上")
        if m.status != MeterStatus.ACTIVE:
            raise Conflict(f"{name} 不在使用中（已拆除或备用），不能开户")
        if m.room_id != room.id:  # type: ignore[attr-defined]
            raise Conflict(f"{name} 不在房间 {room.name}，请先在仪表页改到本房间")
        if m.account_id in owners:  # type: ignore[attr-defined]
            raise Conflict(f"{name} 已属于在用账户 {owners[m.account_id]}，请先销户")  # type: ignore[attr-defined]
    return list(meters)


__all__ = [
    "ACTION", "BillingMode", "CounterChannel", "MeterChoice", "Opened", "OpeningBalance",
    "OpeningForm", "Tenant", "TenantType", "open_account", "opening_form",
]  # fmt: skip
