"""Usage billing persistence: one row per billed reading pair.

What billing remembers per account — the stored `server.billing.usage.BillingState` of each
utility (tier use in kWh and m³ cannot share a counter) — is on the account's own row
(`Account.<utility>_carry_fen / _tier_start / _cumulative`, see server/accounts/models.py).
Decimals are kept as exact strings (carry in [0, 1) fen, cumulative in kWh/m³) and only ever
computed on in Python, never as floats and never with SQL decimal arithmetic, so SQLite and
PostgreSQL agree to the digit.

`UsageChargeRow` is unique on (meter, reading_at): that pair is the reading's idempotency key,
so a repeated reading never bills twice. `transaction` is the ledger transaction that debited
the wallet (None when the charge rounded to 0 fen and only the carry moved).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class UsageChargeRow(Model):
    id = fields.BigIntField(primary_key=True)
    # No database foreign keys to meter and account (migration 0007): the two checks were a
    # third of the row's cost on the billing hot path. Billing reads both rows in the same
    # transaction before writing, the ledger transaction names the account, and meters and
    # accounts are retired, never deleted.
    meter: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Meter", related_name="usage_charges", on_delete=fields.RESTRICT,
        db_constraint=False,
    )  # fmt: skip
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="usage_charges", on_delete=fields.RESTRICT,
        db_constraint=False,
    )  # fmt: skip
    prev_reading_at = fields.DatetimeField()
    reading_at = fields.DatetimeField()
    quantity = fields.CharField(max_length=64)  # kWh or m³, multiplier applied
    exact_yuan = fields.CharField(max_length=64)  # exact price before rounding to fen
    amount_fen = fields.BigIntField()  # deducted from the wallet now
    lines = fields.JSONField()  # [[label, quantity, unit price, amount], …] for the bill
    transaction: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="usage_charges", on_delete=fields.RESTRICT,
        null=True,
    )  # fmt: skip
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "usage_charge"
        unique_together = (("meter", "reading_at"),)
