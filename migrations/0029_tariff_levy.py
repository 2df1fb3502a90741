"""The two-part plan's basic charge (issue #15, server/tariffs/levy.py): an account's
transformer capacity (`tariff_capacity`, kVA, one row per account), a month's maximum demand
(`tariff_demand`, kW, one per account and month, entered by staff or read from the meter),
and what was levied (`tariff_levy`, UNIQUE account + month: the levy's record beside the
ledger transaction under the same idempotency key). A tariff version remembers the meter
batch that wrote its prices into meter-billed meters (`tariff_version.batch_id`).
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.tariffs.models import DemandSource


def _account(related_name: str, on_delete: OnDelete, *, one: bool = False) -> fields.Field:
    field = fields.OneToOneField if one else fields.ForeignKeyField
    return field(
        "models.Account", source_field="account_id", db_constraint=True, to_field="id",
        related_name=related_name, on_delete=on_delete,
    )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("models", "0028_reports")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AccountCapacity",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                ("account", _account("capacity", OnDelete.CASCADE, one=True)),
                ("kva", fields.DecimalField(max_digits=12, decimal_places=2)),
                ("updated_by", fields.CharField(default="", max_length=64)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "tariff_capacity", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DemandEntry",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                ("account", _account("demand_entries", OnDelete.CASCADE)),
                ("month", fields.CharField(max_length=7)),
                ("kw", fields.DecimalField(max_digits=14, decimal_places=3)),
                (
                    "source",
                    fields.CharEnumField(
                        default=DemandSource.STAFF, enum_type=DemandSource, max_length=8
                    ),
                ),
                ("entered_by", fields.CharField(default="", max_length=64)),
                ("entered_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "tariff_demand",
                "app": "models",
                "unique_together": (("account", "month"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CapacityLevy",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                ("account", _account("capacity_levies", OnDelete.RESTRICT)),
                ("month", fields.CharField(max_length=7)),
                (
                    "plan",
                    fields.ForeignKeyField(
                        "models.TariffPlan", source_field="plan_id", db_constraint=True,
                        to_field="id", related_name="levies", on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("basis", fields.CharField(max_length=16)),
                ("quantity", fields.DecimalField(max_digits=14, decimal_places=3)),
                ("rate", fields.DecimalField(max_digits=14, decimal_places=5)),
                ("amount", fields.DecimalField(max_digits=30, decimal_places=8)),
                ("amount_fen", fields.BigIntField()),
                ("ledger_key", fields.CharField(max_length=64)),
                ("transaction_id", fields.BigIntField(null=True)),
                ("levied_by", fields.CharField(max_length=64)),
                ("levied_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "tariff_levy",
                "app": "models",
                "unique_together": (("account", "month"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="TariffVersion", name="batch_id", field=fields.IntField(null=True)
        ),
    ]
