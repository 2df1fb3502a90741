"""What the admin's account pages read (reads only): the clerk's list of accounts and one
account with its room, meters, WeChat bindings, available balance and recent records; and
the binding QR card staff hand a tenant after 开户.

    list_accounts(AccountFilter, paging) -> Page[AccountRow]     one count, one page, then
                                                                 one query per table for the page
    account_detail(site_ids, account_id) -> AccountDetail
    account_of_room(site_ids, room_id) -> AccountLine | None     the room panel's summary
    binding_card_for(site_ids, account_id, secret=…, hours=…, actor=…) -> BindingCard

Every read is scoped by the staff member's site ids: another organisation's account is
NotFound. Money shown is the available balance (`server.metering.service.balance`), never
the raw wallet column.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from server.accounts.balance import Available
from server.accounts.models import (
    Account,
    AccountBinding,
    AccountStatus,
    BillingMode,
    BindingRole,
    TenantType,
)
from server.accounts.service.qr_card import binding_card
from server.accounts.service.tickets import issue_ticket
from server.core.errors import Conflict, NotFound
from server.core.paging import Page, Paging, paginate
from server.ledger.posting import TxKind
from server.ledger.statement import DayTotal, Entry, entries, usage_days
from server.metering.models import Meter, MeterStatus
from server.metering.service.balance import available_balances
from server.metering.service.daily_usage import zone
from server.metering.service.devices.meter_views import BILLING_LABELS as BILLING_METER_LABELS
from server.metering.service.devices.meter_views import RELAY_LABELS
from server.metering.service.devices.meter_views import STATUS_LABELS as METER_STATUS_LABELS
from server.metering.vocabulary import KIND_LABELS, PROTOCOL_LABELS
from server.places.service.rooms import AccountLine, room_detail

STATUS_LABELS = {AccountStatus.OPEN: "在用", AccountStatus.CLOSED: "已销户"}
ROLE_LABELS = {BindingRole.OWNER: "户主", BindingRole.ACCOUNTANT: "财务"}
VIA_LABELS = {"sms": "短信验证", "qr": "扫码", "staff": "物业绑定"}
CHANNEL_TITLES = {"wechat": "微信充值", "alipay": "支付宝充值", "cash": "现金充值",
                  "bank": "对公转账充值"}  # fmt: skip
KIND_TITLES = {
    TxKind.RECHARGE: "充值", TxKind.CHARGE: "扣费", TxKind.ADJUSTMENT: "调账",
    TxKind.REFUND_HOLD: "退款", TxKind.REFUND_SETTLE: "退款到账", TxKind.REFUND_VOID: "退款撤销",
    TxKind.REVERSAL: "冲正",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccountFilter:
    site_ids: Sequence[int]  # the scope (or the one site chosen), already checked
    building_id: int | None = None
    status: str = AccountStatus.OPEN.value  # "open" | "closed" | "" (both)
    billing_mode: str = ""  # "prepaid" | "postpaid" | "" (both)
    q: str = ""  # tenant, account number, phone or room


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    number: str
    tenant_name: str
    phone: str
    tenant_type: TenantType
    status: AccountStatus
    billing_mode: BillingMode
    site_name: str
    room_id: int | None
    room: str  # "A栋 3F A301" ('' : no room)
    opened_at: datetime
    closed_at: datetime | None
    meters: int  # active meters
    available: Available | None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def billing_label(self) -> str:
        return BILLING_LABELS[self.billing_mode]

    @property
    def type_label(self) -> str:
        return TYPE_LABELS[self.tenant_type]


BILLING_LABELS = {BillingMode.PREPAID: "预付费", BillingMode.POSTPAID: "后付费"}
TYPE_LABELS = {TenantType.COMPANY: "企业", TenantType.PERSON: "个人"}


@dataclass(frozen=True, slots=True)
class MeterLine:
    id: int
    kind: str
    address: str
    protocol: str
    billing: str
    active: bool
    status: str
    online: bool
    relay: str
    last_reading_at: datetime | None


@dataclass(frozen=True, slots=True)
class Bound:
    """A WeChat user bound to the account."""

    nickname: str
    app: str
    role: str
    via: str
    since: datetime


@dataclass(frozen=True, slots=True)
class Record:
    """A line of the account's recent records (usage charges summed per day)."""

    at: datetime
    title: str
    amount_fen: int
    detail: str


@dataclass(frozen=True, slots=True)
class AccountDetail:
    account: AccountRow
    credit_limit_fen: int
    meters: list[MeterLine]
    bindings: list[Bound]
    records: list[Record]


@dataclass(frozen=True, slots=True)
class BindingCard:
    """A fresh one-use binding ticket: the token, its QR card as a PNG data URI, expiry."""

    token: str
    png_data_uri: str
    expires_at: datetime
    role: str
    font_missing: bool


def _room_label(a: Account) -> str:
    room = a.room
    if room is None:
        return ""
    return f"{room.floor.building.name} {room.floor.name} {room.name}"  # type: ignore[attr-defined]


def _query(f: AccountFilter) -> QuerySet[Account]:
    query = Account.filter(site_id__in=list(f.site_ids))
    if f.status in AccountStatus._value2member_map_:
        query = query.filter(status=f.status)
    if f.billing_mode in BillingMode._value2member_map_:
        query = query.filter(billing_mode=f.billing_mode)
    if f.building_id is not None:
        query = query.filter(room__floor__building_id=f.building_id)
    if f.q:
        query = query.filter(
            Q(tenant_name__icontains=f.q) | Q(number__icontains=f.q)
            | Q(phone__icontains=f.q) | Q(room__name__icontains=f.q)
        )  # fmt: skip
    return query.select_related("site", "room__floor__building")


async def _meter_counts(account_ids: Sequence[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    rows = (
        await Meter.filter(account_id__in=list(account_ids), status=MeterStatus.ACTIVE)
        .annotate(n=Count("id"))
        .group_by("account_id")
        .values_list("account_id", "n")
    )
    return dict(rows)


def _row(a: Account, meters: int, money: Available | None) -> AccountRow:
    return AccountRow(
        a.id, a.number, a.tenant_name, a.phone, TenantType(a.tenant_type),
        AccountStatus(a.status), BillingMode(a.billing_mode), a.site.name,
        a.room_id, _room_label(a), a.opened_at, a.closed_at, meters, money,  # type: ignore[attr-defined]
    )  # fmt: skip


async def list_accounts(f: AccountFilter, paging: Paging) -> Page[AccountRow]:
    """The accounts the filter selects, by site and number, each with its available balance
    and active meter count."""
    page = await paginate(_query(f).order_by("site__name", "number", "id"), paging)
    ids = [a.id for a in page.items]
    money = await available_balances(ids)
    counts = await _meter_counts(ids)
    return page.map(lambda a: _row(a, counts.get(a.id, 0), money.get(a.id)))


async def _account(site_ids: Sequence[int], account_id: int) -> Account:
    account = await _query(AccountFilter(site_ids, status="")).filter(id=account_id).first()
    if account is None:
        raise NotFound("账户不存在")
    return account


async def account_detail(
    site_ids: Sequence[int], account_id: int, *, records: int = 15
) -> AccountDetail:
    """One account of the scope with its meters (every status), bindings and recent records."""
    a = await _account(site_ids, account_id)
    money = (await available_balances([a.id])).get(a.id)
    meters = await _meters_of(a.id)
    active = sum(1 for m in meters if m.active)
    return AccountDetail(
        _row(a, active, money), a.credit_limit_fen, meters, await _bindings(a.id),
        await _records(a.id, records),
    )  # fmt: skip


async def _meters_of(account_id: int) -> list[MeterLine]:
    """The account's meters (in use first), each as the account page lists it."""
    rows = await Meter.filter(account_id=account_id).order_by("status", "kind", "address")
    return [
        MeterLine(m.id, KIND_LABELS[m.kind], m.address, PROTOCOL_LABELS[m.protocol],
                  BILLING_METER_LABELS[m.billing], m.status is MeterStatus.ACTIVE,
                  METER_STATUS_LABELS[m.status], m.online, RELAY_LABELS[m.relay_state],
                  m.last_reading_at)
        for m in rows
    ]  # fmt: skip


async def _bindings(account_id: int) -> list[Bound]:
    rows = (
        await AccountBinding.filter(account_id=account_id)
        .select_related("identity")
        .order_by("created_at", "id")
    )
    return [
        Bound(b.identity.nickname or f"微信用户 {b.identity.id}", b.identity.app.value,
              ROLE_LABELS.get(b.role, b.role.value), VIA_LABELS.get(b.via.value, b.via.value),
              b.created_at)
        for b in rows
    ]  # fmt: skip


async def _records(account_id: int, limit: int) -> list[Record]:
    """The newest `limit` records: money moves one by one, usage charges one line a day."""
    found: list[Entry | DayTotal] = [*await entries(account_id, limit=limit)]
    found += await usage_days(account_id, tz=zone(), limit=limit)
    found.sort(key=lambda r: r.last_id if isinstance(r, DayTotal) else r.id, reverse=True)
    return [_record(r) for r in found[:limit]]


def _record(r: Entry | DayTotal) -> Record:
    if isinstance(r, DayTotal):
        return Record(r.last_at, "用量扣费", r.amount_fen, f"{r.day.isoformat()} 共 {r.count} 笔")
    title = KIND_TITLES.get(r.kind, r.kind.value)
    if r.kind is TxKind.RECHARGE:
        title = CHANNEL_TITLES.get(r.channel or "", title)
    return Record(r.at, title, r.amount_fen, r.memo)


async def account_of_room(site_ids: Sequence[int], room_id: int) -> tuple[Any, AccountRow | None]:
    """The room (NotFound outside the scope) and its open account with its available
    balance, for the room page's panel."""
    detail = await room_detail(site_ids, room_id)
    if detail.account is None:
        return detail.room, None
    a = await _account(site_ids, detail.account.id)
    money = (await available_balances([a.id])).get(a.id)
    return detail.room, _row(a, (await _meter_counts([a.id])).get(a.id, 0), money)


async def binding_card_for(
    site_ids: Sequence[int], account_id: int, *, secret: bytes, hours: int, actor: str,
    role: BindingRole = BindingRole.OWNER,
) -> BindingCard:  # fmt: skip
    """A new one-use binding ticket for the open account (logged by the ticket service),
    drawn as the printable card the CLI makes, for the account page to show."""
    a = await _account(site_ids, account_id)
    if a.status is not AccountStatus.OPEN:
        raise Conflict("该账户已销户，不能再生成绑定码")
    issued = await issue_ticket(
        secret,
        a.site_id,
        a.number,
        role=role,
        hours=hours,
        actor=actor,  # type: ignore[attr-defined]
    )
    card = binding_card(
        issued.token, site=issued.site_name, number=a.number, tenant_name=a.tenant_name,
        role=role.value, expires_at=issued.expires_at.astimezone(zone()),
    )  # fmt: skip
    out = io.BytesIO()
    card.image.save(out, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    return BindingCard(issued.token, uri, issued.expires_at, ROLE_LABELS[role], card.font is None)


__all__ = [
    "AccountDetail", "AccountFilter", "AccountLine", "AccountRow", "BindingCard",
    "account_detail", "account_of_room", "binding_card_for", "list_accounts",
]  # fmt: skip
