"""Devices in the admin (issue #13): a gateway (bus) can be retired, keeping its meters'
history; a meter knows its room whether or not the room has a tenant (the account opened
there later finds it). The AdminUser AlterField only brings the role column's description up
to date (the viewer role came with the admin's groundwork). Meters already on an account
take the account's room.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from server.staff.models import StaffRole
from tortoise.fields.base import OnDelete
from tortoise import fields

from server.core.migration_sql import per_dialect

ROOM_OF_ACCOUNT = [
    "UPDATE meter SET room_id = (SELECT room_id FROM account WHERE account.id = meter.account_id)"
    " WHERE account_id IS NOT NULL",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0016_structure_admin")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="AdminUser",
            name="role",
            field=fields.CharEnumField(
                description="SUPERADMIN: superadmin\nORG_ADMIN: org_admin\nFINANCE: finance\nOPERATOR: operator\nSITE_ADMIN: site_admin\nVIEWER: viewer",
                enum_type=StaffRole,
                max_length=16,
            ),
        ),
        ops.AddField(
            model_name="Gateway",
            name="retired_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Meter",
            name="room",
            field=fields.ForeignKeyField(
                "models.Room",
                source_field="room_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="meters",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        per_dialect(postgres=ROOM_OF_ACCOUNT, sqlite=ROOM_OF_ACCOUNT),
    ]
