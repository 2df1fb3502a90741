"""Ledger service: the one way money moves.

Design (after django-hordak and Polar): `post()` writes one balanced transaction — legs in
integer fen that sum to zero — under an idempotency key with a UNIQUE constraint. Everything
else (recharge, charge, adjust, two-phase refund, transfer, reverse) is a posting rule from
posting.py handed to `post()`. `post()` is the single form of posting; `post_batch()`
(batch.py) is the batch form; both write through the one writer, `write.write()` (its
docstring has the statements), so a batch writes exactly what posting one by one would.

One `post()` runs in its own database transaction, or directly in the caller's when one is
open (no savepoint: what it changed before finding it may not post, it undoes itself):

1. wallet legs          → one guarded `UPDATE account … RETURNING balance_fen`: the row lock,
   the status and the floor in one statement. No row back means closed, missing or
   insufficient: a typed error, and nothing stays written — unless the key was posted
   before: then it is a replay (see 2). `allow_arrears` drops the floor (usage already
   consumed).
2. transaction          → its row under its key (with the chart rows of its legs, created on
   first use). A post of a key already posted (a replay, or a concurrent post that committed
   first: we block on the unique index until it does) writes nothing more: our wallet update
   is undone (`ON CONFLICT (key) DO NOTHING` in the caller's transaction, a rollback in our
   own) and the first result returned (`created=False`) if the kind and legs are the same,
   else `IdempotencyConflict`.
3. legs                 → in leg order. On PostgreSQL a deferred constraint trigger
   re-checks at commit that the legs sum to zero.

The key is not looked up before writing: on the hot path (a first post) that look-up found
nothing and cost a round trip. Posts that name another transaction (reverse, refund settle
and void) do look it up first, so that their replay is never mistaken for a second
reference (their own UNIQUE), and always run in a savepoint.

Rows are immutable: corrections are `reverse()` (once per original, a UNIQUE reference), and
a refund hold is settled or voided once (another UNIQUE reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.ledger import posting
from server.ledger.errors import (
    AlreadyReversed,
    BatchNotPosted,
    IdempotencyConflict,
    NotReversible,
    RefundAlreadyResolved,
    TransactionNotFound,
    UnbalancedTransaction,
)
from server.ledger.posting import REFUNDS_PAYABLE, Channel, ChargeType, Leg, Posting, TxKind
from server.ledger.sql import fetch
from server.ledger.write import Posted, write


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    id: int
    key: str
    kind: TxKind
    channel: str | None
    account_id: int | None
    balance_after_fen: int | None
    legs: tuple[Leg, ...]


async def post(
    key: str,
    kind: TxKind,
    legs: Sequence[Leg],
    *,
    memo: str,
    actor: str,
    allow_arrears: bool = False,
    channel: Channel | None = None,
    require_open: bool = False,
) -> Posted:
    """Post a balanced transaction once under `key` (see the module docstring)."""
    return await _post(
        key, TxKind(kind), legs, memo=memo, actor=actor, allow_arrears=allow_arrears,
        channel=channel, require_open=require_open,
    )  # fmt: skip


async def recharge(
    account_id: int, channel: Channel, amount_fen: int, *, key: str, actor: str, memo: str = ""
) -> Posted:
    """Money in through a payment channel: wallet +, channel clearing −."""
    p = posting.recharge_posting(account_id, channel, amount_fen, key=key, actor=actor, memo=memo)
    return await _post(
        p.key, p.kind, p.legs, memo=p.memo, actor=p.actor, channel=p.channel,
        require_open=p.require_open,
    )  # fmt: skip


async def charge(
    account_id: int,
    charge_type: ChargeType,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    memo: str = "",
    allow_arrears: bool = False,
) -> Posted:
    """A fee from the wallet to revenue. `allow_arrears` only for consumption already used."""
    legs = posting.charge_legs(account_id, charge_type, amount_fen)
    return await _post(
        key, TxKind.CHARGE, legs, memo=memo, actor=actor, allow_arrears=allow_arrears,
        require_open=True,
    )  # fmt: skip


async def charge_fee(
    account_id: int,
    revenue_code: str,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    memo: str,
    allow_arrears: bool = False,
) -> Posted:
    """A property fee from the wallet to its revenue account (`revenue(…)` of a charge type or
    `item_revenue(id)` of an organisation's own fee item); the wallet's floor holds unless
    `allow_arrears` (a site where fees may cut supply)."""
    legs = posting.fee_legs(account_id, revenue_code, amount_fen)
    return await _post(
        key, TxKind.CHARGE, legs, memo=memo, actor=actor, allow_arrears=allow_arrears,
        require_open=True,
    )  # fmt: skip


async def issue_bill(
    account_id: int,
    lines: Sequence[tuple[str, int]],
    *,
    key: str,
    actor: str,
    memo: str,
    carried_fen: int = 0,
) -> Posted:
    """A bill issued: its lines' revenue against the tenant's receivable (`bill_legs`); a
    postpaid period's usage `carried_fen` moves from the wallet onto the bill."""
    legs = posting.bill_legs(account_id, lines, carried_fen)
    return await _post(key, TxKind.BILL, legs, memo=memo, actor=actor, account_id=int(account_id))


async def settle_bill(
    account_id: int,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    memo: str,
    allow_arrears: bool = False,
) -> Posted:
    """Pay `amount_fen` of the tenant's receivable from the wallet (floor permitting, unless
    `allow_arrears`: a payment whose recharge of the same amount was just posted)."""
    legs = posting.bill_settle_legs(account_id, amount_fen)
    return await _post(
        key, TxKind.BILL_SETTLE, legs, memo=memo, actor=actor, allow_arrears=allow_arrears,
        account_id=int(account_id),
    )  # fmt: skip


async def adjust(account_id: int, amount_fen: int, *, key: str, actor: str, reason: str) -> Posted:
    """A staff correction (± fen) against the adjustments account; the reason is required."""
    if not reason.strip():
        raise UnbalancedTransaction("调账必须填写原因")
    legs = posting.adjust_legs(account_id, amount_fen)
    return await _post(key, TxKind.ADJUSTMENT, legs, memo=reason, actor=actor)


async def refund_hold(
    account_id: int, channel: Channel, amount_fen: int, *, key: str, actor: str, memo: str = ""
) -> Posted:
    """Phase 1 of a refund: set the money aside (wallet → refunds payable), balance permitting."""
    legs = posting.refund_hold_legs(account_id, amount_fen)
    return await _post(
        key, TxKind.REFUND_HOLD, legs, memo=memo or "退款", actor=actor, channel=Channel(channel)
    )


async def refund_settle(hold_key: str, *, key: str, actor: str) -> Posted:
    """Phase 2a: the channel paid the refund out (refunds payable → channel clearing)."""
    hold = await _refund_hold(hold_key)
    legs = posting.refund_settle_legs(Channel(hold.channel), _held(hold))
    return await _post(
        key, TxKind.REFUND_SETTLE, legs, memo="退款成功", actor=actor,
        channel=Channel(hold.channel), account_id=hold.account_id, resolves_id=hold.id,
    )  # fmt: skip


async def refund_void(hold_key: str, *, key: str, actor: str) -> Posted:
    """Phase 2b: the refund failed; the money goes back to the wallet."""
    hold = await _refund_hold(hold_key)
    assert hold.account_id is not None
    legs = posting.refund_void_legs(hold.account_id, _held(hold))
    return await _post(
        key, TxKind.REFUND_VOID, legs, memo="退款失败，退回余额", actor=actor,
        channel=Channel(hold.channel), resolves_id=hold.id,
    )  # fmt: skip


async def transfer(
    from_account_id: int,
    to_account_id: int,
    amount_fen: int,
    *,
    key: str,
    actor: str,
    memo: str = "",
) -> Posted:
    """过户: move money from one wallet to another, both open; the source respects its floor
    (no arrears for the new tenant to inherit). The transaction names the source account."""
    legs = posting.transfer_legs(from_account_id, to_account_id, amount_fen)
    return await _post(
        key, TxKind.TRANSFER, legs, memo=memo or "过户转入新户", actor=actor,
        require_open=True, account_id=int(from_account_id),
    )  # fmt: skip


async def reverse(
    original_key: str, *, key: str, actor: str, reason: str, allow_arrears: bool = False
) -> Posted:
    """Undo a transaction by posting its legs negated, once. A reversal that debits a wallet
    (undoing a recharge) respects the floor unless `allow_arrears`."""
    original = await load(original_key)
    if original.kind in {TxKind.REFUND_HOLD, TxKind.REFUND_SETTLE, TxKind.REFUND_VOID}:
        raise NotReversible("退款记录不能冲正，请使用退款作废", key=original_key)
    if original.kind is TxKind.REVERSAL:
        raise NotReversible("冲正记录不能再冲正，请重新记账", key=original_key)
    if not reason.strip():
        raise UnbalancedTransaction("冲正必须填写原因")
    legs = posting.reversal_legs(original.legs)
    return await _post(
        key, TxKind.REVERSAL, legs, memo=reason, actor=actor, allow_arrears=allow_arrears,
        channel=Channel(original.channel) if original.channel else None,
        account_id=original.account_id, reverses_id=original.id,
    )  # fmt: skip


async def load(key: str) -> StoredTransaction:
    """The transaction posted under `key`, with its legs; `TransactionNotFound` if none."""
    found = await _find(connections.get("default"), key)
    if found is None:
        raise TransactionNotFound("记账记录不存在", key=key)
    return found


async def balance_of(code: str) -> int:
    """A ledger account's balance: the sum of its legs (wallets: see account.balance_fen)."""
    conn = connections.get("default")
    rows = await fetch(
        conn,
        "SELECT COALESCE(SUM(l.amount_fen), 0) AS s FROM ledger_leg l"
        " JOIN ledger_account a ON a.id = l.ledger_account_id WHERE a.code = $1",
        [code],
    )
    return int(rows[0]["s"])


async def _post(
    key: str,
    kind: TxKind,
    legs: Sequence[Leg],
    *,
    memo: str,
    actor: str,
    allow_arrears: bool = False,
    channel: Channel | None = None,
    require_open: bool = False,
    account_id: int | None = None,
    reverses_id: int | None = None,
    resolves_id: int | None = None,
) -> Posted:
    p = posting.checked(Posting(key, kind, tuple(legs), memo, actor, channel, allow_arrears,
                                require_open, account_id, reverses_id, resolves_id))  # fmt: skip
    want = posting.fingerprint(p.kind, p.legs)
    conn = connections.get("default")
    references = reverses_id is not None or resolves_id is not None
    if references:  # a replay must not reach the reference's UNIQUE (an error, not a replay)
        existing = await _find(conn, key)
        if existing is not None:
            return _replayed(existing, want)
    try:
        if isinstance(conn, TransactionalDBClient) and not references:
            # Inside the caller's transaction: no savepoint (two round trips). Nothing below
            # fails in the database on the way (guarded UPDATE, ON CONFLICT DO NOTHING), and
            # what it changed before finding that it may not post is undone by `write`.
            return (await write(conn, [p], undo=True)).posted[0]
        async with in_transaction() as tx:
            return (await write(tx, [p])).posted[0]
    except BatchNotPosted as not_posted:
        error = not_posted.refused[0]
        # Posted before: a replay, whatever the wallet says now.
        if error is not None and await _find(connections.get("default"), key) is None:
            raise error from None
    except IntegrityError:
        if reverses_id is not None:
            raise AlreadyReversed("该记录已冲正", key=key) from None
        if resolves_id is not None:
            raise RefundAlreadyResolved("该退款已处理", key=key) from None
        raise
    existing = await _find(connections.get("default"), key)
    assert existing is not None, "lost the race for a key that then vanished"
    return _replayed(existing, want)


async def _find(conn: BaseDBAsyncClient, key: str) -> StoredTransaction | None:
    rows = await fetch(
        conn,
        "SELECT t.id, t.kind, t.channel, t.account_id, t.balance_after_fen, a.code, l.amount_fen"
        " FROM ledger_transaction t JOIN ledger_leg l ON l.transaction_id = t.id"
        ' JOIN ledger_account a ON a.id = l.ledger_account_id WHERE t."key" = $1 ORDER BY l.id',
        [key],
    )
    if not rows:
        return None
    first = rows[0]
    return StoredTransaction(
        id=int(first["id"]),
        key=key,
        kind=TxKind(first["kind"]),
        channel=first["channel"],
        account_id=first["account_id"],
        balance_after_fen=first["balance_after_fen"],
        legs=tuple(Leg(r["code"], int(r["amount_fen"])) for r in rows),
    )


def _replayed(existing: StoredTransaction, want: tuple[Any, ...]) -> Posted:
    if posting.fingerprint(existing.kind, existing.legs) != want:
        raise IdempotencyConflict(
            "该幂等键已用于另一笔不同的记账", key=existing.key, kind=existing.kind.value
        )
    return Posted(existing.id, existing.key, False, existing.balance_after_fen)


async def _refund_hold(hold_key: str) -> StoredTransaction:
    hold = await load(hold_key)
    if hold.kind is not TxKind.REFUND_HOLD or hold.channel is None:
        raise TransactionNotFound("退款申请不存在", key=hold_key)
    return hold


def _held(hold: StoredTransaction) -> int:
    return next(leg.amount_fen for leg in hold.legs if leg.code == REFUNDS_PAYABLE)
