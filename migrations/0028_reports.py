"""The reports' index (issue #18, server/reports/): the monthly comprehensive report reads
the ledger by posting time — every transaction from a month's first instant on — and no
index had `ledger_transaction.created_at` whole (0019's holds the money-in kinds only).
On PostgreSQL a BRIN index: transactions are stamped as they are inserted, so the column
follows the table's physical order, and a BRIN costs the billing hot path next to nothing
(a summary per block range, not an entry per row). SQLite has no BRIN: a plain index.
"""

from tortoise import migrations

from server.core.migration_sql import per_dialect

PG = ["CREATE INDEX ledger_transaction_created_brin ON ledger_transaction USING brin (created_at)"]
SQLITE = ["CREATE INDEX ledger_transaction_created_idx ON ledger_transaction (created_at)"]


class Migration(migrations.Migration):
    dependencies = [("models", "0027_meter_batches")]

    initial = False

    operations = [per_dialect(postgres=PG, sqlite=SQLITE)]
