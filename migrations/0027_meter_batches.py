"""Batch operations (批量操作, issue #15): `meter_batch` (one action on many meters of a site,
now or at `run_at`; the row is the schedule a worker releases) and `meter_batch_item` (one
meter of a batch and the command carrying it). The controller looks for due batches by
(status, run_at); a batch's page reads its items by batch, their commands by id.
"""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect
from server.metering.models import BatchAction, BatchItemState, BatchStatus


def _json(default: type) -> fields.JSONField:
    return fields.JSONField(
        default=default, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
    )


INDEXES = ["CREATE INDEX meter_batch_item_command_idx ON meter_batch_item (command_id)"]


class Migration(migrations.Migration):
    dependencies = [("models", "0026_invoices")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MeterBatch",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="meter_batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("action", fields.CharEnumField(enum_type=BatchAction, max_length=16)),
                ("params", _json(dict)),
                ("title", fields.CharField(default="", max_length=100)),
                ("selection", _json(dict)),
                (
                    "status",
                    fields.CharEnumField(
                        default=BatchStatus.SCHEDULED, enum_type=BatchStatus, max_length=10
                    ),
                ),
                ("run_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_by", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "released_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("outcome", _json(dict)),
            ],
            options={
                "table": "meter_batch",
                "app": "models",
                "indexes": (("status", "run_at"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MeterBatchItem",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True)),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "models.MeterBatch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="items",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "meter",
                    fields.ForeignKeyField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="batch_items",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "command",
                    fields.ForeignKeyField(
                        "models.MeterCommand",
                        source_field="command_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="batch_items",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "state",
                    fields.CharEnumField(
                        default=BatchItemState.PENDING, enum_type=BatchItemState, max_length=10
                    ),
                ),
                ("tries", fields.IntField(default=0)),
                ("error", fields.CharField(default="", max_length=300)),
            ],
            options={
                "table": "meter_batch_item",
                "app": "models",
                "unique_together": (("batch", "meter"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        per_dialect(postgres=INDEXES, sqlite=INDEXES),
    ]
