"""Tariff service: create plans, schedule price changes, assign plans to accounts, and load
the `Tariff` (all versions) that billing prices with.

A version's `spec` is validated by `schemas.to_plan` before it is stored and again when
loaded, so an invalid plan is never priced. Versions are immutable; a price change is a new
version whose `effective_from` is now or later (never in the past: bills already issued were
priced by the old version). Services do not commit: the caller's transaction boundary does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import Conflict, NotFound
from server.places.models import Building, Floor
from server.tariffs.calendar import LOCAL_TZ, next_period_start, weekends
from server.tariffs.errors import InvalidTariff, InvalidUsage
from server.tariffs.models import TariffAssignment, TariffKind, TariffPlan, TariffVersion
from server.tariffs.plans import Band, Plan, PlanVersion, Tariff, TierPeriod, TwoPartPlan, Unit
from server.tariffs.pricing import PriceLine, PriceResult, UsageSlice, basic_charge, price_usage
from server.tariffs.schemas import from_plan, to_plan

_UNIT = {TariffKind.ELECTRICITY: Unit.KWH, TariffKind.WATER: Unit.M3}


class TariffNotAssigned(NotFound):
    """An account has a meter of a kind but no plan for it: nothing can be priced."""

    code = "tariff_not_assigned"


def _checked(kind: TariffKind, spec: dict[str, Any] | Plan) -> dict[str, Any]:
    plan = spec if not isinstance(spec, dict) else to_plan(spec)
    if plan.unit is not _UNIT[kind]:
        raise InvalidTariff("价格方案的计量单位与类型不符（电用kWh，水用m³）", kind=kind.value)
    return from_plan(plan)  # the canonical JSON form, so equal plans store equally


async def create_plan(
    site_id: int,
    name: str,
    kind: TariffKind,
    spec: dict[str, Any] | Plan,
    *,
    effective_from: datetime,
    actor: str,
) -> TariffPlan:
    """A new plan with its first version (which may start in the past: the plan is new)."""
    kind = TariffKind(kind)
    stored = _checked(kind, spec)
    _aware(effective_from)
    plan = await TariffPlan.create(site_id=site_id, name=name, kind=kind)
    await TariffVersion.create(
        plan=plan, effective_from=effective_from, spec=stored, created_by=actor
    )
    return plan


async def schedule_change(
    plan_id: int,
    spec: dict[str, Any] | Plan,
    *,
    effective_from: datetime,
    now: datetime,
    actor: str,
) -> TariffVersion:
    """A price change effective at `effective_from` (≥ `now`)."""
    _aware(effective_from)
    if effective_from < now:
        raise InvalidTariff("调价生效时间不能早于当前时间", effective_from=effective_from)
    plan = await TariffPlan.get_or_none(id=plan_id)
    if plan is None:
        raise NotFound("价格方案不存在", plan_id=plan_id)
    stored = _checked(plan.kind, spec)
    if await TariffVersion.filter(plan_id=plan_id, effective_from=effective_from).exists():
        raise InvalidTariff("该生效时间已有一个版本", effective_from=effective_from)
    return await TariffVersion.create(
        plan_id=plan_id, effective_from=effective_from, spec=stored, created_by=actor
    )


async def assign(account_id: int, plan_id: int) -> TariffAssignment:
    """Put an account on a plan for the plan's kind (replacing the previous one)."""
    plan = await TariffPlan.get_or_none(id=plan_id)
    if plan is None:
        raise NotFound("价格方案不存在", plan_id=plan_id)
    row, _ = await TariffAssignment.update_or_create(
        defaults={"plan_id": plan_id}, account_id=account_id, kind=plan.kind
    )
    return row


async def load_tariff(plan_id: int) -> Tariff:
    tariffs = await load_tariffs([plan_id])
    if plan_id not in tariffs:
        raise NotFound("价格方案不存在", plan_id=plan_id)
    return tariffs[plan_id]


async def load_tariffs(plan_ids: Iterable[int]) -> dict[int, Tariff]:
    """Every version of each plan as a `Tariff`, in one query."""
    versions: dict[int, list[PlanVersion]] = {}
    rows = await TariffVersion.filter(plan_id__in=list(set(plan_ids))).order_by(
        "plan_id", "effective_from"
    )
    for row in rows:
        plan = to_plan(row.spec)
        versions.setdefault(row.plan_id, []).append(PlanVersion(row.effective_from, plan))  # type: ignore[attr-defined]
    return {pid: Tariff(tuple(vs)) for pid, vs in versions.items()}


async def tariff_for(account_id: int, kind: TariffKind) -> Tariff:
    row = await TariffAssignment.get_or_none(account_id=account_id, kind=TariffKind(kind))
    if row is None:
        raise TariffNotAssigned("账户未设置价格方案", account_id=account_id, kind=kind)
    return await load_tariff(row.plan_id)  # type: ignore[attr-defined]


def _aware(at: datetime) -> None:
    if at.utcoffset() is None:
        raise InvalidTariff("生效时间必须带时区", effective_from=at)


# -- the admin panel's use cases (scoped to the staff member's sites) --------------------------


class PlanNameTaken(Conflict):
    code = "plan_name_taken"


class VersionState(StrEnum):
    PAST = "past"
    IN_FORCE = "in_force"
    PENDING = "pending"


VERSION_STATE_LABELS = {
    VersionState.PAST: "已失效",
    VersionState.IN_FORCE: "生效中",
    VersionState.PENDING: "待生效",
}
KIND_LABELS = {TariffKind.ELECTRICITY: "电价", TariffKind.WATER: "水价"}


@dataclass(frozen=True, slots=True)
class VersionView:
    id: int
    effective_from: datetime
    spec: dict[str, Any]
    summary: str
    created_by: str
    state: VersionState
    batch_id: int | None = None  # its set-price batch (server.tariffs.push; 0: none needed)


@dataclass(frozen=True, slots=True)
class PlanView:
    id: int
    site_id: int
    site_name: str
    name: str
    kind: TariffKind
    versions: tuple[VersionView, ...]  # oldest first
    assigned: int

    @property
    def current(self) -> VersionView | None:
        """The version in force now (None: every version starts later)."""
        return next((v for v in self.versions if v.state is VersionState.IN_FORCE), None)

    @property
    def newest(self) -> VersionView:
        return self.versions[-1]

    @property
    def pending(self) -> int:
        return sum(v.state is VersionState.PENDING for v in self.versions)


def _views(rows: list[TariffVersion], now: datetime) -> tuple[VersionView, ...]:
    started = [r for r in rows if r.effective_from <= now]
    current = started[-1].id if started else None
    return tuple(
        VersionView(
            r.id, r.effective_from, r.spec, summary(r.spec), r.created_by,
            VersionState.IN_FORCE if r.id == current
            else VersionState.PENDING if r.effective_from > now else VersionState.PAST,
            r.batch_id,
        )
        for r in rows
    )  # fmt: skip


async def plans(
    site_ids: Sequence[int], *, now: datetime, kind: str = "", search: str = ""
) -> list[PlanView]:
    """The plans of `site_ids` (by site and name), each with its versions and assignments."""
    query = TariffPlan.filter(site_id__in=list(site_ids))
    if kind in TariffKind.__members__.values():
        query = query.filter(kind=kind)
    if search:
        query = query.filter(name__icontains=search)
    rows = await query.order_by("site__name", "name", "id").values(
        "id", "site_id", "site__name", "name", "kind"
    )
    ids = [r["id"] for r in rows]
    versions: dict[int, list[TariffVersion]] = {i: [] for i in ids}
    for v in await TariffVersion.filter(plan_id__in=ids).order_by("effective_from"):
        versions[v.plan_id].append(v)  # type: ignore[attr-defined]
    counts = dict(
        await TariffAssignment.filter(plan_id__in=ids)
        .annotate(n=Count("id"))
        .group_by("plan_id")
        .values_list("plan_id", "n")
    )
    return [
        PlanView(
            r["id"], r["site_id"], r["site__name"], r["name"], TariffKind(r["kind"]),
            _views(versions[r["id"]], now), int(counts.get(r["id"], 0)),
        )
        for r in rows
    ]  # fmt: skip


async def plan_view(site_ids: Sequence[int], plan_id: int, *, now: datetime) -> PlanView:
    """One plan of the scope, or NotFound (another organisation's plan does not exist)."""
    row = await TariffPlan.get_or_none(id=plan_id, site_id__in=list(site_ids))
    if row is None:
        raise NotFound("价格方案不存在", plan_id=plan_id)
    found = await plans([row.site_id], now=now, search="")  # type: ignore[attr-defined]
    return next(p for p in found if p.id == plan_id)


async def new_plan(
    site_ids: Sequence[int],
    site_id: int,
    name: str,
    kind: TariffKind | str,
    spec: dict[str, Any],
    *,
    effective_from: datetime,
    actor: str,
) -> TariffPlan:
    """`create_plan` for a site of the scope, with its operation-log entry."""
    if site_id not in site_ids:
        raise NotFound("站点不存在", site_id=site_id)
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidTariff("方案名称不能为空，且不超过100个字符")
    try:
        kind = TariffKind(kind)
    except ValueError:
        raise InvalidTariff("方案类型应为电价或水价", kind=kind) from None
    if await TariffPlan.filter(site_id=site_id, name=name).exists():
        raise PlanNameTaken("该园区已有同名价格方案", name=name)
    async with in_transaction():
        plan = await create_plan(
            site_id, name, kind, spec, effective_from=effective_from, actor=actor
        )
        await record(
            actor, "新建价格方案", target_type="tariff_plan", target_id=plan.id,
            site_id=site_id, detail={"name": name, "kind": kind.value, "spec": _checked(kind, spec),
                                     "effective_from": effective_from.isoformat()},
        )  # fmt: skip
    return plan


async def change_price(
    site_ids: Sequence[int],
    plan_id: int,
    spec: dict[str, Any],
    *,
    effective_from: datetime | None,
    now: datetime,
    actor: str,
) -> TariffVersion:
    """A new version of a plan of the scope, effective now (None) or at a later time."""
    plan = await TariffPlan.get_or_none(id=plan_id, site_id__in=list(site_ids))
    if plan is None:
        raise NotFound("价格方案不存在", plan_id=plan_id)
    at = now if effective_from is None else effective_from
    async with in_transaction():
        version = await schedule_change(plan_id, spec, effective_from=at, now=now, actor=actor)
        await record(
            actor, "调整价格", target_type="tariff_plan", target_id=plan_id,
            site_id=plan.site_id,  # type: ignore[attr-defined]
            detail={"version": version.id, "effective_from": at.isoformat(), "spec": version.spec},
        )  # fmt: skip
    return version


@dataclass(frozen=True, slots=True)
class Preview:
    """What a plan charges for a sample month: the energy lines, the basic charge (two-part)."""

    month: date
    quantity: Decimal
    unit: str
    energy: PriceResult
    basic: PriceResult | None
    basic_amount: Decimal

    @property
    def lines(self) -> tuple[PriceLine, ...]:
        return self.energy.lines + (self.basic.lines if self.basic else ())

    @property
    def total(self) -> Decimal:
        return self.energy.total + (self.basic.total if self.basic else Decimal(0))

    @property
    def total_fen(self) -> int:
        """The total rounded to the fen (half up), as a bill would show it."""
        return int((self.total * 100).to_integral_value(ROUND_HALF_UP))


def preview(
    spec: dict[str, Any] | Plan, month: date, quantity: Decimal, basic_amount: Decimal
) -> Preview:
    """Price `quantity` used evenly over `month` (bands by time, weekends on the holiday
    schedule) through the one pricing path; two-part plans add `basic_amount` kVA / kW."""
    if not quantity.is_finite() or quantity < 0 or not basic_amount.is_finite():
        raise InvalidUsage("示例用量必须是不小于零的数字")
    plan = spec if not isinstance(spec, dict) else to_plan(spec)
    start = datetime(month.year, month.month, 1, tzinfo=LOCAL_TZ)
    end = next_period_start(TierPeriod.MONTH, start)
    energy = price_usage(plan, UsageSlice(start, end, quantity), is_holiday=weekends)
    basic = basic_charge(plan, basic_amount) if isinstance(plan, TwoPartPlan) else None
    return Preview(month, quantity, plan.unit.value, energy, basic, basic_amount)


_SHAPES = {"flat": "单一价", "tou": "分时", "tiered": "阶梯", "two_part": "两部制"}
_PERIODS = {"month": "月", "year": "年"}


def summary(spec: dict[str, Any]) -> str:
    """A one-line Chinese description of a stored plan (for lists and version tables)."""
    shape = spec.get("kind", "")
    unit = spec.get("unit", "kWh")
    if shape == "flat":
        return f"单一价 ¥{spec['price']}/{unit}"
    if shape == "tou":
        prices = "，".join(f"{Band(int(b)).label}{p}" for b, p in sorted(spec["prices"].items()))
        return f"分时（{len(spec['seasons'])}个季节）{prices}"
    if shape == "tiered":
        base = f"，基础{summary(spec['base'])}" if spec.get("base") else ""
        return f"{_PERIODS.get(spec.get('period', ''), '')}阶梯{len(spec['tiers'])}档{base}"
    if shape == "two_part":
        basis = "按容量" if spec["basis"] == "capacity" else "按需量"
        return f"两部制（{basis} ¥{spec['rate']}/月）+ {summary(spec['energy'])}"
    return _SHAPES.get(shape, shape)


@dataclass(frozen=True, slots=True)
class Place:
    id: int
    label: str


async def places_of(site_id: int) -> tuple[list[Place], list[Place]]:
    """The site's buildings and floors in use, to pick the accounts a plan is assigned to."""
    buildings = await Building.filter(site_id=site_id, retired_at__isnull=True).order_by("name")
    floors = (
        await Floor.filter(building__site_id=site_id, retired_at__isnull=True)
        .order_by("building__name", "sort_order", "name")
        .values_list("id", "building__name", "name")
    )
    return [Place(b.id, b.name) for b in buildings], [Place(i, f"{b} {f}") for i, b, f in floors]


async def assign_where(
    site_ids: Sequence[int],
    plan_id: int,
    *,
    building_id: int | None = None,
    floor_id: int | None = None,
    search: str = "",
    actor: str,
) -> int:
    """Put the open accounts of the plan's site (in a building, on a floor, matching a tenant
    name, account number or room) on the plan for its kind; returns how many."""
    plan = await TariffPlan.get_or_none(id=plan_id, site_id__in=list(site_ids))
    if plan is None:
        raise NotFound("价格方案不存在", plan_id=plan_id)
    site_id: int = plan.site_id  # type: ignore[attr-defined]
    query = Account.filter(site_id=site_id, status=AccountStatus.OPEN)
    if building_id is not None:
        query = query.filter(room__floor__building_id=building_id)
    if floor_id is not None:
        query = query.filter(room__floor_id=floor_id)
    if search:
        query = query.filter(
            Q(number__icontains=search) | Q(tenant_name__icontains=search)
            | Q(room__name__icontains=search)
        )  # fmt: skip
    ids = await query.values_list("id", flat=True)
    if not ids:
        return 0
    async with in_transaction():
        await TariffAssignment.filter(account_id__in=ids, kind=plan.kind).delete()
        await TariffAssignment.bulk_create(
            [TariffAssignment(account_id=i, kind=plan.kind, plan_id=plan_id) for i in ids]
        )
        await record(
            actor, "分配价格方案", target_type="tariff_plan", target_id=plan_id, site_id=site_id,
            detail={"accounts": len(ids), "building_id": building_id, "floor_id": floor_id,
                    "search": search},
        )  # fmt: skip
    return len(ids)
