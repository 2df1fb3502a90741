"""Tenant self-service (issue #12): WeChat identities per (app, openid), binding roles, SMS
codes and QR tickets for binding, subscribe-message allowances, each site's recharge page.

`tenant_identity.openid` was unique alone; openids are per WeChat app, so the key is now
(app, openid), the unionid kept beside it. The Quarantine AlterField only brings the enum's
column description up to date (OUT_OF_RANGE was added in issue #11).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.accounts.models import BindingRole, BindingVia, TenantApp
from server.payments.models import QuarantineReason
from server.places.models import default_recharge_choices
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint


class Migration(migrations.Migration):
    dependencies = [("models", "0013_jobs")]

    initial = False

    operations = [
        ops.CreateModel(
            name="BindingCode",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "identity",
                    fields.ForeignKeyField(
                        "models.TenantIdentity",
                        source_field="identity_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="binding_codes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="binding_codes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("phone", fields.CharField(db_index=True, max_length=20)),
                ("code_hash", fields.CharField(max_length=64)),
                ("tries", fields.IntField(default=0)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "created_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "binding_code",
                "app": "models",
                "pk_attr": "id",
                "table_description": "An SMS code sent to bind `identity` to `account` (the phone on file). Only the code's",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BindingTicket",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("nonce", fields.CharField(unique=True, max_length=32)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="binding_tickets",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "role",
                    fields.CharEnumField(
                        default=BindingRole.OWNER,
                        description="OWNER: owner\nACCOUNTANT: accountant",
                        enum_type=BindingRole,
                        max_length=10,
                    ),
                ),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_by", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "used_by",
                    fields.ForeignKeyField(
                        "models.TenantIdentity",
                        source_field="used_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="used_tickets",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
            ],
            options={
                "table": "binding_ticket",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A QR code staff generated for one account: the QR carries a signed token naming this",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SubscribeGrant",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "identity",
                    fields.ForeignKeyField(
                        "models.TenantIdentity",
                        source_field="identity_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="subscribe_grants",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("template_id", fields.CharField(max_length=64)),
                ("remaining", fields.IntField(default=0)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "subscribe_grant",
                "app": "models",
                "unique_together": (("identity", "template_id"),),
                "pk_attr": "id",
                "table_description": 'WeChat subscribe-message grants are one-time: each "allow" the user taps is one message',
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="AccountBinding",
            name="role",
            field=fields.CharEnumField(
                default=BindingRole.OWNER,
                description="OWNER: owner\nACCOUNTANT: accountant",
                enum_type=BindingRole,
                max_length=10,
            ),
        ),
        ops.AddField(
            model_name="AccountBinding",
            name="via",
            field=fields.CharEnumField(
                default=BindingVia.STAFF,
                description="SMS: sms\nQR: qr\nSTAFF: staff",
                enum_type=BindingVia,
                max_length=10,
            ),
        ),
        ops.AlterField(
            model_name="Quarantine",
            name="reason",
            field=fields.CharEnumField(
                description="AMOUNT_MISMATCH: amount_mismatch\nUNKNOWN_ORDER: unknown_order\nUNKNOWN_REFUND: unknown_refund\nWRONG_MERCHANT: wrong_merchant\nORDER_NOT_PAYABLE: order_not_payable\nACCOUNT_CLOSED: account_closed\nREFUND_ABNORMAL: refund_abnormal\nOUT_OF_RANGE: out_of_range",
                enum_type=QuarantineReason,
                max_length=20,
            ),
        ),
        ops.AddField(
            model_name="Site",
            name="alipay_enabled",
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name="Site",
            name="recharge_choices_fen",
            field=fields.JSONField(
                default=default_recharge_choices,
                encoder=functools.partial(dumps, separators=(",", ":")),
                decoder=loads,
            ),
        ),
        ops.AddField(
            model_name="Site",
            name="recharge_max_fen",
            field=fields.BigIntField(default=1000000),
        ),
        ops.AddField(
            model_name="Site",
            name="recharge_min_fen",
            field=fields.BigIntField(default=1000),
        ),
        ops.AlterModelOptions(
            name="TenantIdentity",
            options={
                "table": "tenant_identity",
                "app": "models",
                "unique_together": (("app", "openid"),),
                "pk_attr": "id",
                "table_description": "A WeChat user of one of our apps: (app, openid), with the unionid when WeChat gives it,",
            },
        ),
        ops.AlterField(
            model_name="TenantIdentity",
            name="openid",
            field=fields.CharField(max_length=64),
        ),
        ops.AddField(
            model_name="TenantIdentity",
            name="app",
            field=fields.CharEnumField(
                default=TenantApp.MINIAPP,
                description="MINIAPP: miniapp\nOFFICIAL: official",
                enum_type=TenantApp,
                max_length=10,
            ),
        ),
        ops.AddField(
            model_name="TenantIdentity",
            name="last_login_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddConstraint(
            model_name="TenantIdentity",
            constraint=UniqueConstraint(fields=("app", "openid"), name=None),
        ),
    ]
