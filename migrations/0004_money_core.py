"""Money core: ledger (chart of accounts, transactions, legs), tariff plans/versions/
assignments, billing state and usage charges.

The raw SQL at the end adds what Tortoise does not emit: indexes the ledger check and the
balance trigger read by; on PostgreSQL a DEFERRABLE INITIALLY DEFERRED constraint trigger that
refuses to commit a ledger transaction whose legs do not sum to zero, and triggers that refuse
UPDATE/DELETE of ledger rows (entries are immutable; corrections are reversals). SQLite has no
deferred triggers: there the service's own check is the guard, and UPDATEs are refused.
"""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from server.core.migration_sql import per_dialect
from server.ledger.models import LedgerAccountKind, TxKind
from server.tariffs.models import TariffKind

INDEXES = [
    "CREATE INDEX ledger_leg_transaction_idx ON ledger_leg (transaction_id)",
    "CREATE INDEX ledger_leg_account_idx ON ledger_leg (ledger_account_id)",
    "CREATE INDEX ledger_transaction_account_idx ON ledger_transaction (account_id, id)",
    "CREATE INDEX usage_charge_account_idx ON usage_charge (account_id, reading_at)",
]

PG_BALANCED = """
CREATE FUNCTION ledger_leg_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
BEGIN
    SELECT sum(amount_fen) INTO total FROM ledger_leg WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: its legs sum to % fen',
            NEW.transaction_id, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_leg_balanced AFTER INSERT ON ledger_leg
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_leg_balanced();
"""

PG_IMMUTABLE = """
CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable (%): post a reversal instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_leg_immutable BEFORE UPDATE OR DELETE ON ledger_leg
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
CREATE TRIGGER ledger_transaction_immutable BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable();
"""

PG_CHECKS = [
    "ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_amount_not_zero CHECK (amount_fen <> 0)",
]

# SQLite: tests empty tables with DELETE, so only UPDATE is refused there.
SQLITE_IMMUTABLE = [
    f"CREATE TRIGGER {table}_immutable BEFORE UPDATE ON {table}"
    " BEGIN SELECT RAISE(ABORT, 'ledger rows are immutable: post a reversal instead'); END;"
    for table in ("ledger_leg", "ledger_transaction")
] + [
    "CREATE TRIGGER ledger_leg_amount_not_zero BEFORE INSERT ON ledger_leg"
    " WHEN NEW.amount_fen = 0"
    " BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ledger_leg_amount_not_zero'); END;"
]


class Migration(migrations.Migration):
    dependencies = [("models", "0003_audit")]

    initial = False

    operations = [
        ops.CreateModel(
            name="BillingStateRow",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="billing_states",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="ELECTRICITY: electricity\nWATER: water",
                        enum_type=TariffKind,
                        max_length=16,
                    ),
                ),
                ("carry_fen", fields.CharField(default="0", max_length=64)),
                (
                    "tier_period_start",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("cumulative", fields.CharField(default="0", max_length=64)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "billing_state",
                "app": "models",
                "unique_together": (("account", "kind"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LedgerAccount",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=64)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="WALLET: wallet\nCLEARING: clearing\nREVENUE: revenue\nREFUNDS_PAYABLE: refunds_payable\nADJUSTMENTS: adjustments",
                        enum_type=LedgerAccountKind,
                        max_length=16,
                    ),
                ),
                ("name", fields.CharField(default="", max_length=100)),
                (
                    "account",
                    fields.OneToOneField(
                        "models.Account",
                        source_field="account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="ledger_wallet",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "ledger_account",
                "app": "models",
                "pk_attr": "id",
                "table_description": 'One account of the chart, named by its stable `code` ("wallet:12", "clearing:wechat",',
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LedgerTransaction",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key", fields.CharField(unique=True, max_length=160)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="RECHARGE: recharge\nCHARGE: charge\nADJUSTMENT: adjustment\nREFUND_HOLD: refund_hold\nREFUND_SETTLE: refund_settle\nREFUND_VOID: refund_void\nREVERSAL: reversal",
                        enum_type=TxKind,
                        max_length=16,
                    ),
                ),
                ("memo", fields.CharField(default="", max_length=200)),
                ("actor", fields.CharField(max_length=100)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="ledger_transactions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("channel", fields.CharField(null=True, max_length=16)),
                ("balance_after_fen", fields.BigIntField(null=True)),
                (
                    "reverses",
                    fields.OneToOneField(
                        "models.LedgerTransaction",
                        source_field="reverses_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="reversed_by",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "resolves",
                    fields.OneToOneField(
                        "models.LedgerTransaction",
                        source_field="resolves_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="resolved_by",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "ledger_transaction",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A balanced set of legs, posted once under its idempotency `key`.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LedgerLeg",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "transaction",
                    fields.ForeignKeyField(
                        "models.LedgerTransaction",
                        source_field="transaction_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="legs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "ledger_account",
                    fields.ForeignKeyField(
                        "models.LedgerAccount",
                        source_field="ledger_account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="legs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("amount_fen", fields.BigIntField()),
            ],
            options={"table": "ledger_leg", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TariffPlan",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tariff_plans",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="ELECTRICITY: electricity\nWATER: water",
                        enum_type=TariffKind,
                        max_length=16,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "tariff_plan",
                "app": "models",
                "unique_together": (("site", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TariffAssignment",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tariff_assignments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="ELECTRICITY: electricity\nWATER: water",
                        enum_type=TariffKind,
                        max_length=16,
                    ),
                ),
                (
                    "plan",
                    fields.ForeignKeyField(
                        "models.TariffPlan",
                        source_field="plan_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="assignments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("assigned_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "tariff_assignment",
                "app": "models",
                "unique_together": (("account", "kind"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TariffVersion",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "plan",
                    fields.ForeignKeyField(
                        "models.TariffPlan",
                        source_field="plan_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="versions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("effective_from", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "spec",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_by", fields.CharField(default="", max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "tariff_version",
                "app": "models",
                "unique_together": (("plan", "effective_from"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="UsageChargeRow",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "meter",
                    fields.ForeignKeyField(
                        "models.Meter",
                        source_field="meter_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_charges",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_charges",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("prev_reading_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("reading_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("quantity", fields.CharField(max_length=64)),
                ("exact_yuan", fields.CharField(max_length=64)),
                ("amount_fen", fields.BigIntField()),
                (
                    "lines",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "transaction",
                    fields.ForeignKeyField(
                        "models.LedgerTransaction",
                        source_field="transaction_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_charges",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "usage_charge",
                "app": "models",
                "unique_together": (("meter", "reading_at"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        per_dialect(
            postgres=[*INDEXES, *PG_CHECKS, PG_BALANCED, PG_IMMUTABLE],
            sqlite=[*INDEXES, *SQLITE_IMMUTABLE],
        ),
    ]
