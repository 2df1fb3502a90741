"""The notifier (issue #16): `notify_message` (one row per message and recipient: its
delivery log) and `notify_preference` (an account's channels switched off).

Indexes beside the model's: the claim's, partial on the rows a notifier may claim (queued,
or sending with a lease that may lapse), so the sent and failed history is never walked;
(account_id, created_at) for de-duplication and the delivery log; (recipient, created_at)
for the hourly rate limit and the search by phone.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.notify.models import Channel, MessageState
from tortoise.fields.base import OnDelete
from tortoise import fields
from server.core.migration_sql import per_dialect

INDEXES = [
    "CREATE INDEX notify_message_due_idx ON notify_message (next_attempt_at, id)"
    " WHERE state IN ('queued', 'sending')",
    "CREATE INDEX notify_message_account_idx ON notify_message (account_id, created_at)",
    "CREATE INDEX notify_message_recipient_idx ON notify_message (recipient, created_at)",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0017_devices")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Message",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "channel",
                    fields.CharEnumField(
                        description="SMS: sms\nEMAIL: email\nWECHAT: wechat",
                        enum_type=Channel,
                        max_length=8,
                    ),
                ),
                ("recipient", fields.CharField(max_length=128)),
                ("template", fields.CharField(max_length=48)),
                ("topic", fields.CharField(max_length=64)),
                (
                    "params",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("text", fields.CharField(max_length=500)),
                (
                    "state",
                    fields.CharEnumField(
                        default=MessageState.QUEUED,
                        description="QUEUED: queued\nSENDING: sending\nSENT: sent\nDELIVERED: delivered\nFAILED: failed",
                        enum_type=MessageState,
                        max_length=10,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("next_attempt_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "claimed_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("provider", fields.CharField(default="", max_length=16)),
                ("provider_id", fields.CharField(default="", max_length=64)),
                ("error_code", fields.CharField(default="", max_length=64)),
                ("error_reason", fields.CharField(default="", max_length=300)),
                ("dedup_key", fields.CharField(null=True, unique=True, max_length=200)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "notify_message",
                "app": "models",
                "pk_attr": "id",
                "table_description": "One message to one recipient over one channel: its row is its delivery log.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Preference",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notify_preferences",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "channel",
                    fields.CharEnumField(
                        description="SMS: sms\nEMAIL: email\nWECHAT: wechat",
                        enum_type=Channel,
                        max_length=8,
                    ),
                ),
                ("enabled", fields.BooleanField(default=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "notify_preference",
                "app": "models",
                "unique_together": (("account", "channel"),),
                "pk_attr": "id",
                "table_description": "An account's choice for one channel (no row: the channel is on).",
            },
            bases=["Model"],
        ),
        per_dialect(postgres=INDEXES, sqlite=INDEXES),
    ]
