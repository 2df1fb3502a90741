"""The wallet statement (server.ledger.statement): entries newest first, usage charges
summed per local day in SQL, in chunks that add up across chunk boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.ledger import statement
from server.ledger.posting import TxKind
from server.ledger.service import Channel, adjust, recharge
from tests.factories import create_account
from tests.ledger.backdated import backdated_charges

pytestmark = pytest.mark.usefixtures("db")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


async def test_usage_charges_are_summed_per_local_day_across_chunks() -> None:
    account = await create_account()
    await recharge(account.id, Channel.CASH, 100_000, key="s1", actor="staff:1")
    # local days: 1 Nov 23:00 Shanghai is 15:00 UTC, 2 Nov 00:00 is still 1 Nov in UTC
    charges = [(_at(1, 23), 10), (_at(2, 0), 20), (_at(2, 7), 30), (_at(3, 12), 40),
               (_at(3, 13), 50), (_at(5, 9), 60)]  # fmt: skip
    ids = await backdated_charges(account.id, charges)
    for chunk in (2, 3, 2000):  # small chunks cut days in two: the sums still add up
        days = await statement.usage_days(account.id, tz=SHANGHAI, limit=10, chunk=chunk)
        assert [(d.day, d.amount_fen, d.count, d.last_id) for d in days] == [
            (date(2026, 11, 5), -60, 1, ids[5]),
            (date(2026, 11, 3), -90, 2, ids[4]),
            (date(2026, 11, 2), -50, 2, ids[2]),
            (date(2026, 11, 1), -10, 1, ids[0]),
        ], chunk
    older = await statement.usage_days(account.id, tz=SHANGHAI, before_day=date(2026, 11, 3),
                                       limit=1)  # fmt: skip
    assert [(d.day, d.amount_fen) for d in older] == [(date(2026, 11, 2), -50)]
    assert await statement.usage_days(account.id, tz=SHANGHAI, before_id=ids[0]) == []


async def test_entries_leave_usage_charges_out() -> None:
    account = await create_account()
    first = await recharge(account.id, Channel.WECHAT, 5_000, key="s2", actor="tenant:o")
    await backdated_charges(account.id, [(datetime.now(UTC) - timedelta(hours=1), 70)])
    await adjust(account.id, -300, key="s3", actor="staff:1", reason="表计误差")
    listed = await statement.entries(account.id)
    assert [(e.kind, e.amount_fen, e.memo) for e in listed] == [
        (TxKind.ADJUSTMENT, -300, "表计误差"), (TxKind.RECHARGE, 5_000, "充值"),
    ]  # fmt: skip
    assert listed[1].channel == "wechat"
    only = await statement.entries(account.id, kinds=[TxKind.RECHARGE], limit=5)
    assert [e.amount_fen for e in only] == [5_000]
    assert await statement.entries(account.id, before_id=listed[1].id) == []
    assert first.transaction_id == listed[1].id
