"""Accounts (户) and the tenants' WeChat identities bound to them.

`balance_fen` is the wallet balance; only the ledger service changes it, inside the same
database transaction as the ledger legs that explain it (see server.ledger).

The `<utility>_carry_fen / _tier_start / _cumulative` columns are usage billing's memory
per utility (server.billing: the sub-fen carry and the tier period's use so far). Only
billing reads and writes them. They live on the wallet's row because a billing round
changes both for every account it bills: one row update per account instead of two
(migration 0011 moved them here from a `billing_state` table).
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class AccountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TenantType(StrEnum):
    COMPANY = "company"
    PERSON = "person"


class BillingMode(StrEnum):
    PREPAID = "prepaid"  # 先交费后用电
    POSTPAID = "postpaid"  # 后付费


class Account(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="accounts", on_delete=fields.RESTRICT
    )
    room: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Room", related_name="accounts", on_delete=fields.RESTRICT, null=True
    )
    number = fields.CharField(max_length=32)
    tenant_name = fields.CharField(max_length=100)
    phone = fields.CharField(max_length=20, default="")
    tenant_type = fields.CharEnumField(TenantType, max_length=10, default=TenantType.COMPANY)
    status = fields.CharEnumField(AccountStatus, max_length=10, default=AccountStatus.OPEN)
    billing_mode = fields.CharEnumField(BillingMode, max_length=10, default=BillingMode.PREPAID)
    balance_fen = fields.BigIntField(default=0)
    # How far below zero the wallet may go (allowed credit); the debit floor is -credit_limit.
    credit_limit_fen = fields.BigIntField(default=0)
    opened_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Usage billing's state per utility (see the module docstring); exact decimal text.
    electricity_carry_fen = fields.CharField(max_length=64, default="0")
    electricity_tier_start = fields.DatetimeField(null=True)
    electricity_cumulative = fields.CharField(max_length=64, default="0")
    water_carry_fen = fields.CharField(max_length=64, default="0")
    water_tier_start = fields.DatetimeField(null=True)
    water_cumulative = fields.CharField(max_length=64, default="0")

    class Meta:
        table = "account"
        unique_together = (("site", "number"),)


class TenantIdentity(Model):
    """A WeChat user (mini-program openid, optional unionid across the official account)."""

    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64, unique=True)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    nickname = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tenant_identity"


class AccountBinding(Model):
    """A tenant identity may see an account: the isolation key of every tenant query."""

    id = fields.IntField(primary_key=True)
    identity: fields.ForeignKeyRelation[TenantIdentity] = fields.ForeignKeyField(
        "models.TenantIdentity", related_name="bindings", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="bindings", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "account_binding"
        unique_together = (("identity", "account"),)
