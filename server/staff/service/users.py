"""Staff accounts: who may sign in to the admin panel, with which role and sites, and how the
notifier reaches them. Passwords are argon2id (ASVS 11.4.2).

A new account's password, and a reset one, is generated here and shown once to the admin who
asked: never typed by that admin (no weak or reused password set by hand, none the admin keeps
knowing once the staff member has changed it on the password page), never stored or logged
in clear.

Every change is checked against the manager's scope: an organisation's admin sees and changes
only its own organisation's staff (anyone else's is "not found"), may not make a superadmin,
and may give only its own sites. No change may leave an organisation without an active
org_admin (nor the platform without an active superadmin), and nobody disables or resets
themselves here. Disabling and resetting end every session of that staff member at once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.core.paging import Page, Paging, paginate
from server.core.sessions import KeyedSessions
from server.places.models import Organisation, Site
from server.staff.models import ROLE_LABELS, AdminUser, StaffRole
from server.staff.service.scope import Scope, SiteRef

# argon2id, t=2, m=19 MiB, p=1: the OWASP minimum the security checklist names.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD = 10
# Generated passwords: no 0/O, 1/l/I, so a clerk can read one aloud or copy it by hand.
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{3,64}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,18}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerificationError:
        return False


def new_password() -> str:
    """A random password of 3×4 characters (about 70 bits), shown once to the admin."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


async def create_admin(
    username: str,
    password: str,
    *,
    role: StaffRole = StaffRole.SUPERADMIN,
    organisation: Organisation | None = None,
    display_name: str = "",
    sites: Sequence[Site] = (),
    phone: str = "",
    email: str = "",
    actor: str,
) -> AdminUser:
    """Create a staff user and its operation-log row (who created whom, with which role)."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"密码至少需要 {MIN_PASSWORD} 个字符")
    if role != StaffRole.SUPERADMIN and organisation is None:
        raise ValidationFailed("除超级管理员外，必须指定所属组织")
    if await AdminUser.exists(username=username):
        raise Conflict(f"用户名 {username} 已存在")
    detail: dict[str, Any] = {
        "username": username,
        "role": role.value,
        "organisation_id": organisation.id if organisation else None,
    }
    detail |= {"site_ids": [s.id for s in sites]} if sites else {}
    async with in_transaction():
        user = await AdminUser.create(
            username=username, password_hash=hash_password(password), role=role,
            organisation=organisation, display_name=display_name or username,
            phone=phone, email=email,
        )  # fmt: skip
        if sites:
            await user.sites.add(*sites)
        await record(
            actor, "staff.create", target_type="staff", target_id=user.id,
            reason=f"新建员工账号 {username}（{ROLE_LABELS[role]}）", detail=detail,
        )  # fmt: skip
        return user


class Manager(Protocol):
    """The signed-in staff member who manages others (signin.Staff is one)."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> StaffRole: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def actor(self) -> str: ...


class NotYours(Forbidden):
    code = "not_yours"


@dataclass(frozen=True, slots=True)
class StaffRow:
    """A staff member as the staff pages show them."""

    id: int
    username: str
    display_name: str
    role: StaffRole
    organisation: str  # its name; "" for a superadmin
    sites: tuple[SiteRef, ...]  # empty: every site of the organisation
    phone: str
    email: str
    is_active: bool
    created_at: datetime

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def site_names(self) -> str:
        return "、".join(s.name for s in self.sites) if self.sites else "全部园区"

    @property
    def site_ids(self) -> list[int]:
        return [s.id for s in self.sites]


@dataclass(frozen=True, slots=True)
class StaffForm:
    """What the create and edit forms send (the username only when creating)."""

    username: str = ""
    display_name: str = ""
    role: str = ""
    site_ids: tuple[int, ...] = ()
    phone: str = ""
    email: str = ""
    organisation_id: int | None = None  # a superadmin's choice; else the manager's own


def _row(user: AdminUser) -> StaffRow:
    org = user.organisation
    sites = tuple(SiteRef(s.id, s.name) for s in sorted(user.sites, key=lambda s: (s.name, s.id)))
    return StaffRow(
        user.id, user.username, user.display_name, user.role, org.name if org else "", sites,
        user.phone, user.email, user.is_active, user.created_at,
    )  # fmt: skip


def _visible(manager: Manager) -> QuerySet[AdminUser]:
    """The staff a manager may see: everyone (superadmin) or their own organisation's."""
    query = AdminUser.all()
    if manager.role is not StaffRole.SUPERADMIN:
        query = query.filter(organisation_id=manager.scope.organisation_id)
    return query


async def list_staff(
    manager: Manager, paging: Paging, *, q: str = "", role: str = "", active: bool | None = None
) -> Page[StaffRow]:
    """The staff in the manager's scope, by username; `q` searches names, phone and e-mail."""
    query = _visible(manager)
    if q:
        query = query.filter(
            Q(username__icontains=q) | Q(display_name__icontains=q)
            | Q(phone__icontains=q) | Q(email__icontains=q)
        )  # fmt: skip
    if role in {r.value for r in StaffRole}:
        query = query.filter(role=StaffRole(role))
    if active is not None:
        query = query.filter(is_active=active)
    query = query.order_by("-is_active", "username").prefetch_related("sites", "organisation")
    return (await paginate(query, paging)).map(_row)


async def staff_member(manager: Manager, user_id: int) -> StaffRow:
    """One staff member in the manager's scope, or NotFound."""
    user = await _visible(manager).get_or_none(id=user_id).prefetch_related("sites", "organisation")
    if user is None:
        raise NotFound("员工不存在")
    return _row(user)


def role_choices(manager: Manager) -> list[tuple[str, str]]:
    """The roles this manager may give (an organisation's admin never makes a superadmin)."""
    return [
        (role.value, ROLE_LABELS[role])
        for role in StaffRole
        if role is not StaffRole.SUPERADMIN or manager.role is StaffRole.SUPERADMIN
    ]


async def organisation_choices(manager: Manager) -> list[tuple[int, str]]:
    """The organisations new staff may belong to: all for a superadmin, else one's own."""
    query = Organisation.all().order_by("name", "id")
    if manager.role is not StaffRole.SUPERADMIN:
        query = query.filter(id=manager.scope.organisation_id)
    return [(org_id, name) for org_id, name in await query.values_list("id", "name")]


def _role(manager: Manager, raw: str) -> StaffRole:
    try:
        role = StaffRole(raw)
    except ValueError:
        raise ValidationFailed("请选择角色") from None
    if role is StaffRole.SUPERADMIN and manager.role is not StaffRole.SUPERADMIN:
        raise NotYours("只有超级管理员可以设置超级管理员")
    return role


def _contacts(form: StaffForm) -> tuple[str, str]:
    phone, email = form.phone.strip(), form.email.strip()
    if phone and not _PHONE.fullmatch(phone):
        raise ValidationFailed("手机号格式不正确")
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        raise ValidationFailed("邮箱格式不正确")
    return phone, email


async def _organisation(manager: Manager, role: StaffRole, form: StaffForm) -> Organisation | None:
    if role is StaffRole.SUPERADMIN:
        return None
    if manager.role is not StaffRole.SUPERADMIN:
        return await Organisation.get(id=manager.scope.organisation_id)
    if form.organisation_id is None:
        raise ValidationFailed("请选择所属组织")
    org = await Organisation.get_or_none(id=form.organisation_id)
    if org is None:
        raise NotFound("组织不存在")
    return org


async def _sites(manager: Manager, org: Organisation | None, site_ids: Sequence[int]) -> list[Site]:
    """The sites given: in the manager's scope and of the staff member's organisation (a
    manager limited to some sites cannot give "every site")."""
    if not site_ids:
        if org is not None and manager.scope.site_ids is not None:
            raise ValidationFailed("请选择负责园区")
        return []
    if org is None:
        raise ValidationFailed("超级管理员不限园区，无需选择园区")
    allowed = set(await manager.scope.site_ids_of())
    sites = await Site.filter(id__in=sorted(set(site_ids)), organisation_id=org.id)
    if len(sites) != len(set(site_ids)) or any(s.id not in allowed for s in sites):
        raise NotFound("站点不存在")
    return sorted(sites, key=lambda s: s.id)


async def create_staff(manager: Manager, form: StaffForm) -> tuple[StaffRow, str]:
    """A new staff member and their generated password (to show once)."""
    username = form.username.strip()
    if not _USERNAME.fullmatch(username):
        raise ValidationFailed("用户名为 3–64 位字母、数字或 _ . @ -")
    role = _role(manager, form.role)
    org = await _organisation(manager, role, form)
    sites = await _sites(manager, org, form.site_ids)
    phone, email = _contacts(form)
    password = new_password()
    user = await create_admin(
        username, password, role=role, organisation=org, sites=sites, phone=phone, email=email,
        display_name=form.display_name.strip()[:64], actor=manager.actor,
    )  # fmt: skip
    return await staff_member(manager, user.id), password


async def _target(manager: Manager, user_id: int) -> AdminUser:
    """The staff member to change (in the manager's scope: never a superadmin for an
    organisation's admin, superadmins belong to none)."""
    user = await _visible(manager).get_or_none(id=user_id)
    if user is None:
        raise NotFound("员工不存在")
    return user


async def _keep_an_admin(user: AdminUser, role: StaffRole, active: bool) -> None:
    """Refuse a change that leaves the user's organisation without an active org_admin (or
    the platform without an active superadmin): nobody could manage its staff any more."""
    if not user.is_active or user.role not in (StaffRole.ORG_ADMIN, StaffRole.SUPERADMIN):
        return
    if role is user.role and active:
        return
    admins = AdminUser.filter(role=user.role, is_active=True)
    if user.role is StaffRole.ORG_ADMIN:
        admins = admins.filter(organisation_id=user.organisation_id)  # type: ignore[attr-defined]
    # Locked in id order (PostgreSQL), so two admins demoting each other at once queue here
    # instead of both seeing the other still active.
    locked = await admins.order_by("id").select_for_update()
    if not any(peer.id != user.id for peer in locked):
        raise Conflict(f"至少需要保留一名启用的{ROLE_LABELS[user.role]}，否则将无人能管理员工")


async def edit_staff(manager: Manager, user_id: int, form: StaffForm) -> StaffRow:
    """Change a staff member's name, role, sites and contacts (the username stays)."""
    role = _role(manager, form.role)
    phone, email = _contacts(form)
    async with in_transaction():
        user = await _target(manager, user_id)
        org = await user.organisation
        if (role is StaffRole.SUPERADMIN) != (org is None):
            raise ValidationFailed("超级管理员与组织员工之间不能互相转换，请另建账号")
        sites = await _sites(manager, org, form.site_ids)
        await _keep_an_admin(user, role, True)
        had = sorted(await user.sites.all().values_list("id", flat=True))
        before = {
            "display_name": user.display_name, "role": user.role.value, "phone": user.phone,
            "email": user.email, "site_ids": had,
        }  # fmt: skip
        user.display_name = form.display_name.strip()[:64] or user.username
        user.role, user.phone, user.email = role, phone, email
        await user.save(update_fields=["display_name", "role", "phone", "email"])
        await user.sites.clear()
        if sites:
            await user.sites.add(*sites)
        after = {
            "display_name": user.display_name, "role": role.value, "phone": phone,
            "email": email, "site_ids": [s.id for s in sites],
        }  # fmt: skip
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        await record(
            manager.actor, "staff.edit", target_type="staff", target_id=user.id,
            reason=f"修改员工 {user.username}（{ROLE_LABELS[role]}）", detail=changes,
        )  # fmt: skip
    return await staff_member(manager, user_id)


async def set_active(
    sessions: KeyedSessions, manager: Manager, user_id: int, active: bool
) -> StaffRow:
    """Enable or disable a staff member; disabling ends every session they have at once."""
    if user_id == manager.id and not active:
        raise Conflict("不能停用自己的账号")
    async with in_transaction():
        user = await _target(manager, user_id)
        if not active:
            await _keep_an_admin(user, user.role, False)
        user.is_active = active
        await user.save(update_fields=["is_active"])
        await record(
            manager.actor, "staff.enable" if active else "staff.disable", target_type="staff",
            target_id=user_id, reason=f"{'启用' if active else '停用'}员工 {user.username}",
        )  # fmt: skip
    if not active:
        await sessions.revoke_owner(user_id)
    return await staff_member(manager, user_id)


async def reset_password(sessions: KeyedSessions, manager: Manager, user_id: int) -> str:
    """A new generated password for a staff member (to show once); their sessions end."""
    if user_id == manager.id:
        raise Conflict("请在“修改密码”页面修改自己的密码")
    password = new_password()
    async with in_transaction():
        user = await _target(manager, user_id)
        user.password_hash = hash_password(password)
        await user.save(update_fields=["password_hash"])
        await record(
            manager.actor, "staff.reset_password", target_type="staff", target_id=user_id,
            reason=f"重置员工 {user.username} 的密码",
        )  # fmt: skip
    await sessions.revoke_owner(user_id)
    return password
