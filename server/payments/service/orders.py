"""Recharge orders: create (inside the configured limits), credit exactly once, close/expire.

Every path that learns "this order is paid" — the notification, the order-query poller, a
replayed notification — ends in `credit_order`, which locks the order row and posts the
ledger credit under `pay:{channel}:{out_trade_no}`. The order, not the notification, names
the credit, so all paths converge on one ledger transaction; the order row lock makes the
loser of a race see `paid` and do nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import Entry, record_many
from server.ledger import service as ledger
from server.ledger.errors import AccountClosed
from server.ledger.posting import Channel as LedgerChannel
from server.ledger.sql import fetch, is_pg, q
from server.payments.errors import AmountOutOfLimits, OrderNotFound, WrongStatus
from server.payments.models import (
    EventOutcome,
    OrderStatus,
    QuarantineReason,
    RechargeOrder,
)
from server.payments.providers.base import Channel, CreatedOrder
from server.payments.service.quarantine import quarantine
from server.payments.service.runtime import Payments


def new_number(prefix: str, now: datetime) -> str:
    """`R20260301` + 20 hex digits (80 random bits): unique in practice and unguessable; the
    UNIQUE constraint catches the rest. 29 characters, inside WeChat's 6–32."""
    return f"{prefix}{now:%Y%m%d}{secrets.token_hex(10)}"


def credit_key(channel: Channel | str, out_trade_no: str) -> str:
    return f"pay:{Channel(channel).value}:{out_trade_no}"


NOT_READ = object()  # `credit_in_transaction(locked=…)` not given: read the order itself


@dataclass(frozen=True, slots=True)
class CreditResult:
    outcome: EventOutcome
    followup_key: str = ""  # set when this call credited: run the follow-up after commit
    account_id: int | None = None  # the credited account (with `followup_key`)


async def create_recharge_order(
    payments: Payments,
    account_id: int,
    channel: Channel | str,
    amount_fen: int,
    *,
    actor: str,
    payer_openid: str = "",
    description: str = "",
    now: datetime | None = None,
) -> tuple[RechargeOrder, CreatedOrder]:
    """Create an order for a tenant (or staff at the counter) and open it at the platform."""
    channel = Channel(channel)
    cfg = payments.settings
    now = now or datetime.now(UTC)
    if (
        type(amount_fen) is not int
        or not cfg.min_recharge_fen <= amount_fen <= cfg.max_recharge_fen
    ):
        raise AmountOutOfLimits(
            "充值金额超出允许范围", min_fen=cfg.min_recharge_fen, max_fen=cfg.max_recharge_fen
        )
    provider = payments.provider(channel)
    account = await Account.get_or_none(id=account_id)
    if account is None or account.status != AccountStatus.OPEN:
        raise OrderNotFound("账户不存在或已销户", account_id=account_id)
    order = await RechargeOrder.create(
        out_trade_no=new_number("R", now),
        account_id=account_id,
        channel=channel,
        amount_fen=amount_fen,
        expires_at=now + timedelta(minutes=cfg.order_ttl_minutes),
        payer_openid=payer_openid,
        created_by=actor,
    )
    # If this fails the order stays `created`: the poller queries and expires it.
    created = await provider.create_order(
        order.out_trade_no,
        amount_fen,
        description or f"{account.number} 预付费充值",
        payer_openid or None,
        order.expires_at,
        payments.notify_url(channel),
    )
    return order, created


@dataclass(frozen=True, slots=True)
class PaidFact:
    """What a platform said about an order: paid `amount_fen`, its number, its time."""

    channel: Channel
    out_trade_no: str
    amount_fen: int
    transaction_id: str
    paid_at: datetime | None
    source: str  # "notify" or "poller"


async def credit_order(
    channel: Channel,
    out_trade_no: str,
    *,
    amount_fen: int,
    transaction_id: str,
    paid_at: datetime | None,
    source: str,
    now: datetime | None = None,
) -> CreditResult:
    """The platform says `out_trade_no` is paid `amount_fen`: credit it once, or quarantine.

    Runs in its own transaction (a savepoint inside the caller's)."""
    fact = PaidFact(channel, out_trade_no, amount_fen, transaction_id, paid_at, source)
    async with in_transaction() as conn:
        return await credit_in_transaction(conn, fact, now or datetime.now(UTC))


async def credit_in_transaction(
    conn: BaseDBAsyncClient,
    fact: PaidFact,
    now: datetime,
    *,
    locked: Mapping[str, Any] | object | None = NOT_READ,
    event_id: int | None = None,
) -> CreditResult:
    """`credit_order` inside the caller's open transaction. Raw SQL: this is the hot path of
    every notification, and building ORM queries cost more CPU than the database work.

    `locked`: the order row (None: no such order) the caller already read `FOR UPDATE` in
    this transaction — the inbox reads it in the statement that stores the event; `event_id`:
    the inbox event to mark handled in the same statement as the credit. Both save round
    trips, nothing else."""
    order = await lock_order(conn, fact.out_trade_no) if locked is NOT_READ else locked
    assert order is None or isinstance(order, Mapping)
    if order is None or order["channel"] != fact.channel.value:
        await quarantine(
            fact.channel, QuarantineReason.UNKNOWN_ORDER, fact.out_trade_no,
            out_trade_no=fact.out_trade_no, notified_fen=fact.amount_fen,
            detail={"transaction_id": fact.transaction_id, "source": fact.source},
        )  # fmt: skip
        return CreditResult(EventOutcome.QUARANTINED)
    if order["status"] == OrderStatus.PAID.value:
        return CreditResult(EventOutcome.ALREADY_DONE)
    if order["status"] == OrderStatus.HELD.value:
        return CreditResult(EventOutcome.QUARANTINED)
    if fact.amount_fen != order["amount_fen"]:
        await _hold(conn, order["id"], now)
        await quarantine(
            fact.channel, QuarantineReason.AMOUNT_MISMATCH, fact.out_trade_no,
            out_trade_no=fact.out_trade_no, expected_fen=order["amount_fen"],
            notified_fen=fact.amount_fen,
            detail={"transaction_id": fact.transaction_id, "source": fact.source},
        )  # fmt: skip
        return CreditResult(EventOutcome.QUARANTINED)
    # A closed/expired order that the platform reports paid was paid in a race with the
    # close: the money is real and the amount is right, so it is credited.
    key = credit_key(fact.channel, fact.out_trade_no)
    try:
        await ledger.recharge(
            order["account_id"], LedgerChannel(fact.channel.value), order["amount_fen"],
            key=key, actor=f"system:pay-{fact.source}",
            memo=f"{CHANNEL_NAMES[fact.channel]}充值 {fact.out_trade_no}",
        )  # fmt: skip
    except AccountClosed:
        # Paid for an account closed since the order was made: the ledger wrote nothing. A
        # resend would change nothing, so hold the order and let a person refund the payer.
        await _hold(conn, order["id"], now)
        await quarantine(
            fact.channel, QuarantineReason.ACCOUNT_CLOSED, fact.out_trade_no,
            out_trade_no=fact.out_trade_no, expected_fen=order["amount_fen"],
            notified_fen=fact.amount_fen,
            detail={"transaction_id": fact.transaction_id, "source": fact.source,
                    "account_id": order["account_id"]},
        )  # fmt: skip
        return CreditResult(EventOutcome.QUARANTINED)
    await _mark_paid(conn, fact, order, key, now, event_id)
    entry = credit_entry(fact, int(order["account_id"]), int(order["amount_fen"]), key, now)
    await record_many([entry], conn=conn)  # last: the log's chain lock is held until commit
    return CreditResult(EventOutcome.CREDITED, key, int(order["account_id"]))


def credit_entry(fact: PaidFact, account_id: int, amount_fen: int, key: str, at: datetime) -> Entry:
    """The operation-log row of one credited payment (who: the notification or the poller)."""
    return Entry(
        actor=f"system:pay-{fact.source}", action="payment.credit", target_type="account",
        target_id=account_id, reason=f"{CHANNEL_NAMES[fact.channel]}充值到账 {fact.out_trade_no}",
        detail={"channel": fact.channel.value, "out_trade_no": fact.out_trade_no,
                "amount_fen": amount_fen, "transaction_id": fact.transaction_id[:64],
                "credit_key": key},
        at=at,
    )  # fmt: skip


ORDER_COLUMNS = "id, account_id, channel, amount_fen, status"


async def _hold(conn: BaseDBAsyncClient, order_id: int, now: datetime) -> None:
    """The order waits for a person (quarantined); neither a resend nor the poller credits it."""
    await conn.execute_query(
        q(conn, "UPDATE recharge_order SET status = $1, updated_at = $2 WHERE id = $3"),
        [OrderStatus.HELD.value, now, order_id],
    )


async def lock_order(conn: BaseDBAsyncClient, out_trade_no: str) -> dict[str, Any] | None:
    """The order row, locked until the caller's transaction ends (PostgreSQL; SQLite
    serialises writers anyway); None if there is no such order."""
    lock = " FOR UPDATE" if is_pg(conn) else ""
    rows = await fetch(
        conn,
        f"SELECT {ORDER_COLUMNS} FROM recharge_order WHERE out_trade_no = $1{lock}",
        [out_trade_no],
    )
    return rows[0] if rows else None


# Parameters shared by the three statements below ($n is read by number in both dialects).
_PAID = (
    "UPDATE recharge_order SET status = $1, transaction_id = $2, paid_at = $3,"
    " credited_by = $4, updated_at = $5 WHERE id = $6"
)
_FOLLOWUP = (
    "INSERT INTO payment_followup (credit_key, account_id, reason, attempts, last_error,"
    " created_at) VALUES ($7, $8, 'recharge', 0, '', $5)"
)
_HANDLED = (
    "UPDATE payment_event SET handled_at = $5, outcome = 'credited'"
    " WHERE id = $9 AND handled_at IS NULL"
)


async def _mark_paid(
    conn: BaseDBAsyncClient,
    fact: PaidFact,
    order: Mapping[str, Any],
    key: str,
    now: datetime,
    event_id: int | None,
) -> None:
    """Order paid + follow-up marker (+ inbox event handled): one statement on PostgreSQL
    (data-modifying CTEs), one per table on SQLite. Same transaction as the credit."""
    params: list[Any] = [
        OrderStatus.PAID.value, fact.transaction_id[:64], fact.paid_at or now, fact.source,
        now, order["id"], key, order["account_id"],
    ]  # fmt: skip
    if event_id is not None:
        params.append(event_id)
    if is_pg(conn):
        handled = f", e AS ({_HANDLED})" if event_id is not None else ""
        await conn.execute_query(f"WITH o AS ({_PAID}){handled} {_FOLLOWUP}", params)
        return
    # SQLite binds as many parameters as a statement's highest number.
    steps = [(_PAID, 6), (_FOLLOWUP, 8)] + ([(_HANDLED, 9)] if event_id is not None else [])
    for sql, count in steps:
        await conn.execute_query(q(conn, sql), params[:count])


async def close_order(
    payments: Payments, out_trade_no: str, *, actor: str, status: OrderStatus = OrderStatus.CLOSED
) -> RechargeOrder:
    """Close an unpaid order at the platform, then here. A paid order is not closed."""
    order = await RechargeOrder.get_or_none(out_trade_no=out_trade_no)
    if order is None:
        raise OrderNotFound("订单不存在", out_trade_no=out_trade_no)
    if order.status != OrderStatus.CREATED:
        raise WrongStatus("订单已支付或已关闭", status=order.status.value)
    await payments.provider(order.channel).close_order(out_trade_no)
    await mark_unpaid_final(order.id, status)
    return await RechargeOrder.get(id=order.id)


async def mark_unpaid_final(order_id: int, status: OrderStatus) -> bool:
    """created → closed/expired, only if still unpaid (a credit may have won meanwhile)."""
    updated = await RechargeOrder.filter(id=order_id, status=OrderStatus.CREATED).update(
        status=status, updated_at=datetime.now(UTC)
    )
    return updated == 1


CHANNEL_NAMES = {Channel.WECHAT: "微信支付", Channel.ALIPAY: "支付宝"}
