"""Tariff service: create plans, schedule price changes, assign plans to accounts, and load
the `Tariff` (all versions) that billing prices with.

A version's `spec` is validated by `schemas.to_plan` before it is stored and again when
loaded, so an invalid plan is never priced. Versions are immutable; a price change is a new
version whose `effective_from` is now or later (never in the past: bills already issued were
priced by the old version). Services do not commit: the caller's transaction boundary does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from server.core.errors import NotFound
from server.tariffs.errors import InvalidTariff
from server.tariffs.models import TariffAssignment, TariffKind, TariffPlan, TariffVersion
from server.tariffs.plans import Plan, PlanVersion, Tariff, Unit
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
