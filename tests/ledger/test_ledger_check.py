"""`ledger check` finds nothing after random concurrent money traffic (hypothesis, on
PostgreSQL) and names the account whose stored balance was tampered with."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tortoise import connections

from server.accounts.models import Account
from server.ledger import (
    Channel,
    ChargeType,
    LedgerError,
    adjust,
    charge,
    recharge,
    refund_hold,
    refund_settle,
    refund_void,
    reverse,
)
from server.ledger.check import check_ledger, run_check
from tests.factories import create_account

KINDS = ["recharge", "charge", "usage", "adjust", "hold", "settle", "void", "reverse", "replay"]


@dataclass(frozen=True)
class Op:
    kind: str
    account: int  # index into the example's accounts
    amount: int
    ref: int  # which earlier key a settle/void/reverse/replay points at


ops_strategy = st.lists(
    st.builds(
        Op,
        kind=st.sampled_from(KINDS),
        account=st.integers(0, 2),
        amount=st.integers(1, 5_000),
        ref=st.integers(0, 40),
    ),
    min_size=1,
    max_size=40,
)


async def _apply(op: Op, i: int, prefix: str, accounts: list[Account]) -> None:
    account_id = accounts[op.account].id
    key = f"{prefix}:{i}"
    ref = f"{prefix}:{op.ref}"
    actor = "test:hypothesis"
    if op.kind == "recharge":
        await recharge(account_id, Channel.WECHAT, op.amount, key=key, actor=actor)
    elif op.kind == "charge":
        await charge(account_id, ChargeType.RENT, op.amount, key=key, actor=actor)
    elif op.kind == "usage":
        await charge(
            account_id, ChargeType.ELECTRICITY, op.amount, key=key, actor=actor,
            allow_arrears=True,
        )  # fmt: skip
    elif op.kind == "adjust":
        await adjust(account_id, op.amount - 2_500 or 1, key=key, actor=actor, reason="校正")
    elif op.kind == "hold":
        await refund_hold(account_id, Channel.ALIPAY, op.amount, key=key, actor=actor)
    elif op.kind == "settle":
        await refund_settle(ref, key=f"{ref}:resolve", actor=actor)
    elif op.kind == "void":
        await refund_void(ref, key=f"{ref}:resolve", actor=actor)
    elif op.kind == "reverse":
        await reverse(ref, key=f"{ref}:reverse", actor=actor, reason="冲正")
    else:  # replay an earlier recharge key: same effect or a typed conflict, never a second
        await recharge(account_id, Channel.WECHAT, op.amount, key=ref, actor=actor)


async def _lane(ops: list[tuple[int, Op]], prefix: str, accounts: list[Account]) -> None:
    for i, op in ops:
        try:
            await _apply(op, i, prefix, accounts)
        except LedgerError:
            pass  # refused cleanly (floor, unknown ref, already resolved…): nothing written


@pytest.mark.postgres
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=ops_strategy, limits=st.lists(st.sampled_from([0, 0, 1_000]), min_size=3, max_size=3))
async def test_random_concurrent_traffic_keeps_every_invariant(
    db: None, ops: list[Op], limits: list[int]
) -> None:
    prefix = uuid.uuid4().hex[:12]
    accounts = [await create_account(credit_limit_fen=limit) for limit in limits]
    lanes = 4
    numbered = list(enumerate(ops))
    await asyncio.gather(*(_lane(numbered[k::lanes], prefix, accounts) for k in range(lanes)))
    assert await check_ledger() == []
    for account, limit in zip(accounts, limits, strict=True):
        await account.refresh_from_db()
        used_arrears = any(o.kind == "usage" and accounts[o.account] is account for o in ops)
        if not used_arrears:
            assert account.balance_fen >= -limit  # no overdraft without consumed usage


async def test_check_names_a_hand_corrupted_balance(
    db: None, capsys: pytest.CaptureFixture
) -> None:
    sound = await create_account()
    tampered = await create_account()
    for a in (sound, tampered):
        await recharge(a.id, Channel.CASH, 1_000, key=f"cash:{a.id}", actor="staff:1")
    assert await check_ledger() == []
    assert await run_check() == 0
    await connections.get("default").execute_query(
        f"UPDATE account SET balance_fen = balance_fen + 1 WHERE id = {tampered.id}"
    )
    found = await check_ledger()
    assert [(d.rule, d.subject) for d in found] == [("wallet", f"account {tampered.id}")]
    assert "差 1 分" in found[0].detail
    assert await run_check() == 1
    assert f"account {tampered.id}" in capsys.readouterr().out
