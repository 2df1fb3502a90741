"""Who hears an account's messages, and over what: its recipients and their preferences.

An account's recipients: the owner (户主: the account's phone — SMS, voice — and the WeChat
users bound as owner), the accountants bound in WeChat (财务, WeChat only), and its contacts
(notify_recipient: an accountant or a member of staff with a phone and/or e-mail address,
added by staff). Each recipient switches each channel — SMS, voice, e-mail, WeChat (the
mini-program's subscribe messages and the official account's template messages together) —
on or off per message kind (templates.KINDS); the outbox reads the same rows when it
queues (`outbox.switched_off`). Functions take the site ids of the caller's scope: an
account outside it is NotFound. Every change is in the operation log.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountBinding, BindingRole
from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
from server.notify import templates
from server.notify.models import Channel, Contact, Preference, Role
from server.notify.service.outbox import Preferences, switched_off

GROUPS: dict[str, tuple[Channel, ...]] = {
    "sms": (Channel.SMS,),
    "voice": (Channel.VOICE,),
    "email": (Channel.EMAIL,),
    "wechat": (Channel.WECHAT, Channel.OFFICIAL),
}
GROUP_LABELS = {"sms": "短信", "voice": "语音电话", "email": "邮件", "wechat": "微信"}
ROLE_LABELS = {Role.OWNER: "户主", Role.ACCOUNTANT: "财务", Role.STAFF: "员工"}
CONTACT_ROLES = (Role.ACCOUNTANT, Role.STAFF)
MAX_CONTACTS = 10
_PHONE = re.compile(r"\+?[0-9][0-9-]{4,19}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class RecipientView:
    who: str  # "owner", "accountant" or "contact:<id>": what the preference form posts
    role: Role
    name: str
    reach: str  # how it is reached, as staff read it
    groups: tuple[str, ...]  # the channel groups it has (GROUPS keys)
    contact_id: int = 0
    phone: str = ""
    email: str = ""
    on: frozenset[tuple[str, str]] = frozenset()  # (kind, group) switched on

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


@dataclass(frozen=True, slots=True)
class AccountRecipients:
    account_id: int
    site_id: int
    number: str
    tenant_name: str
    recipients: tuple[RecipientView, ...]


def applies(kind: str, group: str) -> bool:
    """Whether messages of `kind` ever go over `group` (a call only for the urgent kinds)."""
    return group != "voice" or kind in templates.VOICE_KINDS


async def _account(site_ids: Collection[int], account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id, site_id__in=list(site_ids))
    if account is None:
        raise NotFound("账户不存在")
    return account


async def account_recipients(site_ids: Collection[int], account_id: int) -> AccountRecipients:
    """The account's recipients with each one's channels per message kind."""
    account = await _account(site_ids, account_id)
    rows = await Preference.filter(account_id=account_id).values_list(
        "role", "contact_id", "kind", "channel", "enabled"
    )
    prefs: Preferences = {
        (account_id, str(role), contact or 0, kind, str(channel)): enabled
        for role, contact, kind, channel, enabled in rows
    }
    bound = await AccountBinding.filter(account_id=account_id).values_list("role", flat=True)
    owners = sum(1 for r in bound if r == BindingRole.OWNER)
    accountants = len(bound) - owners

    phone = account.phone or "（未登记）"
    out = [
        RecipientView("owner", Role.OWNER, account.tenant_name,
                      f"电话 {phone}；微信绑定 {owners} 人", ("sms", "voice", "wechat")),
        RecipientView("accountant", Role.ACCOUNTANT, "微信绑定的财务",
                      f"微信绑定 {accountants} 人", ("wechat",)),
    ]  # fmt: skip
    for c in await Contact.filter(account_id=account_id).order_by("id"):
        reach = (f"电话 {c.phone}" if c.phone else "", f"邮箱 {c.email}" if c.email else "")
        out.append(RecipientView(f"contact:{c.id}", c.role, c.name, "；".join(filter(None, reach)),
                                 ("sms", "voice", "email"), c.id, c.phone, c.email))  # fmt: skip
    site_id: int = account.site_id  # type: ignore[attr-defined]
    return AccountRecipients(
        account.id, site_id, account.number, account.tenant_name,
        tuple(replace(r, on=_switched_on(prefs, account_id, r)) for r in out),
    )  # fmt: skip


def _switched_on(
    prefs: Preferences, account_id: int, r: RecipientView
) -> frozenset[tuple[str, str]]:
    who = (account_id, r.role.value, r.contact_id)
    return frozenset(
        (kind, group)
        for kind in templates.TENANT_KINDS
        for group in r.groups
        if applies(kind, group) and not switched_off(prefs, who, kind, GROUPS[group][0].value)
    )


async def add_contact(
    site_ids: Collection[int],
    account_id: int,
    *,
    role: str,
    name: str,
    phone: str = "",
    email: str = "",
    actor: str,
) -> Contact:
    """A further recipient of the account's messages (all channels on)."""
    account = await _account(site_ids, account_id)
    name, phone, email = name.strip(), phone.strip().replace(" ", ""), email.strip()
    if role not in {r.value for r in CONTACT_ROLES}:
        raise ValidationFailed("接收人身份应为财务或员工")
    if not name or len(name) > 32:
        raise ValidationFailed("请填写接收人姓名（不超过 32 个字）")
    if not phone and not email:
        raise ValidationFailed("手机号和邮箱至少填写一项")
    if phone and not _PHONE.fullmatch(phone):
        raise ValidationFailed(f"手机号格式不正确：{phone}")
    if email and (len(email) > 128 or not _EMAIL.fullmatch(email)):
        raise ValidationFailed(f"邮箱格式不正确：{email}")
    async with in_transaction():
        if await Contact.filter(account_id=account_id).count() >= MAX_CONTACTS:
            raise ValidationFailed(f"每个账户最多 {MAX_CONTACTS} 个接收人")
        contact = await Contact.create(
            account_id=account_id, role=Role(role), name=name, phone=phone, email=email
        )
        await record(
            actor, "notify.recipient", target_type="account", target_id=account_id,
            site_id=account.site_id, reason=f"添加消息接收人 {name}",  # type: ignore[attr-defined]
            detail={"contact": contact.id, "role": role, "phone": phone, "email": email},
        )  # fmt: skip
    return contact


async def remove_contact(
    site_ids: Collection[int], account_id: int, contact_id: int, *, actor: str
) -> None:
    """The contact and its preferences, gone."""
    account = await _account(site_ids, account_id)
    async with in_transaction():
        contact = await Contact.get_or_none(id=contact_id, account_id=account_id)
        if contact is None:
            raise NotFound("接收人不存在")
        await contact.delete()
        await record(
            actor, "notify.recipient", target_type="account", target_id=account_id,
            site_id=account.site_id, reason=f"删除消息接收人 {contact.name}",  # type: ignore[attr-defined]
            detail={"contact": contact_id},
        )  # fmt: skip


async def save_preferences(
    site_ids: Collection[int],
    account_id: int,
    who: str,
    on: Collection[tuple[str, str]],
    *,
    actor: str,
) -> None:
    """One recipient's whole table: every (kind, channel group) it has is stored on when in
    `on`, off otherwise."""
    account = await _account(site_ids, account_id)
    current = await account_recipients(site_ids, account_id)
    recipient = next((r for r in current.recipients if r.who == who), None)
    if recipient is None:
        raise NotFound("接收人不存在")
    async with in_transaction():
        for kind in templates.TENANT_KINDS:
            for group in recipient.groups:
                if not applies(kind, group):
                    continue
                for channel in GROUPS[group]:
                    await set_preference(
                        channel, (kind, group) in on, account_id=account_id,
                        role=recipient.role,
                        contact_id=recipient.contact_id or None, kind=kind,
                    )  # fmt: skip
        off = sorted(
            f"{templates.KINDS[k]}·{GROUP_LABELS[g]}"
            for k in templates.TENANT_KINDS
            for g in recipient.groups
            if applies(k, g) and (k, g) not in on
        )
        await record(
            actor, "notify.preferences", target_type="account", target_id=account_id,
            site_id=account.site_id,  # type: ignore[attr-defined]
            reason=f"消息接收设置：{recipient.role_label} {recipient.name}",
            detail={"who": who, "off": off},
        )  # fmt: skip


async def set_preference(
    channel: Channel,
    enabled: bool,
    *,
    account_id: int | None = None,
    role: Role = Role.OWNER,
    staff_id: int | None = None,
    contact_id: int | None = None,
    kind: str = "",
) -> None:
    """One recipient's choice for one channel and one message kind ("" every kind): a tenant
    recipient (account, owner or accountant; or account and contact) or a staff member."""
    if (account_id is None) == (staff_id is None):
        raise ValidationFailed("偏好要么属于账户的接收人，要么属于员工")
    if kind and kind not in templates.KINDS:
        raise ValidationFailed(f"没有这种消息：{kind}")
    if staff_id is not None:
        role, contact_id = Role.STAFF, None
    elif role is Role.STAFF and contact_id is None:
        raise ValidationFailed("账户的员工接收人须是已登记的接收人")
    async with in_transaction():
        found = await Preference.get_or_none(
            account_id=account_id, staff_id=staff_id, contact_id=contact_id, role=role,
            kind=kind, channel=channel,
        )  # fmt: skip
        if found is None:
            await Preference.create(
                account_id=account_id, staff_id=staff_id, contact_id=contact_id, role=role,
                kind=kind, channel=channel, enabled=enabled,
            )  # fmt: skip
        elif found.enabled != enabled:
            found.enabled = enabled
            await found.save()


def checked(form_keys: Sequence[str]) -> set[tuple[str, str]]:
    """The (kind, group) pairs of a preference form's ticked boxes (`on:<kind>:<group>`)."""
    out = set()
    for key in form_keys:
        _, kind, group = [*key.split(":"), "", ""][:3]
        if key.startswith("on:") and kind in templates.KINDS and group in GROUPS:
            out.add((kind, group))
    return out
