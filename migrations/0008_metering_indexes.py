"""Indexes the metering batches look up by: an account's meters (alarm evaluation, every
batch) and a meter's open commands (relay decisions, the controller). Without the first, every
alarm batch scans the whole meter table, which a 20,000-meter park rewrites every round."""

from tortoise import migrations

from server.core.migration_sql import per_dialect

INDEXES = [
    "CREATE INDEX meter_account_idx ON meter (account_id)",
    "CREATE INDEX meter_command_meter_status_idx ON meter_command (meter_id, status)",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0007_billing_hot_path")]

    initial = False

    operations = [per_dialect(postgres=INDEXES, sqlite=INDEXES)]
