"""Live values and daily usage: the ground the admin's room monitoring and the mini-program
stand on.

- `meter_live`: one row per meter (unique meter_id), the latest U, I, P, PF, total register,
  relay/valve state and read time, upserted in place by the collector's batches.
- `daily_usage`: one row per (meter, local day), quantity per TOU band in 0.0001 kWh / m³
  units and the fen the platform charged; unique (meter_id, day) is also the index a
  meter's days are read by; `daily_usage_account_day_idx` serves an account's days.
- PostgreSQL: fillfactor 50 on both, for heap-only updates (see HOT below).

Existing readings and charges are not copied here: `shuidian usage backfill` does that
(idempotent), so the migration stays quick on a large reading table.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect
from server.metering.models import RelayState

INDEXES = ["CREATE INDEX daily_usage_account_day_idx ON daily_usage (account_id, day)"]
# Rows updated all day (today's usage twice per reading batch, the live row once): room on the
# page for a second version keeps the updates heap-only, as 0010 does for account. A past day
# is never updated again, so its pages stay half empty: daily_usage is one row per meter and
# day, about 1/100 of meter_reading, so twice that is still small.
HOT = [
    "ALTER TABLE daily_usage SET (fillfactor = 50)",
    "ALTER TABLE meter_live SET (fillfactor = 50)",
]


def _e4() -> fields.BigIntField:
    return fields.BigIntField(default=0)


def _dec() -> fields.DecimalField:
    return fields.DecimalField(null=True, max_digits=12, decimal_places=4)


class Migration(migrations.Migration):
    dependencies = [("models", "0011_billing_state_on_account")]

    initial = False

    operations = [
        ops.CreateModel(
            name="DailyUsage",
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
                        related_name="daily_usage",
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
                        related_name="daily_usage",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("day", fields.DateField()),
                ("quantity_e4", _e4()),
                ("band1_e4", _e4()),
                ("band2_e4", _e4()),
                ("band3_e4", _e4()),
                ("band4_e4", _e4()),
                ("band5_e4", _e4()),
                ("amount_fen", fields.BigIntField(null=True)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "daily_usage",
                "app": "models",
                "unique_together": (("meter", "day"),),
                "pk_attr": "id",
                "table_description": "One meter's use on one local day (settings.timezone), per TOU band, and the money the",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LiveValues",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "meter",
                    fields.OneToOneField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="live",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("read_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("total", fields.DecimalField(max_digits=14, decimal_places=4)),
                (
                    "relay_state",
                    fields.CharEnumField(
                        default=RelayState.UNKNOWN,
                        description="CLOSED: closed\nOPEN: open\nUNKNOWN: unknown",
                        enum_type=RelayState,
                        max_length=10,
                    ),
                ),
                (
                    "instant_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("voltage", _dec()),
                ("current", _dec()),
                ("power", _dec()),
                ("power_factor", _dec()),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "meter_live",
                "app": "models",
                "pk_attr": "id",
                "table_description": "The latest values read from one meter: one row per meter, updated in place by",
            },
            bases=["Model"],
        ),
        per_dialect(postgres=INDEXES + HOT, sqlite=INDEXES),
    ]
