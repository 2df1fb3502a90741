"""Review of held readings and 换表 chains (issue #14):

- a held reading keeps who accepted or rejected it, when, and why (`decided_by`,
  `decided_at`, `decision`), and the review queue is read by status, newest first;
- a meter knows the meter it replaced (`replaces_id`, set by the replacement service), so its
  page links to the predecessor and the successor and its usage chart follows the chain.
Existing rows: nothing decided, nothing replaced (the log's `meter.replaced` entries of
earlier swaps are linked below from their detail's new_meter_id).
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect

INDEXES = [
    "CREATE INDEX meter_replaces_idx ON meter (replaces_id) WHERE replaces_id IS NOT NULL",
    "CREATE INDEX held_reading_status_idx ON held_reading (status, created_at)",
]
_NEW = {"postgres": "(l.detail->>'new_meter_id')::int", "sqlite": "json_extract(l.detail, '$.new_meter_id')"}


def _link(dialect: str) -> str:
    return (
        "UPDATE meter SET replaces_id = (SELECT CAST(l.target_id AS INTEGER) FROM operation_log l"
        f" WHERE l.action = 'meter.replaced' AND {_NEW[dialect]} = meter.id LIMIT 1)"
        " WHERE replaces_id IS NULL AND EXISTS (SELECT 1 FROM operation_log l"
        f" WHERE l.action = 'meter.replaced' AND {_NEW[dialect]} = meter.id)"
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0020_staff_contacts")]

    initial = False

    operations = [
        ops.AddField(
            model_name="HeldReading",
            name="decided_by",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="HeldReading",
            name="decided_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="HeldReading",
            name="decision",
            field=fields.CharField(null=True, max_length=300),
        ),
        ops.AddField(
            model_name="Meter",
            name="replaces",
            field=fields.ForeignKeyField(
                "models.Meter",
                source_field="replaces_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="successors",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        per_dialect(
            postgres=[*INDEXES, _link("postgres")], sqlite=[*INDEXES, _link("sqlite")]
        ),
    ]
