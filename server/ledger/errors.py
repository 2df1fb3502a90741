"""Typed ledger errors. Each docstring names the invariant it protects; messages are Chinese
because staff and tenants see them."""

from __future__ import annotations

from server.core.errors import Conflict, NotFound, ShuidianError, ValidationFailed


class LedgerError(ShuidianError):
    """Base of the ledger errors: nothing was written."""


class UnbalancedTransaction(LedgerError, ValidationFailed):
    """Invariant 1: a transaction's legs are whole fen, at least two, and sum to zero."""

    code = "unbalanced_transaction"


class InsufficientBalance(LedgerError, Conflict):
    """Invariant 3: a discretionary debit never takes a wallet below its floor
    (-credit_limit_fen). Only consumption already used may go into arrears."""

    code = "insufficient_balance"


class IdempotencyConflict(LedgerError, Conflict):
    """Invariant 5: an idempotency key names one effect; reusing it for a different one
    (other legs, amount or kind) is refused rather than silently ignored."""

    code = "idempotency_conflict"


class AccountClosed(LedgerError, Conflict):
    """A closed account takes no new recharge or charge (only refunds and adjustments that
    settle it)."""

    code = "account_closed"


class AccountNotFound(LedgerError, NotFound):
    code = "account_not_found"


class TransactionNotFound(LedgerError, NotFound):
    code = "transaction_not_found"


class AlreadyReversed(LedgerError, Conflict):
    """Invariant 9: a correction is one reversing transaction; a second would double it."""

    code = "already_reversed"


class NotReversible(LedgerError, Conflict):
    """Refund holds are undone by voiding, reversals by a new posting, not by reversal."""

    code = "not_reversible"


class RefundAlreadyResolved(LedgerError, Conflict):
    """Invariant 7: a refund hold is settled or voided exactly once."""

    code = "refund_already_resolved"


class BatchNotPosted(LedgerError):
    """Invariant 3 for many postings at once: a batch posts whole or not at all. `refused`
    maps a posting's index to why: the wallet's error, or None when its key was posted
    before. The caller's transaction holds part of the batch and must be rolled back."""

    code = "batch_not_posted"

    def __init__(self, refused: dict[int, LedgerError | None]) -> None:
        super().__init__("批量记账未全部成功，需逐笔处理", refused=len(refused))
        self.refused = refused
