"""The available-balance loader on a real database, and the callers that use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.core.errors import NotFound
from server.ledger.service import Channel, recharge
from server.metering.models import (
    CommandOp,
    CommandStatus,
    MeterBilling,
    MeterCommand,
    MeterStatus,
)
from server.metering.service import on_wallet_credited
from server.metering.service.balance import available_balance, available_balances
from server.runtime import _low_accounts
from tests.factories import create_account, create_meter
from workers.meters.base import MeterKind

pytestmark = pytest.mark.usefixtures("db")
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


async def _fund(account_id: int, fen: int, key: str) -> None:
    await recharge(account_id, Channel.CASH, fen, key=key, actor="staff:1")


async def _command(meter_id: int, fen: int, status: CommandStatus) -> None:
    await MeterCommand.create(
        meter_id=meter_id, op=CommandOp.RECHARGE, params={"amount_fen": fen}, status=status,
        actor="system:payments", next_attempt_at=NOW, expires_at=NOW + timedelta(hours=1),
    )  # fmt: skip


async def test_one_query_per_table_for_a_mixed_park() -> None:
    platform = await create_account()
    await _fund(platform.id, 8650, "p")
    await create_meter(platform)
    a202 = await create_account()  # the demo's A202: wallet 0, ¥570 in the meter
    await create_meter(a202, billing=MeterBilling.METER, money_fen=57000)
    mixed = await create_account()
    await _fund(mixed.id, 10000, "m")
    meter = await create_meter(mixed, billing=MeterBilling.METER, money_fen=2000)
    await create_meter(mixed, kind=MeterKind.WATER)
    removed = {"money_fen": 99999, "status": MeterStatus.REMOVED}
    await create_meter(mixed, billing=MeterBilling.METER, **removed)
    await _command(meter.id, 4000, CommandStatus.QUEUED)
    await _command(meter.id, 7777, CommandStatus.EXPIRED)  # its money is back in the wallet

    got = await available_balances([platform.id, a202.id, mixed.id, 999_999])
    assert set(got) == {platform.id, a202.id, mixed.id}
    assert (got[platform.id].total_fen, got[platform.id].alarm_fen) == (8650, 8650)
    assert (got[a202.id].total_fen, got[a202.id].lowest_fen) == (57000, 57000)
    m = got[mixed.id]
    assert (m.total_fen, m.free_wallet_fen, m.alarm_fen) == (12000, 6000, 6000)
    assert [(u.utility, u.available_fen) for u in m.utilities] == [
        ("electricity", 6000),
        ("water", 6000),
    ]
    assert await _low_accounts([platform.id, a202.id, mixed.id], under_fen=8651) == [
        mixed.id,
        platform.id,
    ]
    with pytest.raises(NotFound):
        await available_balance(999_999)


async def test_a_credit_to_a_mixed_account_levels_meter_and_wallet() -> None:
    account = await create_account()
    meter = await create_meter(account, billing=MeterBilling.METER, money_fen=2000)
    await create_meter(account, kind=MeterKind.WATER)
    await _fund(account.id, 10000, "c1")
    await on_wallet_credited(account.id, reason="微信充值", now=NOW)
    await on_wallet_credited(account.id, reason="微信充值", now=NOW)  # a repeat: nothing more
    (cmd,) = await MeterCommand.filter(meter_id=meter.id, op=CommandOp.RECHARGE)
    assert cmd.params["amount_fen"] == 4000
    b = await available_balance(account.id)
    assert (b.free_wallet_fen, b.of("electricity").available_fen) == (6000, 6000)  # type: ignore[union-attr]


async def test_a_credit_to_a_meter_only_account_goes_to_the_meter() -> None:
    account = await create_account()
    meter = await create_meter(account, billing=MeterBilling.METER, money_fen=0)
    await _fund(account.id, 10000, "c2")
    await on_wallet_credited(account.id, reason="微信充值", now=NOW)
    (cmd,) = await MeterCommand.filter(meter_id=meter.id, op=CommandOp.RECHARGE)
    assert cmd.params["amount_fen"] == 10000
    b = await available_balance(account.id)
    assert (b.total_fen, b.free_wallet_fen, b.alarm_fen) == (10000, 0, 10000)
