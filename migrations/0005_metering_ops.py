"""Metering operations: readings (unique per meter and collection time), held readings,
durable meter commands, alarm state and records, site metering policy, meter-billed
reconciliation; the meter's confirmed relay cause and money register mirror.

The partial index finds each meter's open (queued or sent) commands, the controller's query.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.metering.models import (
    BillingStatus,
    CommandOp,
    CommandStatus,
    ReadingSource,
    ReviewStatus,
)
from tortoise.fields.base import OnDelete
from tortoise import fields

from server.core.migration_sql import per_dialect

OPEN_COMMANDS = (
    "CREATE INDEX meter_command_open_idx ON meter_command (meter_id, id)"
    " WHERE status IN ('queued', 'sent')"
)
PENDING_BILLING = (
    "CREATE INDEX meter_reading_pending_idx ON meter_reading (id) WHERE billing = 'pending'"
)


class Migration(migrations.Migration):
    dependencies = [("models", "0004_money_core")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AccountAlarmState",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "account",
                    fields.OneToOneField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="alarm_state",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "state",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "override",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("daily_use_fen", fields.CharField(null=True, max_length=40)),
                (
                    "deferred_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "account_alarm_state",
                "app": "models",
                "pk_attr": "id",
                "table_description": "`alarms.AlarmState` of one account, its per-account override, and the forecast rate.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AlarmRecord",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="alarms",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("kind", fields.CharField(max_length=16)),
                ("level", fields.IntField()),
                ("balance_fen", fields.BigIntField()),
                ("message", fields.CharField(max_length=200)),
                (
                    "created_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "notified_at",
                    fields.DatetimeField(
                        null=True, db_index=True, auto_now=False, auto_now_add=False
                    ),
                ),
            ],
            options={
                "table": "alarm_record",
                "app": "models",
                "pk_attr": "id",
                "table_description": "An alarm for the tenant, handed to the notifier (`notified_at` is the notifier's).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="HeldReading",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "meter",
                    fields.ForeignKeyField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="held_readings",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("taken_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("total", fields.DecimalField(max_digits=14, decimal_places=4)),
                (
                    "bands",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("outcome", fields.CharField(max_length=16)),
                ("reason", fields.CharField(max_length=300)),
                (
                    "source",
                    fields.CharEnumField(
                        description="POLL: poll\nREAD_NOW: read_now\nGATEWAY: gateway\nHISTORY: history\nMANUAL: manual",
                        enum_type=ReadingSource,
                        max_length=10,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=ReviewStatus.OPEN,
                        description="OPEN: open\nACCEPTED: accepted\nREJECTED: rejected",
                        enum_type=ReviewStatus,
                        max_length=10,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "held_reading",
                "app": "models",
                "unique_together": (("meter", "taken_at"),),
                "pk_attr": "id",
                "table_description": "A reading held for review (conflict, reset, implausible jump): stored, never billed.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MeterCommand",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "meter",
                    fields.ForeignKeyField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="commands",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "op",
                    fields.CharEnumField(
                        description="TRIP: trip\nCLOSE: close\nCLOSE_ALLOWED: close_allowed\nPROTECT_ON: protect_on\nPROTECT_OFF: protect_off\nRECHARGE: recharge\nREAD: read\nPRICES: prices\nALARM_AMOUNTS: alarm_amounts",
                        enum_type=CommandOp,
                        max_length=16,
                    ),
                ),
                (
                    "params",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=CommandStatus.QUEUED,
                        description="QUEUED: queued\nSENT: sent\nACKED: acked\nFAILED: failed\nEXPIRED: expired",
                        enum_type=CommandStatus,
                        max_length=8,
                    ),
                ),
                ("key", fields.CharField(null=True, unique=True, max_length=160)),
                ("actor", fields.CharField(max_length=64)),
                ("reason", fields.CharField(default="", max_length=300)),
                ("batch_id", fields.CharField(null=True, db_index=True, max_length=64)),
                ("attempts", fields.IntField(default=0)),
                ("max_attempts", fields.IntField(default=5)),
                ("last_error", fields.CharField(default="", max_length=500)),
                (
                    "result",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "next_attempt_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "meter_command",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A command to a meter: a durable row first, then work for the controller.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MeteringPolicy",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.OneToOneField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="metering_policy",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("poll_interval_s", fields.IntField(default=900)),
                ("offline_after", fields.IntField(default=3)),
                (
                    "alarm",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
            ],
            options={
                "table": "metering_policy",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A site's collection and alarm rules (absent: the defaults).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Reading",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "meter",
                    fields.ForeignKeyField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="readings",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("taken_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("total", fields.DecimalField(max_digits=14, decimal_places=4)),
                (
                    "bands",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("outcome", fields.CharField(max_length=16)),
                (
                    "source",
                    fields.CharEnumField(
                        description="POLL: poll\nREAD_NOW: read_now\nGATEWAY: gateway\nHISTORY: history\nMANUAL: manual",
                        enum_type=ReadingSource,
                        max_length=10,
                    ),
                ),
                (
                    "billing",
                    fields.CharEnumField(
                        default=BillingStatus.NONE,
                        description="NONE: none\nPENDING: pending\nBILLED: billed\nFAILED: failed",
                        enum_type=BillingStatus,
                        max_length=8,
                    ),
                ),
                (
                    "prev_taken_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("energy", fields.CharField(default="0", max_length=40)),
                ("billing_error", fields.CharField(default="", max_length=200)),
                ("money_fen", fields.BigIntField(null=True)),
                ("purchase_count", fields.IntField(null=True)),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "meter_reading",
                "app": "models",
                "unique_together": (("meter", "taken_at"),),
                "pk_attr": "id",
                "table_description": "An accepted register reading (raw, before CT×PT). Unique by (meter, taken_at): the",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ReconciliationItem",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "meter",
                    fields.ForeignKeyField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="reconciliations",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("day", fields.DateField()),
                ("kind", fields.CharField(max_length=24)),
                ("meter_count", fields.IntField(null=True)),
                ("platform_count", fields.IntField(null=True)),
                ("meter_fen", fields.BigIntField(null=True)),
                ("platform_fen", fields.BigIntField(null=True)),
                ("detail", fields.CharField(default="", max_length=300)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "meter_reconciliation",
                "app": "models",
                "unique_together": (("meter", "day", "kind"),),
                "pk_attr": "id",
                "table_description": "One difference (or a clean match) between a meter-billed meter and the platform.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Meter",
            name="last_reading_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Meter",
            name="money_fen",
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name="Meter",
            name="money_read_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Meter",
            name="purchase_count",
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name="Meter",
            name="relay_confirmed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Meter",
            name="trip_cause",
            field=fields.CharField(null=True, max_length=16),
        ),
        per_dialect(
            postgres=[OPEN_COMMANDS, PENDING_BILLING], sqlite=[OPEN_COMMANDS, PENDING_BILLING]
        ),
    ]
