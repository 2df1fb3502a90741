"""Ledger tables: the chart of accounts, transactions and their legs.

Sign convention (credit-positive): a leg's `amount_fen` is what it adds to the balance of a
liability/revenue-style account. A recharge of 100 fen is wallet +100, clearing:wechat -100;
a usage charge is wallet -x, revenue:electricity +x. So a wallet's balance is the plain sum of
its legs, and the legs of every transaction sum to zero (a deferred PostgreSQL constraint
trigger, migration 0003, refuses any other commit). Asset accounts (channel clearing) carry
negative sums: money the operator holds at WeChat Pay, Alipay, in the till or the bank.

The wallet balance itself lives on `account.balance_fen` (one hot row per tenant, changed in
the same database transaction as its legs); every other account's balance is the sum of its
legs, computed when asked, so no system-wide row is updated on every charge.

Rows here are never updated or deleted (on PostgreSQL a trigger refuses it): a correction is a
reversing transaction.

References between ledger rows (leg → transaction, leg → chart account, transaction → tenant
account, reversal/resolution → transaction, usage row → transaction) are checked on PostgreSQL
once per INSERT statement by triggers over the statement's new rows (migration 0009), not by
per-row foreign keys: a foreign key costs a lookup and a row lock per row and was a third of
the database's work on the billing hot path. The referenced rows can never disappear (ledger
rows are immutable, chart rows cannot be deleted, a tenant account with ledger rows cannot be
deleted), so existence at insert is existence for good. The fields below still say foreign
key: that is the relation, and what SQLite (the embedded mode) enforces.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from server.ledger.posting import LedgerAccountKind, TxKind

__all__ = ["LedgerAccount", "LedgerAccountKind", "LedgerLeg", "LedgerTransaction", "TxKind"]


class LedgerAccount(Model):
    """One account of the chart, named by its stable `code` ("wallet:12", "clearing:wechat",
    "revenue:electricity", "refunds_payable", "adjustments")."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    kind = fields.CharEnumField(LedgerAccountKind, max_length=16)
    name = fields.CharField(max_length=100, default="")
    account: fields.OneToOneNullableRelation = fields.OneToOneField(
        "models.Account", related_name="ledger_wallet", on_delete=fields.RESTRICT, null=True
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_account"


class LedgerTransaction(Model):
    """A balanced set of legs, posted once under its idempotency `key`."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=160, unique=True)
    kind = fields.CharEnumField(TxKind, max_length=16)
    memo = fields.CharField(max_length=200, default="")
    actor = fields.CharField(max_length=100)  # "staff:12", "tenant:<openid>", "system:collector"
    # The tenant account whose wallet the transaction moves (None for system-only moves).
    account: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Account", related_name="ledger_transactions", on_delete=fields.RESTRICT,
        null=True,
    )  # fmt: skip
    channel = fields.CharField(max_length=16, null=True)  # recharge / refund channel
    # Wallet balance right after this transaction, returned again on a replay of the key.
    balance_after_fen = fields.BigIntField(null=True)
    # Unique: a transaction is reversed at most once; a refund hold is settled or voided once.
    reverses: fields.OneToOneNullableRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="reversed_by", on_delete=fields.RESTRICT,
        null=True,
    )  # fmt: skip
    resolves: fields.OneToOneNullableRelation = fields.OneToOneField(
        "models.LedgerTransaction", related_name="resolved_by", on_delete=fields.RESTRICT,
        null=True,
    )  # fmt: skip
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_transaction"


class LedgerLeg(Model):
    id = fields.BigIntField(primary_key=True)
    transaction: fields.ForeignKeyRelation[LedgerTransaction] = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="legs", on_delete=fields.RESTRICT
    )
    ledger_account: fields.ForeignKeyRelation[LedgerAccount] = fields.ForeignKeyField(
        "models.LedgerAccount", related_name="legs", on_delete=fields.RESTRICT
    )
    amount_fen = fields.BigIntField()

    class Meta:
        table = "ledger_leg"
