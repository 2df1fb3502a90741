"""Where things are: organisation (集团) → site (园区/项目) → building → floor → room.

Structure cascades downwards (deleting an empty building removes its floors and rooms), but a
room that has an account cannot be deleted: accounts hold money history (RESTRICT there).
Staff never delete structure: they retire it (`retired_at`), so its history stays readable.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from server.places.vocabulary import RoomUse

__all__ = ["Building", "Floor", "Organisation", "Room", "RoomUse", "Site"]


def default_recharge_choices() -> list[int]:
    return [5_000, 10_000, 20_000, 50_000, 100_000]  # ¥50, ¥100, ¥200, ¥500, ¥1,000


class Organisation(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organisation"


class Site(Model):
    id = fields.IntField(primary_key=True)
    organisation: fields.ForeignKeyRelation[Organisation] = fields.ForeignKeyField(
        "models.Organisation", related_name="sites", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    address = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    # What the tenant's recharge page offers (fen): the choices, and the custom amount's limits
    # (inside the platform's own, SHUIDIAN_PAY_MIN/MAX_RECHARGE_FEN). Alipay on the H5 page
    # only where the site enables it.
    recharge_choices_fen = fields.JSONField(default=default_recharge_choices)
    recharge_min_fen = fields.BigIntField(default=1_000)
    recharge_max_fen = fields.BigIntField(default=1_000_000)
    alipay_enabled = fields.BooleanField(default=False)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "site"
        unique_together = (("organisation", "name"),)


class Building(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation[Site] = fields.ForeignKeyField(
        "models.Site", related_name="buildings", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=100)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "building"
        unique_together = (("site", "name"),)


class Floor(Model):
    id = fields.IntField(primary_key=True)
    building: fields.ForeignKeyRelation[Building] = fields.ForeignKeyField(
        "models.Building", related_name="floors", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=50)
    sort_order = fields.IntField(default=0)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "floor"
        unique_together = (("building", "name"),)


class Room(Model):
    id = fields.IntField(primary_key=True)
    floor: fields.ForeignKeyRelation[Floor] = fields.ForeignKeyField(
        "models.Floor", related_name="rooms", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=50)
    area_m2 = fields.DecimalField(max_digits=10, decimal_places=2, default=0)
    use = fields.CharEnumField(RoomUse, max_length=10, default=RoomUse.OFFICE)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "room"
        unique_together = (("floor", "name"),)
