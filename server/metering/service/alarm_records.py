"""Alarm records (告警记录) as staff search them: the alarms the alarm service raised for
tenants (`AlarmRecord`), newest first, scoped to the staff member's sites, searched by account
number, tenant, room or meter address and filtered by site, kind, level and local dates.

Read-only: the alarm service writes the rows and the notifier marks them sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Q, Subquery

from server.core.paging import Page, Paging, paginate
from server.metering.alarms import AlarmKind
from server.metering.models import AlarmRecord, Meter
from server.metering.service.devices.meter_views import room_label

ALARM_KIND_LABELS = {
    AlarmKind.BALANCE.value: "余额告警",
    AlarmKind.FORECAST.value: "余额预测",
    AlarmKind.ARREARS.value: "欠费提醒",
}
LEVELS = (1, 2, 3)  # the default policy's levels; a site may define more
LEVEL_LABELS = {1: "一级", 2: "二级", 3: "三级（断电）"}


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    """The list's filters; None / '' is no filter. Dates are local days, both included."""

    site_id: int | None = None
    kind: str = ""
    level: int | None = None
    start: date | None = None
    end: date | None = None
    q: str = ""  # account number, tenant, room or meter address


@dataclass(frozen=True, slots=True)
class AlarmRow:
    id: int
    created_at: datetime
    site_name: str
    account_id: int
    account_number: str
    tenant_name: str
    room: str
    kind: str
    level: int
    balance_fen: int
    message: str
    notified_at: datetime | None

    @property
    def kind_label(self) -> str:
        return ALARM_KIND_LABELS.get(self.kind, self.kind)

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS.get(self.level, f"{self.level}级")


def _row(r: AlarmRecord) -> AlarmRow:
    a = r.account  # type: ignore[attr-defined]
    return AlarmRow(
        r.id, r.created_at, a.site.name, a.id, a.number, a.tenant_name, room_label(a.room),
        r.kind, r.level, r.balance_fen, r.message, r.notified_at,
    )  # fmt: skip


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


async def list_alarms(
    site_ids: Sequence[int], paging: Paging, f: AlarmFilter, *, tz: ZoneInfo
) -> Page[AlarmRow]:
    """Alarm records of the scope, newest first, filtered (see AlarmFilter)."""
    query = AlarmRecord.filter(account__site_id__in=list(site_ids)).select_related(
        "account__site", "account__room__floor__building"
    )
    if f.site_id is not None:
        query = query.filter(account__site_id=f.site_id)
    if f.kind in ALARM_KIND_LABELS:
        query = query.filter(kind=f.kind)
    if f.level is not None:
        query = query.filter(level=f.level)
    if f.start is not None:
        query = query.filter(created_at__gte=_midnight(f.start, tz))
    if f.end is not None:
        query = query.filter(created_at__lt=_midnight(f.end + timedelta(days=1), tz))
    if f.q:
        metered = Meter.filter(
            site_id__in=list(site_ids), address__icontains=f.q, account_id__isnull=False
        ).values("account_id")
        query = query.filter(
            Q(account__number__icontains=f.q)
            | Q(account__tenant_name__icontains=f.q)
            | Q(account__room__name__icontains=f.q)
            | Q(account_id__in=Subquery(metered))
        )
    page = await paginate(query.order_by("-created_at", "-id"), paging)
    return page.map(_row)
