"""Daily reconciliation of meter-billed meters (表端计费): the meter's money register and
purchase count against what the platform confirmed.

Per meter and day one row per finding (unique (meter, day, kind), so a re-run of the same
day is a no-op):

    match           count equal and no money appeared from nowhere
    count_mismatch  the meter's purchase count differs from the platform's confirmed count
                    (a recharge outside the platform, or one we sent and never confirmed)
    money_mismatch  the meter holds more money than the platform can explain (its last
                    confirmed register plus recharges confirmed since): money nobody paid us
    open_recharge   a recharge command is still open, or expired (its money is still in
                    the wallet, or its outcome on the meter is unknown)
    unreadable      the meter did not answer

The meter's use since the last confirmed register only lowers its money, so a *lower* value
is expected and not reported; a higher one always is.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from server.audit.service import record
from server.metering.models import (
    CommandOp,
    CommandStatus,
    Meter,
    MeterCommand,
    ReconciliationItem,
)
from server.metering.vocabulary import MoneyRegister

ACTOR = "system:reconcile"


class Difference(StrEnum):
    MATCH = "match"
    COUNT_MISMATCH = "count_mismatch"
    MONEY_MISMATCH = "money_mismatch"
    OPEN_RECHARGE = "open_recharge"
    UNREADABLE = "unreadable"


async def _confirmed_since(meter: Meter) -> int:
    rows = await MeterCommand.filter(
        meter_id=meter.id, op=CommandOp.RECHARGE, status=CommandStatus.ACKED
    ).values_list("params", "finished_at")
    since = meter.money_read_at
    return sum(
        int(p["amount_fen"]) for p, at in rows if since is None or (at is not None and at > since)
    )


async def reconcile_meter(
    meter: Meter, money: MoneyRegister | None, *, day: date, now: datetime, error: str = ""
) -> list[ReconciliationItem]:
    """Compare one meter (its register just read, or None when unreachable) and store rows."""
    found: list[tuple[Difference, dict[str, object]]] = []
    if money is None:
        found.append((Difference.UNREADABLE, {"detail": f"读表失败: {error}"[:300]}))
    else:
        if money.purchase_count != meter.purchase_count:
            found.append(
                (
                    Difference.COUNT_MISMATCH,
                    {"detail": "表内购电次数与平台确认次数不一致"},
                )
            )
        if meter.money_fen is not None:
            ceiling = meter.money_fen + await _confirmed_since(meter)
            if money.remaining_fen > ceiling:
                found.append(
                    (
                        Difference.MONEY_MISMATCH,
                        {"detail": f"表内余额高于平台可解释的 {ceiling} 分", "platform": ceiling},
                    )
                )
    open_cmds = await MeterCommand.filter(
        meter_id=meter.id,
        op=CommandOp.RECHARGE,
        status__in=[CommandStatus.QUEUED, CommandStatus.SENT, CommandStatus.EXPIRED],
    ).count()
    if open_cmds:
        found.append((Difference.OPEN_RECHARGE, {"detail": f"{open_cmds} 条充值命令未确认"}))
    if not found:
        found.append((Difference.MATCH, {"detail": "一致"}))
    rows = []
    for kind, info in found:
        row, created = await ReconciliationItem.get_or_create(
            meter_id=meter.id,
            day=day,
            kind=kind.value,
            defaults={
                "meter_count": money.purchase_count if money else None,
                "platform_count": meter.purchase_count,
                "meter_fen": money.remaining_fen if money else None,
                "platform_fen": info.get("platform", meter.money_fen),
                "detail": str(info["detail"]),
            },
        )
        rows.append(row)
        if created and kind is not Difference.MATCH:
            await record(
                ACTOR,
                f"reconcile.{kind.value}",
                target_type="meter",
                target_id=meter.id,
                site_id=meter.site_id,
                reason=row.detail,
                detail={"day": day.isoformat()},
                at=now,
            )
    return rows
