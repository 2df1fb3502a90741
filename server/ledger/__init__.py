"""Ledger: double-entry bookkeeping in integer fen; the only writer of wallet balances and
ledger rows. Import the public API from here: `post` (one posting) and `post_batch` (many,
all or nothing) write through one writer (write.py); the posting rules are posting.py."""

from server.ledger.batch import post_batch
from server.ledger.errors import (
    AccountClosed,
    AccountNotFound,
    AlreadyReversed,
    BatchNotPosted,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerError,
    NotReversible,
    RefundAlreadyResolved,
    TransactionNotFound,
    UnbalancedTransaction,
)
from server.ledger.posting import Channel, ChargeType, LedgerAccountKind, Leg, Posting, TxKind
from server.ledger.service import (
    StoredTransaction,
    adjust,
    balance_of,
    charge,
    load,
    post,
    recharge,
    refund_hold,
    refund_settle,
    refund_void,
    reverse,
)
from server.ledger.write import Posted, RowColumns, Written

__all__ = [
    "AccountClosed",
    "AccountNotFound",
    "AlreadyReversed",
    "BatchNotPosted",
    "Channel",
    "ChargeType",
    "IdempotencyConflict",
    "InsufficientBalance",
    "LedgerAccountKind",
    "LedgerError",
    "Leg",
    "NotReversible",
    "Posted",
    "Posting",
    "RefundAlreadyResolved",
    "RowColumns",
    "StoredTransaction",
    "TransactionNotFound",
    "TxKind",
    "UnbalancedTransaction",
    "Written",
    "adjust",
    "balance_of",
    "charge",
    "load",
    "post",
    "post_batch",
    "recharge",
    "refund_hold",
    "refund_settle",
    "refund_void",
    "reverse",
]
