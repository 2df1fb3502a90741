"""After a recharge: top up meter-billed meters (表端计费) and re-evaluate alarms; 点抄; staff
sending the wallet's free money to a meter-billed meter by hand (下发充值, `send_wallet_to_meter`).

`on_wallet_credited` is safe to call twice for one credit: with `credit_key` the recharge
command is keyed on it; without, the amount sent to a meter-billed meter comes from the wallet
money not already in an open recharge command (`server.accounts.balance.top_up_fen`), so a
repeat finds nothing left to send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.accounts.balance import available, top_up_fen
from server.accounts.models import Account
from server.core.errors import NotFound, ValidationFailed
from server.ledger.sql import fetch, in_list
from server.metering.models import CommandOp, Meter, MeterBilling, MeterCommand, MeterStatus
from server.metering.service.alarm_service import evaluate_accounts
from server.metering.service.balance import meter_money
from server.metering.service.commands import queue_command


async def read_now(
    meter_id: int,
    *,
    actor: str,
    key: str | None = None,
    reason: str = "点抄",
    now: datetime | None = None,
) -> MeterCommand:
    """点抄: ask the controller to read the meter now; the reading is ingested like any other.
    With `key`, a repeat (a double click) returns the first command."""
    return await queue_command(
        meter_id, CommandOp.READ, {}, actor=actor, reason=reason, key=key,
        now=now or datetime.now(UTC),
    )  # fmt: skip


async def send_wallet_to_meter(
    meter_id: int, *, actor: str, reason: str, key: str, now: datetime | None = None
) -> MeterCommand | None:
    """下发充值 by staff: queue the recharge a credit would have queued for this meter-billed
    meter (the wallet's free money, or the levelling share in a mixed account: `top_up_fen`),
    e.g. after an earlier recharge command failed or expired. Keyed: a repeat of `key` returns
    the first command. None when there is nothing to send (the free money is 0 or already on
    its way in an open recharge)."""
    now = now or datetime.now(UTC)
    meter = await Meter.get_or_none(id=meter_id)
    if meter is None or meter.status != MeterStatus.ACTIVE or meter.account_id is None:
        raise NotFound("电表不存在、已拆除或没有账户", meter_id=meter_id)
    if meter.billing != MeterBilling.METER:
        raise ValidationFailed("只有表端计费的仪表可以下发充值", meter_id=meter_id)
    async with in_transaction() as conn:
        account = await Account.filter(id=meter.account_id).select_for_update().first()
        assert account is not None
        first = await MeterCommand.get_or_none(key=key)  # under the lock: a double click
        if first is not None:
            return first
        return await _recharge_meter(conn, account, meter, reason, None, now, actor=actor, key=key)


async def on_wallet_credited(
    account_id: int,
    *,
    reason: str,
    credit_key: str | None = None,
    now: datetime | None = None,
) -> None:
    """A recharge reached the wallet: move it on to meter-billed meters, then re-evaluate
    alarms (which may close a relay the platform opened)."""
    now = now or datetime.now(UTC)
    account = await Account.get_or_none(id=account_id)
    if account is None:
        raise NotFound("账户不存在", account_id=account_id)
    meters = await Meter.filter(
        account_id=account_id, status=MeterStatus.ACTIVE, billing=MeterBilling.METER
    ).order_by("id")
    if meters:
        async with in_transaction() as conn:
            # Locked: two credits computing the free money at once would send it twice.
            account = await Account.filter(id=account_id).select_for_update().first()
            assert account is not None
            await _recharge_meter(conn, account, meters[0], reason, credit_key, now)
    await evaluate_accounts([account_id], now=now)


@dataclass(frozen=True, slots=True)
class WalletCredit:
    """One account's credits to follow up: its latest credit names the call."""

    account_id: int
    reason: str
    credit_key: str | None = None


async def on_wallets_credited(
    credits: Iterable[WalletCredit], *, now: datetime | None = None
) -> dict[int, Exception]:
    """`on_wallet_credited` for many accounts at once (the payments drainer's batch): one
    query for the accounts and their meter-billed meters, the meter-side recharge per account
    that has one (locked, as above), then one `evaluate_accounts` for all. Returns the
    accounts whose follow-up failed, with why (the others are done); an error in the shared
    evaluation raises, and then none is done."""
    now = now or datetime.now(UTC)
    wanted = {c.account_id: c for c in credits}
    if not wanted:
        return {}
    conn = connections.get("default")
    where, params = in_list(conn, "a.id", sorted(wanted), 1, "int")
    rows = await fetch(
        conn,
        "SELECT a.id, m.id AS meter_id FROM account a LEFT JOIN meter m ON m.account_id = a.id"
        f" AND m.status = '{MeterStatus.ACTIVE.value}' AND m.billing = '{MeterBilling.METER.value}'"
        f" WHERE {where} ORDER BY a.id, m.id",
        params,
    )
    first_meter: dict[int, int | None] = {}
    for r in rows:
        first_meter.setdefault(r["id"], r["meter_id"])
    failed: dict[int, Exception] = {
        a: NotFound("账户不存在", account_id=a) for a in wanted if a not in first_meter
    }
    for account_id, meter_id in first_meter.items():
        if meter_id is None:
            continue
        credit = wanted[account_id]
        try:
            async with in_transaction() as conn:
                account = await Account.filter(id=account_id).select_for_update().first()
                meter = await Meter.get(id=meter_id)
                assert account is not None
                await _recharge_meter(conn, account, meter, credit.reason, credit.credit_key, now)
        except Exception as exc:  # this account stays pending; the others go on
            failed[account_id] = exc
    await evaluate_accounts(list(first_meter), now=now)
    return failed


async def sendable_fen(meter_id: int) -> int:
    """What `send_wallet_to_meter` would send to this meter now (for the button's question)."""
    meter = await Meter.get_or_none(id=meter_id)
    if meter is None or meter.account_id is None or meter.billing != MeterBilling.METER:
        return 0
    account = await Account.get(id=meter.account_id)
    money = (await meter_money(connections.get("default"), [account.id])).get(account.id, [])
    target = next((m for m in money if m.meter_id == meter.id), None)
    return top_up_fen(available(account.balance_fen, money), target) if target else 0


async def _recharge_meter(
    conn: BaseDBAsyncClient,
    account: Account,
    meter: Meter,
    reason: str,
    credit_key: str | None,
    now: datetime,
    *,
    actor: str = "system:payments",
    key: str | None = None,
) -> MeterCommand | None:
    """Send the wallet's free money to the (first) meter-billed meter of the account: all of
    it, or in an account that also has platform-billed meters the share that levels the two
    (`top_up_fen`).

    The wallet is debited when the meter confirms the recharge (the controller), so until
    then the money shows in both places only as an open command, subtracted here.
    """
    money = (await meter_money(conn, [account.id])).get(account.id, [])
    target = next((m for m in money if m.meter_id == meter.id), None)
    amount = top_up_fen(available(account.balance_fen, money), target) if target else 0
    if amount <= 0:
        return None
    return await queue_command(
        meter.id,
        CommandOp.RECHARGE,
        {"amount_fen": amount, "account_id": account.id},
        actor=actor,
        reason=reason or "钱包充值转入表端",
        key=key or (f"meter-recharge:{credit_key}" if credit_key else None),
        now=now,
    )
