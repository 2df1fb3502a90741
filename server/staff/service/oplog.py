"""The operation log as staff read it: searched, paged, newest first, and scoped.

A superadmin reads every row. Staff of an organisation see only what concerns it: staff with
every site of the organisation read its sites' rows and the rows without a site that concern
its staff (done by one of them, or to one of them: sign-ins, failed sign-ins, staff changes);
staff limited to some sites read those sites' rows and their own actions. A row carries its
site (`site_id`) and its actor (`staff:<id>`), which is what these filters use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

from server.audit.models import OperationLog
from server.core.paging import Page, Paging, paginate
from server.places.models import Site
from server.staff.models import AdminUser, StaffRole
from server.staff.service.users import Manager

STAFF_ACTOR = "staff:"


@dataclass(frozen=True, slots=True)
class LogFilter:
    actor: str = ""  # a staff member's username or name, or an actor such as "system:alarms"
    action: str = ""  # part of the action's code ("staff.", "meter.trip")
    target: str = ""  # "type:id", an id, or words of the row's description
    site_id: int | None = None
    since: date | None = None  # local days, both included
    until: date | None = None


@dataclass(frozen=True, slots=True)
class LogRow:
    id: int
    at: datetime  # local time
    actor: str
    actor_name: str  # the staff member's name where the actor is one
    action: str
    target: str
    site: str
    reason: str
    ip: str  # sign-ins and sign-outs carry the caller's address


def _staff_actors(ids: list[int]) -> list[str]:
    return [f"{STAFF_ACTOR}{i}" for i in ids]


async def _visible(viewer: Manager) -> Q | None:
    """What the viewer may read (None: everything)."""
    if viewer.role is StaffRole.SUPERADMIN:
        return None
    site_ids = await viewer.scope.site_ids_of()
    if viewer.scope.site_ids is not None:
        return Q(site_id__in=site_ids) | Q(actor=viewer.actor)
    ids = await AdminUser.filter(organisation_id=viewer.scope.organisation_id).values_list(
        "id", flat=True
    )
    about_staff = Q(actor__in=_staff_actors(ids)) | Q(
        target_type="staff", target_id__in=[str(i) for i in ids]
    )
    return Q(site_id__in=site_ids) | (Q(site_id__isnull=True) & about_staff)


async def _matching(viewer: Manager, f: LogFilter, tz: ZoneInfo) -> Q:
    found = Q()
    if f.site_id is not None:
        found &= Q(site_id__in=await viewer.scope.site_ids_of(f.site_id))  # NotFound outside
    if f.actor:
        ids = await AdminUser.filter(
            Q(username__icontains=f.actor) | Q(display_name__icontains=f.actor)
        ).values_list("id", flat=True)
        found &= Q(actor__in=_staff_actors(ids)) | Q(actor__icontains=f.actor)
    if f.action:
        found &= Q(action__icontains=f.action)
    if f.target:
        kind, _, ident = f.target.rpartition(":")
        exact = Q(target_type=kind, target_id=ident) if kind else Q(target_id=ident)
        found &= exact | Q(reason__icontains=f.target)
    if f.since is not None:
        found &= Q(at__gte=datetime.combine(f.since, time(), tz))
    if f.until is not None:
        found &= Q(at__lt=datetime.combine(f.until + timedelta(days=1), time(), tz))
    return found


async def search_log(viewer: Manager, f: LogFilter, paging: Paging, tz: ZoneInfo) -> Page[LogRow]:
    """The rows the viewer may read that match `f`, newest first."""
    visible = await _visible(viewer)
    query = OperationLog.filter(await _matching(viewer, f, tz))
    if visible is not None:
        query = query.filter(visible)
    page = await paginate(query.order_by("-id"), paging)
    names = await _names(page.items)
    return page.map(lambda row: _row(row, names, tz))


async def _names(rows: Any) -> dict[str, str]:
    """Actor → display name for the staff and site names the page shows."""
    staff_ids = {int(r.actor[len(STAFF_ACTOR) :]) for r in rows if _is_staff(r.actor)}
    site_ids = {r.site_id for r in rows if r.site_id is not None}
    names: dict[str, str] = {}
    for user_id, username, display in await AdminUser.filter(id__in=sorted(staff_ids)).values_list(
        "id", "username", "display_name"
    ):
        names[f"{STAFF_ACTOR}{user_id}"] = f"{display}（{username}）" if display else username
    for site_id, name in await Site.filter(id__in=sorted(site_ids)).values_list("id", "name"):
        names[f"site:{site_id}"] = name
    return names


SYSTEM_ACTORS = {
    "system:alarms": "系统（余额告警与自动通断）",
    "system:payments": "系统（充值转入表端）",
    "system:controller": "系统（命令执行）",
    "system:levy": "系统（基本电费征收）",
    "system:tariffs": "系统（调价下发表端）",
}


async def actor_names(actors: Iterable[str]) -> dict[str, str]:
    """Actor → how a page names it: a staff member by name (username), the platform's own
    workers in words; an actor left out is shown as it is."""
    wanted = set(actors)
    names = {a: SYSTEM_ACTORS[a] for a in wanted if a in SYSTEM_ACTORS}
    staff_ids = sorted(int(a[len(STAFF_ACTOR) :]) for a in wanted if _is_staff(a))
    for user_id, username, display in await AdminUser.filter(id__in=staff_ids).values_list(
        "id", "username", "display_name"
    ):
        names[f"{STAFF_ACTOR}{user_id}"] = f"{display}（{username}）" if display else username
    return names


def _is_staff(actor: str) -> bool:
    return actor.startswith(STAFF_ACTOR) and actor[len(STAFF_ACTOR) :].isdigit()


def _row(row: OperationLog, names: dict[str, str], tz: ZoneInfo) -> LogRow:
    detail = row.detail if isinstance(row.detail, dict) else {}
    target = f"{row.target_type}:{row.target_id}" if row.target_type else row.target_id
    return LogRow(
        row.id, row.at.astimezone(tz), row.actor, names.get(row.actor, ""), row.action, target,
        names.get(f"site:{row.site_id}", "") if row.site_id is not None else "", row.reason,
        str(detail.get("ip", "")),
    )  # fmt: skip
