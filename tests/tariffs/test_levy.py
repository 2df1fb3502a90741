"""The two-part plan's basic charge, levied once per account and month through the ledger:
by transformer kVA or by the month's maximum demand, at the rate in force at the month's end;
a re-run (or a run racing it) charges nothing twice; an account without its kVA or demand is
skipped and reported, then charged by the next run once staff record it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.core.errors import Conflict, NotFound, ValidationFailed
from server.ledger.models import LedgerTransaction
from server.ledger.posting import wallet
from server.ledger.service import balance_of
from server.tariffs.levy import enter_demand, levy_capacity, set_capacity
from server.tariffs.models import CapacityLevy, TariffKind
from server.tariffs.service import assign, create_plan, schedule_change
from tests.conftest import TEST_DB
from tests.factories import create_account, create_organisation, create_site

JAN = datetime(2026, 1, 1, tzinfo=UTC)
AFTER_NOVEMBER = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 December in Shanghai
FLAT = {"kind": "flat", "price": "0.65"}


async def a_park() -> dict[str, int]:
    org = await create_organisation(name="两部制物业")
    site = await create_site(org, name="工业园")
    by_kva = await create_plan(
        site.id, "大工业按容量", TariffKind.ELECTRICITY,
        {"kind": "two_part", "basis": "capacity", "rate": "32", "energy": FLAT},
        effective_from=JAN, actor="staff:1",
    )  # fmt: skip
    by_kw = await create_plan(
        site.id, "大工业按需量", TariffKind.ELECTRICITY,
        {"kind": "two_part", "basis": "demand", "rate": "42.5", "energy": FLAT},
        effective_from=JAN, actor="staff:1",
    )  # fmt: skip
    flat = await create_plan(
        site.id, "商业单一价", TariffKind.ELECTRICITY, FLAT, effective_from=JAN, actor="staff:1"
    )
    ids = {"site": site.id, "by_kva": by_kva.id, "by_kw": by_kw.id}
    for name, plan in (("kva", by_kva), ("kw", by_kw), ("kw_missing", by_kw), ("flat", flat)):
        account = await create_account(site=site, number=name, tenant_name=f"{name}工厂")
        await assign(account.id, plan.id)
        ids[name] = account.id
    await set_capacity([site.id], ids["kva"], "315", actor="staff:1")
    await enter_demand([site.id], ids["kw"], "2026-11", "86.4", actor="staff:1")
    return ids


async def test_levied_once_per_account_and_month(db: None) -> None:
    ids = await a_park()
    # A rate change in the middle of November: the month is levied at the rate at its end.
    await schedule_change(
        ids["by_kva"], {"kind": "two_part", "basis": "capacity", "rate": "30", "energy": FLAT},
        effective_from=datetime(2026, 11, 15, tzinfo=UTC), now=datetime(2026, 11, 1, tzinfo=UTC),
        actor="staff:1",
    )  # fmt: skip
    with pytest.raises(ValidationFailed):  # November has not ended
        await levy_capacity("2026-11", now=datetime(2026, 11, 30, 12, tzinfo=UTC))
    first = await levy_capacity("2026-11", now=AFTER_NOVEMBER)
    # 315 kVA × ¥30 = ¥9,450.00; 86.4 kW × ¥42.5 = ¥3,672.00.
    assert (first.charged, first.charged_fen, first.already) == (2, 945_000 + 367_200, 0)
    assert [(s.number, s.reason) for s in first.skipped] == [
        ("kw_missing", "未录入2026-11的最大需量")
    ]
    assert await balance_of(wallet(ids["kva"])) == -945_000
    assert await balance_of(wallet(ids["kw"])) == -367_200
    assert await balance_of(wallet(ids["flat"])) == 0

    again = await levy_capacity("2026-11", now=AFTER_NOVEMBER)
    assert (again.charged, again.charged_fen, again.already) == (0, 0, 2)
    with pytest.raises(Conflict):  # what was levied on stays as it was
        await enter_demand([ids["site"]], ids["kw"], "2026-11", "99", actor="staff:1")
    await enter_demand([ids["site"]], ids["kw_missing"], "2026-11", "10.125", actor="staff:1")
    late = await levy_capacity("2026-11", now=AFTER_NOVEMBER)
    assert (late.charged, late.charged_fen, late.already) == (1, 43_031, 2)  # 430.3125 → ¥430.31
    assert await LedgerTransaction.filter(key__startswith="levy:").count() == 3
    assert await CapacityLevy.filter(month="2026-11").count() == 3
    levy = await CapacityLevy.get(account_id=ids["kva"])
    assert (levy.quantity, levy.rate, levy.amount_fen) == (Decimal(315), Decimal(30), 945_000)


async def test_scoped_records_and_organisation_filter(db: None) -> None:
    ids = await a_park()
    other = await create_site(await create_organisation(name="别家"), name="别园")
    with pytest.raises(NotFound):
        await set_capacity([other.id], ids["kva"], "100", actor="staff:9")
    with pytest.raises(ValidationFailed):
        await set_capacity([ids["site"]], ids["kva"], "-5", actor="staff:1")
    with pytest.raises(ValidationFailed):
        await enter_demand([ids["site"]], ids["kw"], "2026-13", "5", actor="staff:1")
    nobody = await levy_capacity("2026-11", organisation_id=-1, now=AFTER_NOVEMBER)
    assert (nobody.charged, nobody.already, nobody.skipped) == (0, 0, [])


@pytest.mark.skipif(TEST_DB == "sqlite", reason="one SQLite connection runs them in turn")
async def test_two_runs_at_once_charge_once(db: None) -> None:
    ids = await a_park()
    reports = await asyncio.gather(*(levy_capacity("2026-11", now=AFTER_NOVEMBER) for _ in "ab"))
    assert sum(r.charged for r in reports) == 2
    assert await balance_of(wallet(ids["kva"])) == -1_008_000  # 315 kVA × ¥32, once
    assert await LedgerTransaction.filter(key__startswith="levy:").count() == 2
