"""Billing hot path: cheaper usage_charge rows, one balance check per ledger transaction.

- usage_charge → meter/account lose their database foreign keys (the model says
  db_constraint=False; see server/billing/models.py for why that is safe).
- The deferred balance trigger (0004) ran once per leg, so a two-leg transaction was summed
  twice at commit. It now fires for debit legs only (WHEN amount_fen < 0): a balanced
  transaction always has one, and a two-leg transaction is checked once. A statement that
  adds legs to a transaction without adding a debit among them could then escape the
  deferred check, so a statement-level guard refuses such a statement at once (the ledger
  writes every transaction's legs in one statement).
SQLite has neither deferred nor statement triggers: there the service's own check stays the
guard, as before.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect

# AlterField records db_constraint=False in the migration state; the constraints themselves go
# here. SQLite keeps them (dropping one there means rebuilding the table, and the embedded
# mode is not where billing speed matters).
PG_DROP_USAGE_FKS = [
    "ALTER TABLE usage_charge DROP CONSTRAINT IF EXISTS usage_charge_meter_id_fkey",
    "ALTER TABLE usage_charge DROP CONSTRAINT IF EXISTS usage_charge_account_id_fkey",
]

PG_BALANCED_PER_TRANSACTION = """
DROP TRIGGER ledger_leg_balanced ON ledger_leg;
CREATE CONSTRAINT TRIGGER ledger_leg_balanced AFTER INSERT ON ledger_leg
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.amount_fen < 0)
    EXECUTE FUNCTION ledger_leg_balanced();

CREATE FUNCTION ledger_leg_has_debit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx bigint;
    total numeric;
BEGIN
    SELECT transaction_id, sum(amount_fen) INTO tx, total FROM added
        GROUP BY transaction_id HAVING min(amount_fen) > 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: legs of % fen added without a debit leg',
            tx, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_leg_has_debit AFTER INSERT ON ledger_leg
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ledger_leg_has_debit();
"""


class Migration(migrations.Migration):
    dependencies = [("models", "0006_payments")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="UsageChargeRow",
            name="account",
            field=fields.ForeignKeyField(
                "models.Account",
                source_field="account_id",
                db_constraint=False,
                to_field="id",
                related_name="usage_charges",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.AlterField(
            model_name="UsageChargeRow",
            name="meter",
            field=fields.ForeignKeyField(
                "models.Meter",
                source_field="meter_id",
                db_constraint=False,
                to_field="id",
                related_name="usage_charges",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        per_dialect(postgres=[*PG_DROP_USAGE_FKS, PG_BALANCED_PER_TRANSACTION], sqlite=[]),
    ]
