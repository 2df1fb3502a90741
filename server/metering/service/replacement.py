"""换表: replace a meter on an account without billing anything twice or losing any use.

`replace_meter` does, in one transaction:

1. locks the old meter (it must be active) and checks the swap comes after its last accepted
   reading;
2. ingests the old meter's final reading like any other (source MANUAL): the use since its
   last reading is billed at the old meter's CT×PT — or, if implausible, held for review;
3. marks the old meter REMOVED (`removed_at` = the swap) and fails its queued commands;
4. creates the new meter (ACTIVE, same account, site and gateway unless given, `replaces` the
   old one) and ingests its first reading as the BASELINE, so its next reading bills from
   there at its own CT×PT;
5. logs `meter.replaced` and returns the final reading's pending bill in `closing_bills`.

Billing that bill and re-evaluating the account's alarms is billing's side of the swap
(`server.billing.pipeline.process_replacement` does all of it in one transaction); left alone,
the final reading waits `pending` for the collector's `bill_pending` sweep like any other.

`ingest.join_replacement` gives the offset that continues the account's cumulative energy
across the swap (returned and kept in the log entry): for later readings `r` of the new
meter, the account's cumulative energy is `offset + r.total × new multiplier`.

Readings the old meter took before the swap still arrive and are stored (a gateway replaying
its buffer); readings stamped after `removed_at` are refused by ingest as `removed_meter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.metering import ingest as rules
from server.metering.models import (
    Meter,
    MeterStatus,
    ReadingSource,
)
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service import commands
from server.metering.service import reading_store as store
from server.metering.service.readings import IncomingReading, PendingBill, ingest, spec_of

# What the caller may say about the new meter; the rest is the old meter's.
NEW_METER_FIELDS = frozenset(
    {"address", "protocol", "model", "unit", "ct_ratio", "pt_ratio", "rated_kw", "kind",
     "gateway_id", "billing", "protected"}
)  # fmt: skip
_INHERITED = ("site_id", "account_id", "room_id", "gateway_id", "kind", "model", "protocol",
              "unit", "rated_kw", "billing", "protected")  # fmt: skip


@dataclass(frozen=True, slots=True)
class MeterReplaced:
    old_meter_id: int
    new_meter_id: int
    closing: rules.Outcome  # what the old meter's final reading was (accept, held…)
    closing_energy: Decimal  # billed use since the old meter's last reading (× old CT×PT)
    offset: Decimal  # account cumulative = offset + new reading × new CT×PT
    account_id: int | None = None  # the account both meters serve
    closing_bills: tuple[PendingBill, ...] = ()  # the final reading's delta, to bill


def _new_meter_row(old: Meter, new_meter: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    unknown = set(new_meter) - NEW_METER_FIELDS
    if unknown:
        raise ValidationFailed("新表参数无效", fields=sorted(unknown))
    if not new_meter.get("address"):
        raise ValidationFailed("新表必须填写表地址")
    row: dict[str, Any] = {k: getattr(old, k) for k in _INHERITED}
    row |= {"ct_ratio": 1, "pt_ratio": 1, **new_meter}
    for ratio in ("ct_ratio", "pt_ratio"):
        if not isinstance(row[ratio], int) or row[ratio] <= 0:
            raise ValidationFailed("互感器倍率必须为正整数", **{ratio: row[ratio]})
    row |= {"status": MeterStatus.ACTIVE, "installed_at": at, "online": True}
    return row


async def replace_meter(
    old_meter_id: int,
    *,
    new_meter: Mapping[str, Any],
    old_final_reading: Decimal,
    new_first_reading: Decimal,
    actor: str,
    at: datetime,
    old_final_bands: Mapping[int, Decimal] | None = None,
    new_first_bands: Mapping[int, Decimal] | None = None,
) -> MeterReplaced:
    """Swap `old_meter_id` for a new meter at `at` (see the module docstring)."""
    async with in_transaction():
        old = await Meter.filter(id=old_meter_id).select_for_update().first()
        if old is None or old.status != MeterStatus.ACTIVE:
            raise NotFound("电表不存在或已拆除", meter_id=old_meter_id)
        row = _new_meter_row(old, new_meter, at)
        last = await StoredReading.filter(meter_id=old.id).order_by("-taken_at").first()
        if last is not None and last.taken_at >= at:
            raise Conflict("换表时间必须晚于旧表最后一次抄表", last_reading_at=last.taken_at)
        final = IncomingReading(
            old.id,
            Reading(at, old_final_reading, dict(old_final_bands or {})),
            ReadingSource.MANUAL,
        )
        closing = await ingest([final], now=at)
        old.status, old.removed_at = MeterStatus.REMOVED, at
        await old.save(update_fields=["status", "removed_at"])
        await commands.fail_queued(old.id, at, "电表已更换")
        new = await Meter.create(**row, replaces_id=old.id)
        first = IncomingReading(
            new.id,
            Reading(at, new_first_reading, dict(new_first_bands or {})),
            ReadingSource.MANUAL,
        )
        await ingest([first], now=at)
        result = _join(old, new, last, final, first)
        await _log(actor, old, new, result, at)
    return replace(result, account_id=old.account_id, closing_bills=tuple(closing.bills))


def _join(
    old: Meter,
    new: Meter,
    last: StoredReading | None,
    final: IncomingReading,
    first: IncomingReading,
) -> MeterReplaced:
    old_final, new_first = final.reading, first.reading
    if last is None:  # never read: the final reading is the old meter's only point
        closing = rules.classify(old_final, None, spec_of(old))
        offset = old_final.total * old.multiplier - new_first.total * new.multiplier
        return MeterReplaced(old.id, new.id, closing.outcome, closing.usage.energy, offset)
    old_last = store.reading_of(last.taken_at, last.total, last.bands)
    joined = rules.join_replacement(
        old_last,
        old_final,
        spec_of(old),
        new_first,
        spec_of(new),
        old_cumulative=old_last.total * old.multiplier,
    )
    return MeterReplaced(
        old.id, new.id, joined.closing.outcome, joined.closing.usage.energy, joined.offset
    )


async def _log(actor: str, old: Meter, new: Meter, result: MeterReplaced, at: datetime) -> None:
    await record(
        actor,
        "meter.replaced",
        target_type="meter",
        target_id=old.id,
        site_id=old.site_id,
        reason=f"换表：{old.address} → {new.address}",
        detail={
            "new_meter_id": new.id,
            "closing": result.closing.value,
            "closing_energy": str(result.closing_energy),
            "offset": str(result.offset),
            "old_multiplier": old.multiplier,
            "new_multiplier": new.multiplier,
        },
        at=at,
    )
