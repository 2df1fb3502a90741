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


class TenantApp(StrEnum):
    """Which WeChat app an openid belongs to: openids are per app, unionids across them."""

    MINIAPP = "miniapp"  # 小程序
    OFFICIAL = "official"  # 公众号 (the chatbot, the H5 recharge page)


class TenantIdentity(Model):
    """A WeChat user of one of our apps: (app, openid), with the unionid when WeChat gives it,
    so the official account's chatbot can recognise the same person later."""

    id = fields.IntField(primary_key=True)
    app = fields.CharEnumField(TenantApp, max_length=10, default=TenantApp.MINIAPP)
    openid = fields.CharField(max_length=64)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    nickname = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "tenant_identity"
        unique_together = (("app", "openid"),)


class BindingRole(StrEnum):
    OWNER = "owner"  # 户主: recharges, binds others
    ACCOUNTANT = "accountant"  # 财务: recharges, sees records


class BindingVia(StrEnum):
    SMS = "sms"  # site + account number + a code sent to the phone on file
    QR = "qr"  # a signed, one-use code staff generated
    STAFF = "staff"  # bound by staff in the admin


class AccountBinding(Model):
    """A tenant identity may see an account: the isolation key of every tenant query."""

    id = fields.IntField(primary_key=True)
    identity: fields.ForeignKeyRelation[TenantIdentity] = fields.ForeignKeyField(
        "models.TenantIdentity", related_name="bindings", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="bindings", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(BindingRole, max_length=10, default=BindingRole.OWNER)
    via = fields.CharEnumField(BindingVia, max_length=10, default=BindingVia.STAFF)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "account_binding"
        unique_together = (("identity", "account"),)


class BindingCode(Model):
    """An SMS code sent to bind `identity` to `account` (the phone on file). Only the code's
    hash is stored. Rows are also the send log the rate limits count (per phone, per user)."""

    id = fields.IntField(primary_key=True)
    identity: fields.ForeignKeyRelation[TenantIdentity] = fields.ForeignKeyField(
        "models.TenantIdentity", related_name="binding_codes", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="binding_codes", on_delete=fields.CASCADE
    )
    phone = fields.CharField(max_length=20, db_index=True)
    code_hash = fields.CharField(max_length=64)
    tries = fields.IntField(default=0)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "binding_code"


class BindingTicket(Model):
    """A QR code staff generated for one account: the QR carries a signed token naming this
    row's `nonce`; it binds once (`used_at`), before `expires_at`."""

    id = fields.IntField(primary_key=True)
    nonce = fields.CharField(max_length=32, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="binding_tickets", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(BindingRole, max_length=10, default=BindingRole.OWNER)
    expires_at = fields.DatetimeField()
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    used_at = fields.DatetimeField(null=True)
    used_by: fields.ForeignKeyNullableRelation[TenantIdentity] = fields.ForeignKeyField(
        "models.TenantIdentity",
        related_name="used_tickets",
        on_delete=fields.SET_NULL,
        null=True,
    )

    class Meta:
        table = "binding_ticket"


class SubscribeGrant(Model):
    """WeChat subscribe-message grants are one-time: each "allow" the user taps is one message
    we may send with that template. `remaining` counts them; the notifier spends one a message."""

    id = fields.IntField(primary_key=True)
    identity: fields.ForeignKeyRelation[TenantIdentity] = fields.ForeignKeyField(
        "models.TenantIdentity", related_name="subscribe_grants", on_delete=fields.CASCADE
    )
    template_id = fields.CharField(max_length=64)
    remaining = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "subscribe_grant"
        unique_together = (("identity", "template_id"),)
