"""Held readings reviewed: accepting goes through the normal readings path and bills exactly
once (a jump bills its whole difference, a fall restarts the meter and bills nothing), a
double accept bills nothing more, a conflict or an already-billed interval can only be
rejected, and every decision keeps who and when and is in the operation log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.billing.models import UsageChargeRow
from server.billing.pipeline import process_held_acceptance, process_readings
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Paging
from server.ledger import service as ledger
from server.ledger.check import check_ledger
from server.ledger.posting import Channel
from server.metering.models import DailyUsage, HeldReading, Meter, ReviewStatus
from server.metering.models import Reading as StoredReading
from server.metering.reading import Reading
from server.metering.service import daily_usage
from server.metering.service.held import HeldFilter, list_held, reject_held
from server.metering.service.readings import IncomingReading
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.factories import create_account, create_meter

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
H = timedelta(hours=1)
PRICE = Decimal("0.6583")


async def _park() -> Meter:
    account = await create_account()
    plan = await create_plan(
        account.site_id, "电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": str(PRICE)},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:1",
    )  # fmt: skip
    await assign(account.id, plan.id)
    await ledger.recharge(account.id, Channel.CASH, 100_000, key="open-1", actor="staff:1")
    meter = await create_meter(account, rated_kw=Decimal(10), ct_ratio=2, online=True)
    await _read(meter, T0, "1200.00")
    return meter


async def _read(meter: Meter, at: datetime, total: str) -> dict[str, int]:
    report = await process_readings(
        [IncomingReading(meter.id, Reading(at, Decimal(total)))], now=at
    )
    return report.ingest.outcomes


async def _balance(meter: Meter) -> int:
    return (await Account.get(id=meter.account_id)).balance_fen


async def _charged(meter: Meter) -> list[Decimal]:
    rows = await UsageChargeRow.filter(meter_id=meter.id).order_by("reading_at")
    return [Decimal(r.quantity) for r in rows]


async def _days(meter: Meter) -> dict[str, int]:
    rows = await DailyUsage.filter(meter_id=meter.id).order_by("day")
    return {r.day.isoformat(): r.quantity_e4 for r in rows}


async def _held(meter: Meter) -> HeldReading:
    return await HeldReading.get(meter_id=meter.id, status=ReviewStatus.OPEN)


async def test_an_accepted_jump_is_billed_once_and_the_next_reading_goes_on_from_it(
    db: None,
) -> None:
    meter = await _park()
    # 100 register kWh × CT 2 = 200 kWh in an hour on a 10 kW meter: held as implausible.
    assert await _read(meter, T0 + H, "1300.00") == {"implausible": 1}
    held = await _held(meter)
    page = await list_held([meter.site_id], Paging(), HeldFilter())  # type: ignore[attr-defined]
    assert [(r.reason_label, r.effect) for r in page.items] == [("异常跳变", "按差值 200 计费")]
    before = await _balance(meter)

    done = await process_held_acceptance(
        [meter.site_id],
        held.id,
        actor="staff:9",
        now=T0 + 2 * H,  # type: ignore[attr-defined]
    )
    assert (done.outcome, done.energy, done.already) == ("accept", Decimal(200), False)
    assert await _charged(meter) == [Decimal(200)]
    assert await _balance(meter) == before - 13_166  # 200 kWh × 0.6583 = 131.66 元
    again = await process_held_acceptance(
        [meter.site_id],
        held.id,
        actor="staff:9",
        now=T0 + 3 * H,  # type: ignore[attr-defined]
    )
    assert again.already and again.bills == ()
    assert await _balance(meter) == before - 13_166
    await held.refresh_from_db()
    assert (held.status, held.decided_by, held.decided_at) == (
        ReviewStatus.ACCEPTED,
        "staff:9",
        T0 + 2 * H,
    )
    log = await OperationLog.filter(action="reading.accepted")
    assert [(e.actor, e.target_id, e.detail["energy"]) for e in log] == [
        ("staff:9", str(meter.id), "200.0000")
    ]

    # The next reading bills from the accepted one: 0.5 × 2 = 1 kWh, not held.
    assert await _read(meter, T0 + 4 * H, "1300.50") == {"accept": 1}
    assert await _charged(meter) == [Decimal(200), Decimal(1)]
    assert sum((await _days(meter)).values()) == 201 * 10_000
    assert await check_ledger() == []


async def test_an_accepted_reset_restarts_the_meter_and_bills_nothing(db: None) -> None:
    meter = await _park()
    await _read(meter, T0 + H, "1201.00")  # 2 kWh, billed
    assert await _read(meter, T0 + 2 * H, "3.00") == {"reset": 1}
    assert await _read(meter, T0 + 3 * H, "3.50") == {"reset": 1}  # still far below 1201
    first, _ = await HeldReading.filter(meter_id=meter.id).order_by("taken_at")
    before = await _balance(meter)

    done = await process_held_acceptance(
        [meter.site_id],
        first.id,
        actor="staff:9",
        now=T0 + 4 * H,  # type: ignore[attr-defined]
    )
    assert (done.outcome, done.energy, done.bills) == ("restart", Decimal(0), ())
    assert await _balance(meter) == before
    stored = await StoredReading.get(meter_id=meter.id, taken_at=T0 + 2 * H)
    assert (stored.outcome, stored.billing) == ("restart", "none")

    # The later held reading now follows the restart: accepting it bills 0.5 × 2 = 1 kWh.
    page = await list_held([meter.site_id], Paging(), HeldFilter())  # type: ignore[attr-defined]
    assert [r.effect for r in page.items] == ["按差值 1 计费"]
    second = page.items[0]
    done = await process_held_acceptance(
        [meter.site_id],
        second.id,
        actor="staff:9",
        now=T0 + 4 * H,  # type: ignore[attr-defined]
    )
    assert (done.outcome, done.energy) == ("accept", Decimal(1))
    assert await _read(meter, T0 + 5 * H, "4.00") == {"accept": 1}
    assert await _charged(meter) == [Decimal(2), Decimal(1), Decimal(1)]
    assert await _balance(meter) == before - 132  # 2 × 1 kWh × 0.6583, with the fen carried
    days = await _days(meter)
    assert sum(days.values()) == 4 * 10_000 and min(days.values()) >= 0
    await daily_usage.backfill()  # rebuilding from the readings counts nothing across it
    assert await _days(meter) == days
    assert await check_ledger() == []


async def test_a_conflict_or_an_already_billed_interval_can_only_be_rejected(db: None) -> None:
    meter = await _park()
    assert await _read(meter, T0, "1200.10") == {"conflict": 1}
    assert await _read(meter, T0 + H, "1300.00") == {"implausible": 1}
    assert await _read(meter, T0 + 2 * H, "1210.00") == {"accept": 1}  # plausible vs 1200
    conflict, jump = await HeldReading.filter(meter_id=meter.id).order_by("taken_at")
    site = [meter.site_id]  # type: ignore[attr-defined]
    page = await list_held(site, Paging(), HeldFilter())
    assert {r.id: r.effect for r in page.items} == {conflict.id: "", jump.id: ""}
    with pytest.raises(Conflict, match="冲突读数只能驳回"):
        await process_held_acceptance(site, conflict.id, actor="staff:9", now=T0 + 3 * H)
    with pytest.raises(Conflict, match="该区间已计费"):
        await process_held_acceptance(site, jump.id, actor="staff:9", now=T0 + 3 * H)
    with pytest.raises(ValidationFailed):
        await reject_held(site, jump.id, actor="staff:9", reason=" ", now=T0 + 3 * H)
    assert await reject_held(site, jump.id, actor="staff:9", reason="采集器误读", now=T0 + 3 * H)
    assert not await reject_held(site, jump.id, actor="staff:8", reason="再驳回", now=T0 + 4 * H)
    await jump.refresh_from_db()
    assert (jump.status, jump.decided_by, jump.decision) == (
        ReviewStatus.REJECTED,
        "staff:9",
        "采集器误读",
    )
    with pytest.raises(Conflict, match="已被驳回"):
        await process_held_acceptance(site, jump.id, actor="staff:9", now=T0 + 4 * H)
    log = await OperationLog.filter(action="reading.rejected")
    assert [(e.actor, e.reason) for e in log] == [("staff:9", "采集器误读")]
    assert await _charged(meter) == [Decimal(20)]
    rejected = await list_held(site, Paging(), HeldFilter(status="rejected", q=meter.address))
    assert [r.status_label for r in rejected.items] == ["已驳回"]


async def test_another_sites_held_reading_is_not_found(db: None) -> None:
    meter = await _park()
    await _read(meter, T0 + H, "1300.00")
    held = await _held(meter)
    other = await create_account()
    with pytest.raises(NotFound):
        await process_held_acceptance([other.site_id], held.id, actor="staff:9", now=T0 + 2 * H)
    with pytest.raises(NotFound):
        await reject_held([other.site_id], held.id, actor="staff:9", reason="x", now=T0 + 2 * H)
    assert (await list_held([other.site_id], Paging(), HeldFilter())).total == 0
    await held.refresh_from_db()
    assert held.status == ReviewStatus.OPEN


@pytest.mark.postgres
async def test_two_accepts_at_once_bill_once(db: None) -> None:
    meter = await _park()
    await _read(meter, T0 + H, "1300.00")
    held = await _held(meter)
    before = await _balance(meter)
    site = [meter.site_id]  # type: ignore[attr-defined]
    results = await asyncio.gather(
        *(process_held_acceptance(site, held.id, actor="staff:9", now=T0 + 2 * H) for _ in "ab")
    )
    assert sorted(r.already for r in results) == [False, True]
    assert await _balance(meter) == before - 13_166
    assert await _charged(meter) == [Decimal(200)]
    assert await check_ledger() == []
