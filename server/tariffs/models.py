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
