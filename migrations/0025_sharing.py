"""Common-area sharing and line losses (issue #17, server/sharing/): `sharing_pool` (a site's
common account on one master meter, priced by a tariff plan), `sharing_member` (the accounts
sharing it, with their fixed ratio), `sharing_run` (one pool's period as posted, unique per
pool and period) and `loss_period` (one site's period of losses, unique per site and period).
"""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.sharing.allocation import Method

_JSON = {"encoder": functools.partial(dumps, separators=(",", ":")), "decoder": loads}
_METHOD = "RATIO: ratio\nAREA: area\nUSAGE: usage\nEQUAL: equal"


def _id() -> fields.IntField:
    return fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)


def _fk(model: str, name: str, related: str, on_delete: str = OnDelete.RESTRICT) -> fields.Field:
    return fields.ForeignKeyField(
        f"models.{model}", source_field=f"{name}_id", db_constraint=True, to_field="id",
        related_name=related, on_delete=on_delete,
    )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("models", "0024_monitor_indexes")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SharingPool",
            fields=[
                ("id", _id()),
                ("site", _fk("Site", "site", "sharing_pools")),
                ("name", fields.CharField(max_length=100)),
                ("master_meter", _fk("Meter", "master_meter", "sharing_pools")),
                ("plan", _fk("TariffPlan", "plan", "sharing_pools")),
                ("method", fields.CharEnumField(default=Method.AREA, description=_METHOD, enum_type=Method, max_length=8)),
                ("created_by", fields.CharField(max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("retired_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "sharing_pool", "app": "models", "unique_together": (("site", "name"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SharingMember",
            fields=[
                ("id", _id()),
                ("pool", _fk("SharingPool", "pool", "members", OnDelete.CASCADE)),
                ("account", _fk("Account", "account", "sharing_members")),
                ("ratio", fields.DecimalField(default=1, max_digits=12, decimal_places=4)),
            ],
            options={"table": "sharing_member", "app": "models", "unique_together": (("pool", "account"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SharingRun",
            fields=[
                ("id", _id()),
                ("pool", _fk("SharingPool", "pool", "runs")),
                ("period", fields.CharField(max_length=7)),
                ("method", fields.CharEnumField(description=_METHOD, enum_type=Method, max_length=8)),
                ("quantity", fields.CharField(max_length=40)),
                ("exact_yuan", fields.CharField(max_length=64)),
                ("amount_fen", fields.BigIntField()),
                ("lines", fields.JSONField(default=list, **_JSON)),
                ("created_by", fields.CharField(max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "sharing_run", "app": "models", "unique_together": (("pool", "period"),), "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LossPeriod",
            fields=[
                ("id", _id()),
                ("site", _fk("Site", "site", "loss_periods")),
                ("period", fields.CharField(max_length=7)),
                ("start_reading", fields.CharField(max_length=40)),
                ("end_reading", fields.CharField(max_length=40)),
                ("multiplier", fields.IntField(default=1)),
                ("bill_fen", fields.BigIntField()),
                ("own_use_kwh", fields.CharField(default="0", max_length=40)),
                ("method", fields.CharEnumField(default=Method.USAGE, description=_METHOD, enum_type=Method, max_length=8)),
                ("cap", fields.CharField(default="0.10", max_length=12)),
                ("figures", fields.JSONField(default=dict, **_JSON)),
                ("lines", fields.JSONField(default=list, **_JSON)),
                ("created_by", fields.CharField(max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "loss_period", "app": "models", "unique_together": (("site", "period"),), "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
