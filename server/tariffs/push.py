"""A price change reaches meter-billed meters (表端计费): at a version's effective time, one
meter batch of set-price commands writes its band prices into the meter-billed meters of the
open accounts on the plan.

    push_due(now) -> int                     the scheduler's step (and the admin panel's, for
                                             a change effective now): batches created
    push_version(version_id, now=…) -> int | None
    meter_prices(spec) -> dict[str, str]     the band prices a meter takes, or CannotWrite

A meter-billed meter bills itself with the prices in its band registers (DL/T 645 04050101–
04050104, 尖峰平谷), so it must hold the prices in force: the batch goes through the batch
service (`server.metering.service.batches`: one durable command per meter, at most one in
flight per meter, per-meter results on the 批量操作 page), and `tariff_version.batch_id`
links the version to it.

Only a price change is pushed, not a plan's first version (nobody is on a new plan yet).
A version is pushed once: the batch is created and the version claimed (`batch_id IS NULL`
→ the batch's id) in one transaction, so a second scheduler, a re-run or the admin panel
racing the scheduler creates no second batch. A version with nothing to write is claimed
with `NOTHING` (0): no meter-billed meter on the plan, superseded by a later version before
it was pushed, or prices a meter cannot hold (a tiered plan, the deep-valley band, more than
four decimals) — said in the operation log and on the version's page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from server.accounts.models import AccountStatus
from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
from server.metering.models import BatchAction, Meter, MeterBilling, MeterStatus
from server.metering.service import batches
from server.metering.vocabulary import MeterKind
from server.tariffs.calendar import LOCAL_TZ
from server.tariffs.models import TariffAssignment, TariffKind, TariffPlan, TariffVersion

ACTOR = "system:tariffs"
NOTHING = 0  # tariff_version.batch_id of a version pushed with nothing to write
METER_BANDS = (1, 2, 3, 4)  # the band registers of a meter: 尖 峰 平 谷
MAX_PRICE = Decimal(100)
FIRST = "方案的首个版本"


class CannotWrite(ValueError):
    """The plan's prices cannot be written into a meter's band registers (why, in Chinese)."""


def meter_prices(spec: dict[str, Any]) -> dict[str, str]:
    """The band prices ("1"–"4" → yuan/kWh) a meter-billed meter takes for a stored plan:
    a flat price in every band, a TOU plan's band prices (the meter keeps its own time-slot
    calendar), a two-part plan's energy part (the basic charge is levied by the platform)."""
    shape = spec.get("kind")
    if shape == "two_part":
        return meter_prices(spec["energy"])
    if shape == "flat":
        prices = {band: spec["price"] for band in METER_BANDS}
    elif shape == "tou":
        prices = {int(b): p for b, p in spec["prices"].items()}
        if set(prices) - set(METER_BANDS):
            raise CannotWrite("电表只有尖、峰、平、谷四个费率，无法写入深谷电价")
    else:
        raise CannotWrite("阶梯电价无法写入表内费率，表端计费仪表仍按原价格计费")
    out: dict[str, str] = {}
    for band, text in sorted(prices.items()):
        price = Decimal(str(text))
        if price <= 0 or price > MAX_PRICE or price.as_tuple().exponent < -4:  # type: ignore[operator]
            raise CannotWrite(f"电价 {text} 无法写入电表（须大于 0、不超过 100 元，最多四位小数）")
        out[str(band)] = str(price.quantize(Decimal("0.0001")))
    return out


async def _meters_on(plan: TariffPlan) -> list[int]:
    """The active meter-billed electricity meters of the open accounts on the plan."""
    accounts = await TariffAssignment.filter(
        plan_id=plan.id, kind=TariffKind.ELECTRICITY, account__status=AccountStatus.OPEN
    ).values_list("account_id", flat=True)
    if not accounts:
        return []
    return list(
        await Meter.filter(
            account_id__in=list(accounts), site_id=plan.site_id,  # type: ignore[attr-defined]
            kind=MeterKind.ELECTRICITY, billing=MeterBilling.METER, status=MeterStatus.ACTIVE,
        ).order_by("id").values_list("id", flat=True)
    )  # fmt: skip


class _Taken(Exception):
    """Another run claimed the version first: roll this one's batch back."""


async def push_version(version_id: int, *, now: datetime | None = None) -> int | None:
    """Push one version whose time has come: the id of its batch (a new one, or the one it
    already has), `NOTHING`, or None while it is not yet in force."""
    return (await _push(version_id, now or datetime.now(UTC)))[0]


async def push_due(now: datetime | None = None, *, limit: int = 100) -> int:
    """Push every version in force whose push has not happened; how many batches created."""
    now = now or datetime.now(UTC)
    due = await TariffVersion.filter(batch_id=None, effective_from__lte=now).order_by(
        "effective_from", "id"
    ).limit(limit).values_list("id", flat=True)  # fmt: skip
    created = 0
    for version_id in due:
        batch_id, new = await _push(int(version_id), now)
        created += bool(new and batch_id)
    return created


async def _push(version_id: int, now: datetime) -> tuple[int | None, bool]:
    """(the version's batch id, whether this call set it)."""
    version = await TariffVersion.get(id=version_id).select_related("plan")
    if version.batch_id is not None:
        return version.batch_id, False
    if version.effective_from > now:
        return None, False
    plan: TariffPlan = version.plan
    site_id: int = plan.site_id  # type: ignore[attr-defined]
    reason, meter_ids, params = await _what_to_write(plan, version, now)
    try:
        async with in_transaction():
            batch_id = NOTHING
            if meter_ids:
                try:
                    batch = await batches.create_batch(
                        [site_id], action=BatchAction.PRICES, params=params, actor=ACTOR,
                        selection=batches.Selection(
                            site_id=site_id, kind=MeterKind.ELECTRICITY,
                            meter_ids=tuple(meter_ids), source=f"价格方案「{plan.name}」调价",
                        ),
                        title=f"调价下发：{plan.name}（{_local(version.effective_from)} 生效）",
                        now=now,
                    )  # fmt: skip
                    batch_id = batch.id
                except ValidationFailed as exc:  # the meters went away meanwhile
                    reason = exc.message
            claimed = await TariffVersion.filter(id=version.id, batch_id=None).update(
                batch_id=batch_id
            )
            if not claimed:
                raise _Taken
            if reason == FIRST:
                return NOTHING, True  # a new plan: nothing to say in the operation log
            await record(
                ACTOR, "调价下发表端" if batch_id else "调价无需下发表端",
                target_type="tariff_plan", target_id=plan.id, site_id=site_id,
                detail={"version": version.id, "batch_id": batch_id or None,
                        "meters": len(meter_ids) if batch_id else 0, "reason": reason,
                        "prices": params},
            )  # fmt: skip
    except _Taken:
        await version.refresh_from_db(fields=["batch_id"])
        return version.batch_id, False
    return batch_id, True


async def _what_to_write(
    plan: TariffPlan, version: TariffVersion, now: datetime
) -> tuple[str, list[int], dict[str, str]]:
    """(why nothing is written, or ''; the meters; the batch's price fields)."""
    if plan.kind is not TariffKind.ELECTRICITY:
        return "水价方案不写入表内", [], {}
    if not await TariffVersion.filter(
        plan_id=plan.id, effective_from__lt=version.effective_from
    ).exists():
        return FIRST, [], {}
    if await TariffVersion.filter(
        plan_id=plan.id, effective_from__gt=version.effective_from, effective_from__lte=now
    ).exists():
        return "已被之后生效的版本取代", [], {}
    try:
        prices = meter_prices(version.spec)
    except CannotWrite as exc:
        return str(exc), [], {}
    meter_ids = await _meters_on(plan)
    if not meter_ids:
        return "方案下没有表端计费仪表", [], {}
    return "", meter_ids, {f"price_{b}": p for b, p in prices.items()}


def _local(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class VersionPush:
    """What became of a version's prices in the meter-billed meters, for its page."""

    batch: batches.BatchRow | None
    note: str  # why nothing was written; '' while pending or with a batch


async def version_push(
    site_ids: Sequence[int], plan_id: int, version_id: int, *, now: datetime
) -> VersionPush:
    """A version of a plan of the scope with its batch, or why it has none."""
    version = await TariffVersion.get_or_none(
        id=version_id, plan_id=plan_id, plan__site_id__in=list(site_ids)
    )
    if version is None:
        raise NotFound("价格版本不存在", version_id=version_id)
    if version.batch_id is None:
        pending = "生效时写入表端计费仪表" if version.effective_from > now else "即将下发"
        return VersionPush(None, pending)
    if version.batch_id == NOTHING:
        first = not await TariffVersion.filter(
            plan_id=plan_id, effective_from__lt=version.effective_from
        ).exists()
        try:
            meter_prices(version.spec)
            note = "方案的首个版本，未下发" if first else "生效时方案下没有需要写入的表端计费仪表"
        except CannotWrite as exc:
            note = str(exc)
        return VersionPush(None, note)
    return VersionPush(await batches.batch_view(list(site_ids), version.batch_id), "")
