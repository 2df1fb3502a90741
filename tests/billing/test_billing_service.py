"""Usage billing service on a real database: a month of 15-minute readings bills exactly the
tariff applied to the month's total; repeats, refusals and arrears."""

from __future__ import annotations

import asyncio
import gc
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest

from server.accounts.models import Account, AccountStatus
from server.billing import service
from server.billing.models import UsageChargeRow
from server.billing.service import BillStatus, ReadingToBill, bill_readings
from server.billing.usage import NegativeDelta
from server.ledger import Channel, balance_of, recharge
from server.ledger.check import check_ledger
from server.ledger.models import LedgerTransaction
from server.metering.models import Meter, MeterBilling, MeterKind
from server.metering.reading import Reading
from server.tariffs import LOCAL_TZ, Band, UsageSlice, band_at, price_usage
from server.tariffs.models import TariffKind
from server.tariffs.service import TariffNotAssigned, assign, create_plan, tariff_for
from tests.factories import create_account, create_meter

# A Guangdong-style commercial TOU plan: 峰 10–12 & 14–19, 谷 0–8, 平 otherwise; summer 尖 11–12.
TOU_SPEC: dict[str, Any] = {
    "kind": "tou",
    "prices": {"1": "1.35642", "2": "1.12036", "3": "0.66835", "4": "0.27913"},
    "seasons": [
        {
            "name": "夏季",
            "months": [7, 8, 9],
            "workday": [
                {"start": "00:00", "end": "08:00", "band": 4},
                {"start": "08:00", "end": "10:00", "band": 3},
                {"start": "10:00", "end": "11:00", "band": 2},
                {"start": "11:00", "end": "12:00", "band": 1},
                {"start": "12:00", "end": "14:00", "band": 3},
                {"start": "14:00", "end": "19:00", "band": 2},
                {"start": "19:00", "end": "24:00", "band": 3},
            ],
        },
        {
            "name": "非夏季",
            "months": [1, 2, 3, 4, 5, 6, 10, 11, 12],
            "workday": [
                {"start": "00:00", "end": "08:00", "band": 4},
                {"start": "08:00", "end": "10:00", "band": 3},
                {"start": "10:00", "end": "12:00", "band": 2},
                {"start": "12:00", "end": "14:00", "band": 3},
                {"start": "14:00", "end": "19:00", "band": 2},
                {"start": "19:00", "end": "24:00", "band": 3},
            ],
        },
    ],
}
FLAT_SPEC = {"kind": "flat", "unit": "kWh", "price": "0.6583"}
START = datetime(2026, 7, 1, tzinfo=LOCAL_TZ)


async def _shop(spec: dict[str, Any] = TOU_SPEC, **meter_kw: Any) -> tuple[Account, Meter]:
    account = await create_account()
    plan = await create_plan(
        account.site_id, f"商业电价{account.id}", TariffKind.ELECTRICITY, spec,
        effective_from=datetime(2026, 1, 1, tzinfo=LOCAL_TZ), actor="staff:1",
    )  # fmt: skip
    await assign(account.id, plan.id)
    return account, await create_meter(account, **meter_kw)


def _month_of_readings(meter_id: int, plan: Any) -> list[ReadingToBill]:
    """31 days × 96 quarter-hours; each quarter's use lands on the band register of its time."""
    bands = {b: Decimal(0) for b in (1, 2, 3, 4)}
    total = Decimal("1234.56")
    prev = Reading(START, total, dict(bands))
    items = []
    for i in range(31 * 96):
        at = START + timedelta(minutes=15 * (i + 1))
        kwh = Decimal("0.37") + Decimal(i % 7) * Decimal("0.013")
        band = int(band_at(plan, at - timedelta(minutes=15)))
        bands[band] += kwh
        total += kwh
        curr = Reading(at, total, dict(bands))
        items.append(ReadingToBill(meter_id, prev, curr))
        prev = curr
    return items


async def _wallet(account: Account) -> int:
    await account.refresh_from_db()
    return account.balance_fen


async def test_tou_month_from_15_minute_readings_bills_the_tariff_on_the_total(db: None) -> None:
    account, meter = await _shop()
    tariff = await tariff_for(account.id, TariffKind.ELECTRICITY)
    items = _month_of_readings(meter.id, tariff.plan_at(START))
    billed = 0
    for day in range(31):  # the collector bills a batch per round; here a day per batch
        outcomes = await bill_readings(items[day * 96 : (day + 1) * 96])
        assert {o.status for o in outcomes} == {BillStatus.BILLED}
        billed += sum(o.amount_fen for o in outcomes)

    first, last = items[0].prev, items[-1].curr
    month = UsageSlice(
        first.taken_at, last.taken_at, last.total - first.total,
        {Band(b): last.bands[b] - first.bands[b] for b in last.bands},
    )  # fmt: skip
    exact_fen = price_usage(tariff, month).total * 100
    assert billed == int(exact_fen.to_integral_value(rounding=ROUND_FLOOR))
    assert await _wallet(account) == -billed  # no recharge: usage already consumed is in arrears
    assert await balance_of("revenue:electricity") == billed
    state = await Account.get(id=account.id)
    assert Decimal(state.electricity_carry_fen) == exact_fen - billed  # the sub-fen rest, carried
    assert await UsageChargeRow.filter(meter_id=meter.id).count() == 31 * 96
    assert await check_ledger() == []


async def test_a_repeated_reading_does_not_bill_twice(db: None) -> None:
    account, meter = await _shop(FLAT_SPEC)
    await recharge(account.id, Channel.WECHAT, 10_000, key="wx:1", actor="tenant:o")
    t0 = datetime(2026, 5, 1, 8, tzinfo=LOCAL_TZ)
    pair = ReadingToBill(
        meter.id,
        Reading(t0, Decimal("100")),
        Reading(t0 + timedelta(minutes=15), Decimal("112.5")),
    )
    (first,) = await bill_readings([pair])
    assert (first.status, first.amount_fen, first.balance_after_fen) == (
        BillStatus.BILLED,
        822,
        9_178,
    )
    again = await bill_readings([pair, pair])  # replayed, and twice in one batch
    assert [o.status for o in again] == [BillStatus.DUPLICATE, BillStatus.DUPLICATE]
    assert {(o.transaction_id, o.amount_fen) for o in again} == {(first.transaction_id, 822)}
    assert await _wallet(account) == 9_178
    assert await LedgerTransaction.filter(kind="charge").count() == 1
    # 12.5 kWh × 0.6583 = 8.22875 yuan: 822 fen now, 0.875 fen carried to the next reading.
    state = await Account.get(id=account.id)
    assert Decimal(state.electricity_carry_fen) == Decimal("0.875")


async def test_unbillable_readings_are_refused_one_by_one(db: None) -> None:
    account, meter = await _shop(FLAT_SPEC)
    bare = await create_meter(await create_account())  # account without a tariff
    own = await create_meter(account, billing=MeterBilling.METER)
    closed_account, closed_meter = await _shop(FLAT_SPEC)
    await Account.filter(id=closed_account.id).update(status=AccountStatus.CLOSED)
    t0 = datetime(2026, 5, 1, tzinfo=LOCAL_TZ)
    t1 = t0 + timedelta(minutes=15)

    def pair(meter_id: int, a: str = "10", b: str = "11", later: int = 0) -> ReadingToBill:
        step = timedelta(minutes=later)
        return ReadingToBill(
            meter_id, Reading(t0 + step, Decimal(a)), Reading(t1 + step, Decimal(b))
        )

    outcomes = await bill_readings(
        [pair(meter.id, "10", "9"), pair(bare.id), pair(own.id), pair(closed_meter.id),
         pair(999_999), pair(meter.id, "20", "21", later=15)]
    )  # fmt: skip
    assert [o.status for o in outcomes] == [
        BillStatus.REFUSED, BillStatus.REFUSED, BillStatus.NOT_PLATFORM, BillStatus.REFUSED,
        BillStatus.REFUSED, BillStatus.BILLED,
    ]  # fmt: skip
    assert isinstance(outcomes[0].error, NegativeDelta)
    assert isinstance(outcomes[1].error, TariffNotAssigned)
    assert outcomes[3].error is not None and outcomes[3].error.code == "account_closed"
    assert await UsageChargeRow.all().count() == 1
    assert await check_ledger() == []


async def test_multiplier_and_sub_fen_charges_only_move_the_carry(db: None) -> None:
    account, meter = await _shop({"kind": "flat", "unit": "kWh", "price": "0.001"}, ct_ratio=3)
    t = [datetime(2026, 5, 1, tzinfo=LOCAL_TZ) + timedelta(minutes=15 * i) for i in range(4)]
    regs = [Decimal(x) for x in ("0", "1", "2", "3")]  # 1 register kWh × CT 3 = 3 kWh = 0.3 fen
    items = [
        ReadingToBill(meter.id, Reading(t[i], regs[i]), Reading(t[i + 1], regs[i + 1]))
        for i in range(3)
    ]
    outcomes = await bill_readings(items)
    assert [o.amount_fen for o in outcomes] == [0, 0, 0]
    assert all(o.transaction_id is None for o in outcomes)
    state = await Account.get(id=account.id)
    assert Decimal(state.electricity_carry_fen) == Decimal("0.9")
    assert await _wallet(account) == 0


@pytest.mark.postgres
async def test_concurrent_batches_of_the_same_readings_bill_once(db: None) -> None:
    accounts_meters = [await _shop(FLAT_SPEC) for _ in range(3)]
    t0 = datetime(2026, 5, 1, tzinfo=LOCAL_TZ)
    items = [
        ReadingToBill(
            m.id,
            Reading(t0, Decimal("5")),
            Reading(t0 + timedelta(minutes=15), Decimal("7")),
        )
        for _, m in accounts_meters
    ]
    runs = await asyncio.gather(*(bill_readings(items) for _ in range(6)))
    statuses = [o.status for run in runs for o in run]
    assert statuses.count(BillStatus.BILLED) == 3
    assert statuses.count(BillStatus.DUPLICATE) == 15
    for account, _ in accounts_meters:
        assert await _wallet(account) == -131  # 2 kWh × 0.6583 = 1.3166 yuan
    assert await check_ledger() == []


async def test_each_utility_keeps_its_own_state_on_the_account_row(db: None) -> None:
    account, power = await _shop(FLAT_SPEC)
    water_plan = await create_plan(
        account.site_id, f"水价{account.id}", TariffKind.WATER,
        {"kind": "flat", "unit": "m³", "price": "4.1037"},
        effective_from=datetime(2026, 1, 1, tzinfo=LOCAL_TZ), actor="staff:1",
    )  # fmt: skip
    await assign(account.id, water_plan.id)
    water = await create_meter(account, kind=MeterKind.WATER)
    t = [datetime(2026, 5, 1, 8, tzinfo=LOCAL_TZ) + timedelta(minutes=15 * i) for i in range(3)]

    def pair(meter: Meter, i: int, a: str, b: str) -> ReadingToBill:
        return ReadingToBill(meter.id, Reading(t[i], Decimal(a)), Reading(t[i + 1], Decimal(b)))

    # Both in one batch: 12.5 kWh × 0.6583 = 8.22875 → 822 fen + 0.875 carried;
    # 0.3 m³ × 4.1037 = 1.23111 → 123 fen + 0.111 carried.
    outcomes = await bill_readings([pair(power, 0, "100", "112.5"), pair(water, 0, "5", "5.3")])
    assert [o.amount_fen for o in outcomes] == [822, 123]
    stored = await Account.get(id=account.id)
    carries = (Decimal(stored.electricity_carry_fen), Decimal(stored.water_carry_fen))
    assert carries == (Decimal("0.875"), Decimal("0.111"))
    # Water only: electricity's state stays as it was; water's carry 0.111 + 0.1 m³ × 410.37 fen.
    (only,) = await bill_readings([pair(water, 1, "5.3", "5.4")])
    assert only.amount_fen == 41  # 41.037 + 0.111 = 41.148 fen
    stored = await Account.get(id=account.id)
    carries = (Decimal(stored.electricity_carry_fen), Decimal(stored.water_carry_fen))
    assert carries == (Decimal("0.875"), Decimal("0.148"))
    assert stored.balance_fen == -(822 + 123 + 41)
    assert await check_ledger() == []


async def test_batches_pause_the_cyclic_gc_and_the_last_one_out_restores_it(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Billing makes no cycles, so a batch runs without the cyclic GC; interleaved batches (and
    one that fails) leave it as the first of them found it."""
    _, meter = await _shop(FLAT_SPEC)
    t = [datetime(2026, 5, 1, tzinfo=LOCAL_TZ) + timedelta(minutes=15 * i) for i in range(5)]

    def batch(i: int) -> list[ReadingToBill]:
        return [
            ReadingToBill(meter.id, Reading(t[i], Decimal(i)), Reading(t[i + 1], Decimal(i + 1)))
        ]

    pricing: list[bool] = []
    bill_round = service.bill_round

    def watched(*args: Any, **kw: Any) -> Any:
        pricing.append(gc.isenabled())
        return bill_round(*args, **kw)

    monkeypatch.setattr(service, "bill_round", watched)
    assert gc.isenabled()
    await asyncio.gather(bill_readings(batch(0)), bill_readings(batch(1)))
    assert pricing == [False, False]
    assert gc.isenabled()

    monkeypatch.setattr(service, "bill_round", _raise)
    with pytest.raises(RuntimeError):
        await bill_readings(batch(2))
    assert gc.isenabled()

    monkeypatch.setattr(service, "bill_round", watched)
    gc.disable()  # someone else's choice: a batch leaves it so
    try:
        await bill_readings(batch(3))
        assert not gc.isenabled()
    finally:
        gc.enable()


def _raise(*args: Any, **kw: Any) -> Any:
    raise RuntimeError("pricing failed")
