"""Staff sign-in, sessions and sign-out (the admin panel's door).

A session lives in the generic keyed store under `ssess:` (Redis in production, memory
embedded): a new id at every sign-in, ended after `idle_timeout_s` without a request and
after `session_ttl_s` in any case, ended on the server at sign-out and when the staff member
changes their password (`users` ends them when an admin disables or resets them: sessions
are kept per staff member, `revoke_owner`). Each session carries its own CSRF token.
Wrong passwords are counted per username and per IP: `signin_failures` of them lock that
name or address for `signin_lock_s`; the answer never says which part was wrong. Every
sign-in, failed or not, goes to the operation log with the caller's IP.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Unauthorized, ValidationFailed
from server.core.sessions import Clock, KeyedSessions, MemorySessions, RedisSessions
from server.core.throttle import Throttle, throttle
from server.staff.config import StaffSettings
from server.staff.models import ROLE_LABELS, AdminUser, StaffRole
from server.staff.service.permissions import Action, may
from server.staff.service.scope import Scope, scope_of
from server.staff.service.users import MIN_PASSWORD, hash_password, verify_password

PREFIX = "ssess:"


class SigninFailed(Unauthorized):
    code = "signin_failed"

    def __init__(self) -> None:
        super().__init__("用户名或密码错误，或尝试次数过多，请稍后再试")


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in staff member, as every admin page needs them."""

    id: int
    username: str
    display_name: str
    role: StaffRole
    scope: Scope
    csrf: str

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"

    @property
    def read_only(self) -> bool:
        return self.role is StaffRole.VIEWER

    def may(self, action: Action | str) -> bool:
        """Whether this role may take `action` (templates pass its name)."""
        return may(self.role, Action(action))


@dataclass(frozen=True, slots=True)
class StaffDoor:
    """What signing in needs: the session store and the two failure counters."""

    sessions: KeyedSessions
    by_username: Throttle
    by_ip: Throttle


def staff_door(redis: Any, settings: StaffSettings, *, clock: Clock | None = None) -> StaffDoor:
    """Redis when the platform has one (production), else this process's memory; `clock`
    (tests) makes the sessions' timeouts checkable without waiting."""
    ttl, idle = settings.session_ttl_s, settings.idle_timeout_s
    kw: dict[str, Any] = {"idle_s": idle} | ({"clock": clock} if clock else {})
    store: KeyedSessions = (
        RedisSessions(redis, PREFIX, ttl, **kw) if redis is not None else MemorySessions(ttl, **kw)
    )
    limit, lock_s = settings.signin_failures, settings.signin_lock_s
    return StaffDoor(
        store,
        throttle(redis, "sfail:user:", limit, lock_s),
        throttle(redis, "sfail:ip:", limit, lock_s),
    )


@cache
def _decoy_hash() -> str:
    """Checked against when the username is unknown, so both failures take as long."""
    return hash_password(secrets.token_urlsafe(16))


async def sign_in(door: StaffDoor, username: str, password: str, ip: str) -> tuple[str, Staff]:
    """A new session for the right password of an active staff member; else SigninFailed."""
    name = username.strip()
    key = name.lower()
    locked = await door.by_username.locked(key) or await door.by_ip.locked(ip)
    user = await AdminUser.get_or_none(username=name) if name else None
    hashed = user.password_hash if user is not None else _decoy_hash()
    right = verify_password(hashed, password) and user is not None and user.is_active
    if locked or not right:
        if not locked:
            await door.by_username.fail(key)
            await door.by_ip.fail(ip)
        why = "尝试次数过多，已锁定" if locked else "用户名或密码错误"
        await record(
            "anonymous",
            "staff.signin_failed",
            target_type="staff",
            target_id=user.id if user is not None else "",
            reason=f"登录失败（{why}）：{name[:64]}",
            detail={"username": name[:64], "ip": ip, "locked": locked},
        )
        raise SigninFailed()
    assert user is not None
    await door.by_username.clear(key)
    token, staff = await _open(door, user)
    await record(
        staff.actor,
        "staff.signin",
        target_type="staff",
        target_id=user.id,
        reason=f"{user.username} 登录",
        detail={"ip": ip},
    )
    return token, staff


async def _open(door: StaffDoor, user: AdminUser) -> tuple[str, Staff]:
    token, session = await door.sessions.issue(user.id, {"csrf": secrets.token_urlsafe(32)})
    return token, await _staff(user, session.data["csrf"])


async def _staff(user: AdminUser, csrf: str) -> Staff:
    return Staff(user.id, user.username, user.display_name, user.role, await scope_of(user), csrf)


async def current(door: StaffDoor, token: str) -> Staff | None:
    """The staff member of a live session (its use noted), or None."""
    session = await door.sessions.resolve(token) if token else None
    if session is None:
        return None
    user = await AdminUser.get_or_none(id=session.owner_id)
    if user is None or not user.is_active:
        await door.sessions.revoke_owner(session.owner_id)
        return None
    return await _staff(user, session.data["csrf"])


async def sign_out(door: StaffDoor, token: str, staff: Staff, ip: str) -> None:
    await door.sessions.revoke(token)
    await record(
        staff.actor, "staff.signout", target_type="staff", target_id=staff.id,
        reason=f"{staff.username} 退出登录", detail={"ip": ip},
    )  # fmt: skip


async def change_password(
    door: StaffDoor, staff: Staff, old: str, new: str, ip: str
) -> tuple[str, Staff]:
    """Set a new password (the old one proven); every session of this staff member ends and
    a new one is returned for the caller."""
    user = await AdminUser.get(id=staff.id)
    if not verify_password(user.password_hash, old):
        raise ValidationFailed("原密码不正确")
    if len(new) < MIN_PASSWORD:
        raise ValidationFailed(f"新密码至少需要 {MIN_PASSWORD} 个字符")
    if new == old:
        raise ValidationFailed("新密码不能与原密码相同")
    async with in_transaction():
        user.password_hash = hash_password(new)
        await user.save(update_fields=["password_hash"])
        await record(
            staff.actor, "staff.password", target_type="staff", target_id=staff.id,
            reason=f"{staff.username} 修改密码", detail={"ip": ip},
        )  # fmt: skip
    await door.sessions.revoke_owner(staff.id)
    return await _open(door, user)
