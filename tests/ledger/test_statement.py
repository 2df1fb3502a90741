"""The wallet statement (server.ledger.statement): entries newest first, usage charges
summed per local day in SQL, in chunks that add up across chunk boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.ledger import statement
from server.ledger.posting import ChargeType, TxKind
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


async def test_money_in_counts_what_moved_the_channels_per_site_and_local_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A clerk's day book: ¥100 online and ¥50 at the counter on 2 Nov (local), ¥20 of it
    refunded to the tenant, a ¥5 refund still held and a failed ¥3 refund (the money never
    left), a ¥30 counter recharge on 3 Nov reversed the same day, charges and adjustments
    (not income) — and another site's money, which is not this site's."""
    from server.ledger import service as ledger

    clock = {"now": _at(2, 0)}  # 2 Nov 00:00 Shanghai: still 1 Nov in UTC
    monkeypatch.setattr("server.ledger.write.now", lambda: clock["now"])
    account, elsewhere = await create_account(), await create_account()

    def at(day: int, hour: int) -> None:
        clock["now"] = _at(day, hour)

    at(1, 23)
    await recharge(account.id, Channel.WECHAT, 7_000, key="m0", actor="tenant:o")  # 1 Nov
    at(2, 0)
    await recharge(account.id, Channel.WECHAT, 10_000, key="m1", actor="tenant:o")
    await recharge(account.id, Channel.CASH, 5_000, key="m2", actor="staff:1")
    await recharge(elsewhere.id, Channel.CASH, 99_900, key="x1", actor="staff:1")
    await ledger.refund_hold(account.id, Channel.WECHAT, 2_000, key="r1", actor="staff:1")
    await ledger.refund_settle("r1", key="r1s", actor="system:pay")
    await ledger.refund_hold(account.id, Channel.WECHAT, 500, key="r2", actor="staff:1")
    await ledger.refund_hold(account.id, Channel.CASH, 300, key="r3", actor="staff:1")
    await ledger.refund_void("r3", key="r3v", actor="system:pay")
    await ledger.charge(account.id, ChargeType.ELECTRICITY, 1_234, key="c1", actor="system:b")
    await adjust(account.id, 777, key="a1", actor="staff:1", reason="补偿")
    at(3, 9)
    await recharge(account.id, Channel.CASH, 3_000, key="m3", actor="staff:1")
    await ledger.reverse("m3", key="m3r", actor="staff:1", reason="收错了")
    at(4, 8)
    await recharge(account.id, Channel.BANK, 4_000, key="m4", actor="staff:1")

    site = (await account.site).id
    days = await statement.money_in_days([site], tz=SHANGHAI, first=date(2026, 11, 2))
    assert days == {date(2026, 11, 2): 13_000, date(2026, 11, 3): 0, date(2026, 11, 4): 4_000}
    both = [site, (await elsewhere.site).id]
    days = await statement.money_in_days(both, tz=SHANGHAI, first=date(2026, 11, 1))
    assert days[date(2026, 11, 1)] == 7_000 and days[date(2026, 11, 2)] == 112_900
    assert await statement.money_in_days([], tz=SHANGHAI, first=date(2026, 11, 1)) == {}
