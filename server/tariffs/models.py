"""Tariff persistence: plans, their immutable versions, and which plan an account is on.

A `TariffPlan` is named per site and is for electricity or water. Its prices live in
`TariffVersion` rows: `spec` is the plan's JSON form (server.tariffs.schemas, validated by
`to_plan` before it is stored) in force from `effective_from`. Versions are never edited: a
price change is a new version effective now or later, so a bill can always be re-priced.

Assignment: `TariffAssignment` (account, kind) → plan, one row per utility, because one
account may have electricity and water meters priced by different plans. Every meter of that
kind on the account is billed under the assigned plan.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class TariffKind(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"


class TariffPlan(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="tariff_plans", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    kind = fields.CharEnumField(TariffKind, max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tariff_plan"
        unique_together = (("site", "name"),)


class TariffVersion(Model):
    id = fields.IntField(primary_key=True)
    plan: fields.ForeignKeyRelation[TariffPlan] = fields.ForeignKeyField(
        "models.TariffPlan", related_name="versions", on_delete=fields.RESTRICT
    )
    effective_from = fields.DatetimeField()
    spec = fields.JSONField()
    created_by = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    # The meter batch that writes this version's prices into meter-billed meters, if any.
    batch_id = fields.IntField(null=True)

    class Meta:
        table = "tariff_version"
        unique_together = (("plan", "effective_from"),)


class TariffAssignment(Model):
    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="tariff_assignments", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(TariffKind, max_length=16)
    plan: fields.ForeignKeyRelation[TariffPlan] = fields.ForeignKeyField(
        "models.TariffPlan", related_name="assignments", on_delete=fields.RESTRICT
    )
    assigned_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tariff_assignment"
        unique_together = (("account", "kind"),)


class DemandSource(StrEnum):
    STAFF = "staff"  # entered by staff from the grid's or the meter's display
    METER = "meter"  # read from the meter (DL/T 645 maximum-demand data identifiers)


class AccountCapacity(Model):
    """An account's transformer capacity (kVA), what a two-part plan by capacity levies on."""

    id = fields.IntField(primary_key=True)
    account: fields.OneToOneRelation = fields.OneToOneField(
        "models.Account", related_name="capacity", on_delete=fields.CASCADE
    )
    kva = fields.DecimalField(max_digits=12, decimal_places=2)
    updated_by = fields.CharField(max_length=64, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tariff_capacity"


class DemandEntry(Model):
    """An account's maximum demand (kW) in a month ("YYYY-MM"), for plans by demand."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="demand_entries", on_delete=fields.CASCADE
    )
    month = fields.CharField(max_length=7)
    kw = fields.DecimalField(max_digits=14, decimal_places=3)
    source = fields.CharEnumField(DemandSource, max_length=8, default=DemandSource.STAFF)
    entered_by = fields.CharField(max_length=64, default="")
    entered_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tariff_demand"
        unique_together = (("account", "month"),)


class CapacityLevy(Model):
    """A month's basic charge levied on an account (server.tariffs.levy): what it was levied
    on and the ledger transaction that charged it (same key). UNIQUE (account, month)."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="capacity_levies", on_delete=fields.RESTRICT
    )
    month = fields.CharField(max_length=7)
    plan: fields.ForeignKeyRelation[TariffPlan] = fields.ForeignKeyField(
        "models.TariffPlan", related_name="levies", on_delete=fields.RESTRICT
    )
    basis = fields.CharField(max_length=16)  # plans.ChargeBasis
    quantity = fields.DecimalField(max_digits=14, decimal_places=3)  # kVA or kW
    rate = fields.DecimalField(max_digits=14, decimal_places=5)
    amount = fields.DecimalField(max_digits=30, decimal_places=8)  # exact yuan
    amount_fen = fields.BigIntField()
    ledger_key = fields.CharField(max_length=64)
    transaction_id = fields.BigIntField(null=True)  # None when the charge was ¥0
    levied_by = fields.CharField(max_length=64)
    levied_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tariff_levy"
        unique_together = (("account", "month"),)
