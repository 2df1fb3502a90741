"""Recipients per account (issue #16): an account's further recipients beside its owner
(`notify_recipient`: its accountant or a member of staff, by phone and e-mail), and
preferences per message kind (`notify_preference` gains `kind` — "" for every kind, the rows
written before — and `contact_id`); its uniqueness index now spans both.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect
from server.notify.models import Role

_INDEX = [
    "DROP INDEX IF EXISTS notify_preference_who_uniq",
    "CREATE UNIQUE INDEX notify_preference_who_uniq ON notify_preference"
    " (COALESCE(account_id, 0), COALESCE(staff_id, 0), COALESCE(contact_id, 0), role, kind,"
    " channel)",
    "CREATE INDEX notify_recipient_account_idx ON notify_recipient (account_id)",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0030_property")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Contact",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notify_contacts",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "role",
                    fields.CharEnumField(enum_type=Role, default=Role.ACCOUNTANT, max_length=10),
                ),
                ("name", fields.CharField(max_length=32)),
                ("phone", fields.CharField(default="", max_length=20)),
                ("email", fields.CharField(default="", max_length=128)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "notify_recipient", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Preference",
            name="kind",
            field=fields.CharField(default="", max_length=16),
        ),
        ops.AddField(
            model_name="Preference",
            name="contact",
            field=fields.ForeignKeyField(
                "models.Contact",
                source_field="contact_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="preferences",
                on_delete=OnDelete.CASCADE,
            ),
        ),
        per_dialect(postgres=_INDEX, sqlite=_INDEX),
    ]
