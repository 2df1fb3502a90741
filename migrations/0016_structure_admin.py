"""The park's structure in the admin (issue #13): a room's use (商铺/办公/公寓/公共, default
office), and a retirement time on sites, buildings, floors and rooms — staff retire
structure instead of deleting it, so accounts, meters and the operation log keep pointing at
something readable.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from server.places.models import RoomUse


def _retired(model: str) -> ops.AddField:
    return ops.AddField(
        model_name=model,
        name="retired_at",
        field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0015_ledger_statement")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Room",
            name="use",
            field=fields.CharEnumField(
                description="SHOP: shop\nOFFICE: office\nAPARTMENT: apartment\nCOMMON: common",
                enum_type=RoomUse,
                default=RoomUse.OFFICE,
                max_length=10,
            ),
        ),
        _retired("Room"),
        _retired("Floor"),
        _retired("Building"),
        _retired("Site"),
    ]
