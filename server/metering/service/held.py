"""Held readings (待审读数): the review queue of readings ingest held — a CONFLICT (another
reading already stored for the same moment), a RESET (the register fell far below the last
one) or an IMPLAUSIBLE one (a jump larger than the meter can pass, a smaller fall, TOU bands
that disagree with the total) — and the two decisions staff take on them.

Accepting sends the reading back through the normal readings path
(`readings.ingest` with `reviewed=True`, decided by the pure `ingest.review`), so it is
stored, counted in the daily usage and billed like any reading — once:

- only the meter's newest reading can be accepted. A CONFLICT sits on a moment that already
  has an accepted reading, and a held reading older than an accepted one lies inside an
  interval already billed: both can only be rejected (409 otherwise);
- a jump (register at or above the last accepted one): the difference is billed once at the
  meter's CT×PT — `billing.pipeline.process_held_acceptance` bills it in the same
  transaction, and billing's unique (meter, reading time) is the second guard;
- a fall (RESET, or an IMPLAUSIBLE fall): the reading becomes the meter's new starting
  point (RESTART), nothing is billed and no negative use is ever counted; the use between
  is unmeasured (charged by hand if it is known);
- on a removed meter (换表) only its final reading can be accepted: later ones are refused.

Rejecting marks the reading rejected with the reason given. Both keep who decided and when
on the row and write the operation log (`reading.accepted` / `reading.rejected`); both are
idempotent: accepting an accepted reading (a double click) bills nothing more, rejecting a
rejected one changes nothing. Every function takes the staff member's site ids: a held
reading of a meter outside them is NotFound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise.expressions import Q
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Page, Paging, paginate
from server.metering.ingest import Outcome
from server.metering.models import HeldReading, Meter, ReadingSource, ReviewStatus
from server.metering.models import Reading as StoredReading
from server.metering.service import reading_store as store
from server.metering.service.devices.meter_views import room_label
from server.metering.service.readings import IncomingReading, PendingBill, ingest
from server.metering.vocabulary import KIND_LABELS, MeterKind

REASON_LABELS = {
    Outcome.CONFLICT.value: "读数冲突",
    Outcome.RESET.value: "表码清零",
    Outcome.IMPLAUSIBLE.value: "异常跳变",
}
STATUS_LABELS = {
    ReviewStatus.OPEN.value: "待处理",
    ReviewStatus.ACCEPTED.value: "已接受",
    ReviewStatus.REJECTED.value: "已驳回",
}
SOURCE_LABELS = {
    ReadingSource.POLL.value: "定时抄表", ReadingSource.READ_NOW.value: "点抄",
    ReadingSource.GATEWAY.value: "网关上报", ReadingSource.HISTORY.value: "网关补报",
    ReadingSource.MANUAL.value: "人工录入",
}  # fmt: skip
_ACCEPTED_AS = {Outcome.ACCEPT.value, Outcome.RESTART.value, Outcome.BASELINE.value}


@dataclass(frozen=True, slots=True)
class HeldFilter:
    """The queue's filters; None / '' is no filter."""

    site_id: int | None = None
    meter_id: int | None = None
    reason: str = ""  # conflict | reset | implausible
    status: str = ReviewStatus.OPEN.value  # "" for every status
    q: str = ""  # meter address, room, account number or tenant
    held_from: datetime | None = None  # held (created) at or after
    held_before: datetime | None = None  # held before


@dataclass(frozen=True, slots=True)
class HeldRow:
    id: int
    meter_id: int
    meter_address: str
    kind: MeterKind
    site_name: str
    room: str
    account: str
    taken_at: datetime
    total: Decimal
    outcome: str
    reason: str  # ingest's words: what was wrong
    source: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision: str | None
    effect: str = ""  # what accepting it would do now ('' when it cannot be accepted)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def reason_label(self) -> str:
        return REASON_LABELS.get(self.outcome, self.outcome)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)

    @property
    def unit(self) -> str:
        return "kWh" if self.kind is MeterKind.ELECTRICITY else "m³"


@dataclass(frozen=True, slots=True)
class Accepted:
    """What accepting did: `bills` is the delta to bill (empty for a restart, or when the
    reading was accepted before: `already`)."""

    held_id: int
    meter_id: int
    account_id: int | None
    outcome: str  # accept | restart | baseline
    energy: Decimal  # billed use (× CT×PT), 0 for a restart
    decision: str
    bills: tuple[PendingBill, ...] = ()
    already: bool = False


def _scoped(site_ids: Sequence[int]):  # type: ignore[no-untyped-def]
    return HeldReading.filter(meter__site_id__in=list(site_ids)).select_related(
        "meter__site", "meter__account", "meter__room__floor__building"
    )


def _row(h: HeldReading, effect: str = "") -> HeldRow:
    m: Meter = h.meter  # type: ignore[assignment]
    account = m.account  # type: ignore[attr-defined]
    return HeldRow(
        h.id, m.id, m.address, MeterKind(m.kind), m.site.name, room_label(m.room),  # type: ignore[attr-defined]
        f"{account.number} {account.tenant_name}" if account else "",
        h.taken_at, Decimal(h.total), h.outcome, h.reason, h.source, h.status, h.created_at,
        h.decided_by, h.decided_at, h.decision, effect,
    )  # fmt: skip


def _effect(h: HeldReading, newest: tuple[datetime, Decimal] | None) -> str:
    """What accepting `h` would do, given the meter's newest accepted reading."""
    if h.status != ReviewStatus.OPEN or h.outcome == Outcome.CONFLICT.value:
        return ""
    if newest is None:
        return "作为首个读数（起点）"
    at, total = newest
    if at >= h.taken_at:
        return ""
    m: Meter = h.meter  # type: ignore[assignment]
    if m.removed_at is not None and h.taken_at > m.removed_at:
        return ""
    held = Decimal(h.total)
    if held >= total:
        return f"按差值 {((held - total) * m.multiplier).normalize():f} 计费"
    return "作为新起点，不计费"


async def _newest(meter_ids: Sequence[int]) -> dict[int, tuple[datetime, Decimal]]:
    """The newest accepted reading (time, register) of each meter: two grouped queries."""
    if not meter_ids:
        return {}
    latest = (
        await StoredReading.filter(meter_id__in=list(meter_ids))
        .annotate(at=Max("taken_at"))
        .group_by("meter_id")
        .values_list("meter_id", "at")
    )
    if not latest:
        return {}
    rows = await StoredReading.filter(
        meter_id__in=[m for m, _ in latest], taken_at__in=[store.as_datetime(t) for _, t in latest]
    ).values_list("meter_id", "taken_at", "total")
    wanted = {(m, store.as_datetime(t)) for m, t in latest}
    return {
        m: (store.as_datetime(t), Decimal(total))
        for m, t, total in rows
        if (m, store.as_datetime(t)) in wanted
    }


async def list_held(site_ids: Sequence[int], paging: Paging, f: HeldFilter) -> Page[HeldRow]:
    """Held readings of the scope, newest first, filtered; `q` matches the meter's address,
    the room's name, the account's number or tenant. Each open row says what accepting it
    would do now (`effect`)."""
    query = _scoped(site_ids)
    if f.site_id is not None:
        query = query.filter(meter__site_id=f.site_id)
    if f.meter_id is not None:
        query = query.filter(meter_id=f.meter_id)
    if f.reason in REASON_LABELS:
        query = query.filter(outcome=f.reason)
    if f.status in STATUS_LABELS:
        query = query.filter(status=f.status)
    if f.held_from is not None:
        query = query.filter(created_at__gte=f.held_from)
    if f.held_before is not None:
        query = query.filter(created_at__lt=f.held_before)
    if f.q:
        query = query.filter(
            Q(meter__address__icontains=f.q)
            | Q(meter__room__name__icontains=f.q)
            | Q(meter__account__number__icontains=f.q)
            | Q(meter__account__tenant_name__icontains=f.q)
        )
    page = await paginate(query.order_by("-taken_at", "-id"), paging)
    newest = await _newest(sorted({h.meter_id for h in page.items}))  # type: ignore[attr-defined]
    return page.map(lambda h: _row(h, _effect(h, newest.get(h.meter_id))))


async def held_reading(site_ids: Sequence[int], held_id: int) -> HeldRow:
    held = await _scoped(site_ids).filter(id=held_id).first()
    if held is None:
        raise NotFound("待审读数不存在")
    newest = await _newest([held.meter_id])  # type: ignore[attr-defined]
    return _row(held, _effect(held, newest.get(held.meter_id)))  # type: ignore[attr-defined]


async def _locked(site_ids: Sequence[int], held_id: int) -> HeldReading:
    """The held reading, in scope, locked for the decision (the lock serialises a double
    click: the second one sees the first one's decision)."""
    if not await HeldReading.filter(id=held_id, meter__site_id__in=list(site_ids)).exists():
        raise NotFound("待审读数不存在")
    held = await HeldReading.filter(id=held_id).select_for_update().first()
    if held is None:
        raise NotFound("待审读数不存在")
    return held


async def accept_held(
    site_ids: Sequence[int], held_id: int, *, actor: str, now: datetime
) -> Accepted:
    """Accept a held reading (see the module docstring); the caller bills `bills` — use
    `server.billing.pipeline.process_held_acceptance`, which does both in one transaction."""
    async with in_transaction():
        held = await _locked(site_ids, held_id)
        meter = await Meter.filter(id=held.meter_id).select_for_update().first()  # type: ignore[attr-defined]
        assert meter is not None  # a held reading's meter is never deleted
        if held.status == ReviewStatus.ACCEPTED:
            stored = await StoredReading.get(meter_id=meter.id, taken_at=held.taken_at)
            return Accepted(
                held.id, meter.id, meter.account_id, stored.outcome, Decimal(stored.energy),  # type: ignore[attr-defined]
                held.decision or "", already=True,
            )  # fmt: skip
        if held.status == ReviewStatus.REJECTED:
            raise Conflict("该读数已被驳回，不能再接受")
        if held.outcome == Outcome.CONFLICT.value:
            raise Conflict("同一时刻已有入库读数（已按其计费），冲突读数只能驳回")
        newest = await StoredReading.filter(meter_id=meter.id).order_by("-taken_at").first()
        if newest is not None and newest.taken_at >= held.taken_at:
            raise Conflict("此读数之后已有入库读数，该区间已计费，只能驳回")
        if meter.removed_at is not None and held.taken_at > meter.removed_at:
            raise Conflict("电表已更换，换表后的旧表读数只能驳回")
        reading = store.reading_of(held.taken_at, held.total, held.bands)
        report = await ingest(
            [IncomingReading(meter.id, reading, ReadingSource(held.source), reviewed=True)],
            now=now,
        )
        outcome = next(iter(report.outcomes), "")
        if outcome not in _ACCEPTED_AS:  # a reading arrived in between: nothing was stored
            raise Conflict("读数已变化，请刷新后重试", outcome=outcome)
        stored = await StoredReading.get(meter_id=meter.id, taken_at=held.taken_at)
        energy = Decimal(stored.energy)
        unit = "kWh" if meter.kind == MeterKind.ELECTRICITY else "m³"
        decision = {
            Outcome.ACCEPT.value: f"已接受：按读数差计费 {energy.normalize():f} {unit}",
            Outcome.RESTART.value: "已接受：作为新起点，不计费",
            Outcome.BASELINE.value: "已接受：作为首个读数（起点）",
        }[outcome]
        await _decide(held, ReviewStatus.ACCEPTED, actor, now, decision)
        await record(
            actor, "reading.accepted", target_type="meter", target_id=meter.id,
            site_id=meter.site_id, reason=decision,
            detail={
                "held_id": held.id, "taken_at": held.taken_at.isoformat(),
                "total": str(held.total), "held_as": held.outcome, "outcome": outcome,
                "energy": str(energy),
            },
            at=now,
        )  # fmt: skip
    return Accepted(
        held.id,
        meter.id,
        meter.account_id,
        outcome,
        energy,
        decision,
        tuple(report.bills),  # type: ignore[attr-defined]
    )


async def reject_held(
    site_ids: Sequence[int], held_id: int, *, actor: str, reason: str, now: datetime
) -> bool:
    """Reject a held reading with `reason`; False when it was rejected before (nothing
    changes)."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("请填写驳回原因")
    async with in_transaction():
        held = await _locked(site_ids, held_id)
        if held.status == ReviewStatus.REJECTED:
            return False
        if held.status == ReviewStatus.ACCEPTED:
            raise Conflict("该读数已被接受并入库，不能再驳回")
        await _decide(held, ReviewStatus.REJECTED, actor, now, reason[:300])
        site_id = await Meter.filter(id=held.meter_id).values_list("site_id", flat=True)  # type: ignore[attr-defined]
        await record(
            actor, "reading.rejected", target_type="meter", target_id=held.meter_id,  # type: ignore[attr-defined]
            site_id=site_id[0], reason=reason[:300],
            detail={
                "held_id": held.id, "taken_at": held.taken_at.isoformat(),
                "total": str(held.total), "held_as": held.outcome,
            },
            at=now,
        )  # fmt: skip
    return True


async def _decide(
    held: HeldReading, status: ReviewStatus, actor: str, now: datetime, decision: str
) -> None:
    held.status, held.decided_by, held.decided_at, held.decision = status, actor, now, decision
    await held.save(update_fields=["status", "decided_by", "decided_at", "decision"])
