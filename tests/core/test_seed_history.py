"""The demo's back-dated month (`server.seed.seed_history`): every platform-billed meter has a
charge and a daily-usage row for each of the 30 days before today, every paying account
recharges weekly exactly what it used (its balance unchanged), and the books still check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.core.settings import Settings
from server.finance.service.income import Grain, income
from server.ledger import service as ledger
from server.ledger.check import check_ledger
from server.metering.models import DailyUsage, MeterBilling
from server.metering.vocabulary import MeterKind
from server.seed import opening_fen, seed_history
from tests.factories import create_account, create_meter, create_site


async def test_a_month_of_use_and_payments_that_leaves_every_balance_as_it_was(
    db: None, settings: Settings
) -> None:
    site = await create_site()
    accounts = [await create_account(site=site) for _ in range(3)]
    meters = [
        await create_meter(accounts[0]),
        await create_meter(accounts[0], kind=MeterKind.WATER, protocol="cjt188"),
        await create_meter(accounts[1]),
        await create_meter(accounts[2], billing=MeterBilling.METER),  # the meter bills itself
    ]
    now, tz = datetime.now(UTC), settings.tz
    posted = await seed_history(site.id, now=now, tz=tz)
    paying = [m for m in meters[:3] if opening_fen(m.account_id) > 0]  # type: ignore[attr-defined]
    assert await DailyUsage.filter(meter_id__in=[m.id for m in paying]).count() == 30 * len(paying)
    assert not await DailyUsage.exists(meter_id=meters[3].id)
    assert posted > 30 * len(paying)
    for account in accounts:
        assert await ledger.balance_of(f"wallet:{account.id}") == 0  # recharged what it used
    assert await check_ledger() == []
    today = now.astimezone(tz).date()
    month = await income([site.id], today - timedelta(days=30), today - timedelta(days=1),
                         Grain.DAY, tz)  # fmt: skip
    assert all(p.revenue_fen > 0 for p in month.periods)
    assert month.money_in_fen == month.revenue_fen  # every fen used was paid for
    assert set(month.items) == {"electricity", "water"} or set(month.items) == {"electricity"}
