"""The rest of the notifier (issue #16): voice and official-account channels (no schema
change: `channel` is text), each message's recipient role and delivery receipt
(`role`, `delivered_at`, `receipt_polls`), per-recipient preferences (`notify_preference`
gains `staff_id` and `role`; `account_id` becomes optional, and its uniqueness moves from
(account, channel) to an expression index over (account, staff, role, channel)), per
organisation template overrides (`notify_template`) and per-site quiet hours for voice
(`notify_site_setting`).

SQLite cannot drop a table's inline UNIQUE nor relax NOT NULL: the preference table is
rebuilt there (same columns, rows copied).
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect
from server.notify.models import Role

_UNIQUE = (
    "CREATE UNIQUE INDEX notify_preference_who_uniq ON notify_preference"
    " (COALESCE(account_id, 0), COALESCE(staff_id, 0), role, channel)"
)
_RECEIPTS = (
    "CREATE INDEX notify_message_receipt_idx ON notify_message (sent_at)"
    " WHERE state = 'sent' AND provider IN ('aliyun', 'tencent')"
)
POSTGRES = [
    """DO $$ DECLARE c text; BEGIN
      FOR c IN SELECT conname FROM pg_constraint
               WHERE conrelid = 'notify_preference'::regclass AND contype = 'u' LOOP
        EXECUTE 'ALTER TABLE notify_preference DROP CONSTRAINT ' || quote_ident(c);
      END LOOP;
    END $$""",
    "ALTER TABLE notify_preference ALTER COLUMN account_id DROP NOT NULL",
    _UNIQUE,
    _RECEIPTS,
]
SQLITE = [
    """CREATE TABLE notify_preference_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
        account_id INT REFERENCES account (id) ON DELETE CASCADE,
        staff_id INT REFERENCES admin_user (id) ON DELETE CASCADE,
        role VARCHAR(10) NOT NULL DEFAULT 'owner',
        channel VARCHAR(8) NOT NULL,
        enabled INT NOT NULL DEFAULT 1,
        updated_at TIMESTAMP NOT NULL
    )""",
    "INSERT INTO notify_preference_new (id, account_id, staff_id, role, channel, enabled,"
    " updated_at) SELECT id, account_id, staff_id, role, channel, enabled, updated_at"
    " FROM notify_preference",
    "DROP TABLE notify_preference",
    "ALTER TABLE notify_preference_new RENAME TO notify_preference",
    _UNIQUE,
    _RECEIPTS,
]


class Migration(migrations.Migration):
    dependencies = [("models", "0022_counter_refunds_closing")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Message",
            name="role",
            field=fields.CharEnumField(enum_type=Role, default=Role.OWNER, max_length=10),
        ),
        ops.AddField(
            model_name="Message", name="delivered_at", field=fields.DatetimeField(null=True)
        ),
        ops.AddField(model_name="Message", name="receipt_polls", field=fields.IntField(default=0)),
        ops.AddField(
            model_name="Preference",
            name="role",
            field=fields.CharEnumField(enum_type=Role, default=Role.OWNER, max_length=10),
        ),
        ops.AddField(
            model_name="Preference",
            name="staff",
            field=fields.ForeignKeyField(
                "models.AdminUser",
                source_field="staff_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="notify_preferences",
                on_delete=OnDelete.CASCADE,
            ),
        ),
        per_dialect(postgres=POSTGRES, sqlite=SQLITE),
        ops.CreateModel(
            name="TemplateOverride",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                (
                    "organisation",
                    fields.ForeignKeyField(
                        "models.Organisation",
                        source_field="organisation_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notify_templates",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("key", fields.CharField(max_length=48)),
                ("text", fields.CharField(max_length=500)),
                ("updated_by", fields.CharField(default="", max_length=64)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "notify_template",
                "app": "models",
                "unique_together": (("organisation", "key"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SiteSetting",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True)),
                (
                    "site",
                    fields.OneToOneField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notify_setting",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("quiet_start", fields.CharField(default="22:00", max_length=5)),
                ("quiet_end", fields.CharField(default="08:00", max_length=5)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "notify_site_setting", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
