"""Common-area sharing (公摊) and line losses (线变损): what staff set up and what each period's
run decided.

A `SharingPool` is a site's common account for one master meter (lifts, corridor lighting,
pumps): it has no tenant and no wallet. The master meter stays off every account
(`meter.account_id` is NULL), so ingest measures its readings into daily usage and never
bills them (a reading is billable only on an account); its period use is priced here, at the
pool's tariff plan (the master meter's tariff), and shared over the pool's members.

A `SharingRun` is one pool's period (unique per pool and period): its priced use and the
share of each member as posted to the ledger (charge type COMMON_SHARE, one transaction per
member under the key `share:<pool>:<period>:<account>`). A `LossPeriod` is one site's period
of losses: the grid figures staff entered, the balance, and the shares (LOSS_SHARE, key
`loss:<site>:<period>:<account>`). Both keep their lines as posted; the ledger keys make a
re-run a no-op.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from server.sharing.allocation import Method


class SharingPool(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="sharing_pools", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    master_meter: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Meter", related_name="sharing_pools", on_delete=fields.RESTRICT
    )
    plan: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.TariffPlan", related_name="sharing_pools", on_delete=fields.RESTRICT
    )
    method = fields.CharEnumField(Method, max_length=8, default=Method.AREA)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sharing_pool"
        unique_together = (("site", "name"),)


class SharingMember(Model):
    id = fields.IntField(primary_key=True)
    pool: fields.ForeignKeyRelation[SharingPool] = fields.ForeignKeyField(
        "models.SharingPool", related_name="members", on_delete=fields.CASCADE
    )
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="sharing_members", on_delete=fields.RESTRICT
    )
    ratio = fields.DecimalField(max_digits=12, decimal_places=4, default=1)

    class Meta:
        table = "sharing_member"
        unique_together = (("pool", "account"),)


class SharingRun(Model):
    id = fields.IntField(primary_key=True)
    pool: fields.ForeignKeyRelation[SharingPool] = fields.ForeignKeyField(
        "models.SharingPool", related_name="runs", on_delete=fields.RESTRICT
    )
    period = fields.CharField(max_length=7)  # "2026-11"
    method = fields.CharEnumField(Method, max_length=8)
    quantity = fields.CharField(max_length=40)  # the master meter's kWh (exact text)
    exact_yuan = fields.CharField(max_length=64)  # priced, before rounding to fen
    amount_fen = fields.BigIntField()
    # [{"account_id", "number", "tenant_name", "weight", "quantity", "amount_fen"}]
    lines = fields.JSONField(default=list)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sharing_run"
        unique_together = (("pool", "period"),)


class LossPeriod(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="loss_periods", on_delete=fields.RESTRICT
    )
    period = fields.CharField(max_length=7)
    start_reading = fields.CharField(max_length=40)
    end_reading = fields.CharField(max_length=40)
    multiplier = fields.IntField(default=1)
    bill_fen = fields.BigIntField()
    own_use_kwh = fields.CharField(max_length=40, default="0")
    method = fields.CharEnumField(Method, max_length=8, default=Method.USAGE)
    cap = fields.CharField(max_length=12, default="0.10")
    # the balance as computed when posted: {"grid_kwh", "tenant_kwh", …, "loss_fen"}
    figures = fields.JSONField(default=dict)
    lines = fields.JSONField(default=list)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "loss_period"
        unique_together = (("site", "period"),)


class LossEntryRecord(Model):
    """A period's grid figures entered ahead of the monthly run (录入): the property run's
    losses step posts them through `run_losses`, which keeps them as a `LossPeriod`."""

    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="loss_entries", on_delete=fields.RESTRICT
    )
    period = fields.CharField(max_length=7)
    start_reading = fields.CharField(max_length=40)
    end_reading = fields.CharField(max_length=40)
    multiplier = fields.IntField(default=1)
    bill_fen = fields.BigIntField()
    own_use_kwh = fields.CharField(max_length=40, default="0")
    method = fields.CharEnumField(Method, max_length=8, default=Method.USAGE)
    cap = fields.CharField(max_length=12, default="0.10")
    entered_by = fields.CharField(max_length=100)
    entered_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "loss_entry"
        unique_together = (("site", "period"),)
