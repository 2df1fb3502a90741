"""The closing of an account (销户, or the old side of a 过户): one row per account, created
when staff start it, done when the wallet is empty and every refund it asked for is paid.

While `status` is pending the account is still open but "closing" (销户中): refunds above
the approval threshold wait for a second person. `readings` keeps the final reading of each
meter as it was taken (the settlement statement prints it); the money on the statement is
read from the ledger and the refunds, so it is always the current truth.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ClosingKind(StrEnum):
    CLOSE = "close"  # 销户: the room becomes vacant
    TRANSFER = "transfer"  # 过户: a new tenant's account takes the meters


class ClosingStatus(StrEnum):
    PENDING = "pending"  # refunds waiting for approval or for the platform
    DONE = "done"  # the account is closed


class AccountClosing(Model):
    id = fields.IntField(primary_key=True)
    account: fields.OneToOneRelation = fields.OneToOneField(
        "models.Account", related_name="closing", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(ClosingKind, max_length=10)
    status = fields.CharEnumField(ClosingStatus, max_length=10, default=ClosingStatus.PENDING)
    # [{"meter_id", "address", "kind", "total", "taken_at", "source"}], as taken
    readings = fields.JSONField(default=list)
    refund_channel = fields.CharField(max_length=8, default="cash")  # the counter refund's
    payee_name = fields.CharField(max_length=100, default="")
    payee_account = fields.CharField(max_length=64, default="")
    # 过户: the new tenant's account, and whether the balance went over to it
    new_account: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Account", related_name="taken_over", on_delete=fields.RESTRICT, null=True
    )
    carried_fen = fields.BigIntField(default=0)
    requested_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "account_closing"
