"""The tenant's records page (issue #12): a wallet's transactions other than usage charges,
newest first, along a partial index that holds only them (server.ledger.statement).

Usage charges (`kind = 'charge'`, key `usage:…`: one per billed reading) are left out of
the index, so paging a wallet's recharges, refunds and fees never walks a year of
15-minute charges, and billing's hot path (which inserts only usage charges) maintains no
new index entry.
"""

from tortoise import migrations

from server.core.migration_sql import per_dialect

INDEXES = [
    "CREATE INDEX ledger_transaction_entries_idx ON ledger_transaction (account_id, id)"
    " WHERE kind <> 'charge' OR \"key\" NOT LIKE 'usage:%'",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0014_tenant_self_service")]

    initial = False

    operations = [per_dialect(postgres=INDEXES, sqlite=INDEXES)]
