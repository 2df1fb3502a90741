"""Property billing (issue #17): fee items, a site's property settings, monthly runs and
their per-account lines, bills and their lines. The ledger's account kind gains `receivable`
and its transaction kind `bill` and `bill_settle` (only the columns' descriptions change).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.ledger.posting import LedgerAccountKind, TxKind
from server.property.fees import FeeBasis, FeeCollection, FeeCycle, FeeKind
from server.property.models import BillKind, BillStatus, LineOutcome, RunStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from server.core.migration_sql import StateOnlyAlterField


class Migration(migrations.Migration):
    dependencies = [("models", "0029_tariff_levy")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Bill",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=120)),
                ("number", fields.CharField(unique=True, max_length=32)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="FEES: fees\nPERIOD: period", enum_type=BillKind, max_length=8
                    ),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "models.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="bills",
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
                        related_name="bills",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("period_start", fields.DateField()),
                ("period_end", fields.DateField()),
                (
                    "status",
                    fields.CharEnumField(
                        description="DRAFT: draft\nCONFIRMED: confirmed\nISSUED: issued\nPAID: paid",
                        enum_type=BillStatus,
                        max_length=10,
                    ),
                ),
                ("total_fen", fields.BigIntField()),
                ("carried_fen", fields.BigIntField(default=0)),
                ("paid_fen", fields.BigIntField(default=0)),
                ("due_date", fields.DateField(null=True)),
                ("confirmed_by", fields.CharField(default="", max_length=100)),
                ("issued_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("paid_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "property_bill",
                "app": "models",
                "indexes": [
                    Index(fields=["account_id", "status"]),
                    Index(fields=["site_id", "status"]),
                ],
                "pk_attr": "id",
                "table_description": "A bill to pay: fees (催缴账单) or a postpaid period's bill.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BillLine",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "bill",
                    fields.ForeignKeyField(
                        "models.Bill",
                        source_field="bill_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="lines",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("label", fields.CharField(max_length=100)),
                ("revenue_code", fields.CharField(default="", max_length=64)),
                ("amount_fen", fields.BigIntField()),
            ],
            options={"table": "property_bill_line", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FeeItem",
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
                        related_name="fee_items",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=50)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="RENT: rent\nPROPERTY_FEE: property_fee\nSERVICE_FEE: service_fee\nCUSTOM: custom",
                        enum_type=FeeKind,
                        max_length=16,
                    ),
                ),
                (
                    "basis",
                    fields.CharEnumField(
                        description="FIXED: fixed\nAREA: area", enum_type=FeeBasis, max_length=8
                    ),
                ),
                ("amount", fields.CharField(max_length=32)),
                (
                    "cycle",
                    fields.CharEnumField(
                        description="MONTHLY: monthly\nQUARTERLY: quarterly\nYEARLY: yearly\nONCE: once",
                        enum_type=FeeCycle,
                        max_length=10,
                    ),
                ),
                ("billing_day", fields.SmallIntField(default=1)),
                ("due", fields.DateField(null=True)),
                (
                    "collection",
                    fields.CharEnumField(
                        description="DEDUCT: deduct\nBILL: bill",
                        enum_type=FeeCollection,
                        max_length=8,
                    ),
                ),
                ("active", fields.BooleanField(default=True)),
                ("created_by", fields.CharField(max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "property_fee_item",
                "app": "models",
                "unique_together": (("site", "name"),),
                "pk_attr": "id",
                "table_description": "A fee a site charges its tenants (租金、物业费、服务费 or its own 自定义收费).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FeeRun",
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
                        related_name="fee_runs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("month", fields.CharField(max_length=7)),
                (
                    "status",
                    fields.CharEnumField(
                        description="PREVIEW: preview\nPOSTED: posted",
                        enum_type=RunStatus,
                        max_length=8,
                    ),
                ),
                ("accounts", fields.IntField(default=0)),
                ("charged_fen", fields.BigIntField(default=0)),
                ("billed_fen", fields.BigIntField(default=0)),
                ("already", fields.IntField(default=0)),
                (
                    "steps",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("created_by", fields.CharField(max_length=100)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "property_fee_run",
                "app": "models",
                "indexes": [Index(fields=["site_id", "month"])],
                "pk_attr": "id",
                "table_description": "One month's run for a site: a preview, or the real thing.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FeeRunLine",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "run",
                    fields.ForeignKeyField(
                        "models.FeeRun",
                        source_field="run_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="lines",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "models.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="fee_lines",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "item",
                    fields.ForeignKeyField(
                        "models.FeeItem",
                        source_field="item_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="lines",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("period_start", fields.DateField()),
                ("period_end", fields.DateField()),
                ("days", fields.IntField()),
                ("period_days", fields.IntField()),
                ("full_fen", fields.BigIntField()),
                ("amount_fen", fields.BigIntField()),
                ("deducted_fen", fields.BigIntField(default=0)),
                ("billed_fen", fields.BigIntField(default=0)),
                (
                    "outcome",
                    fields.CharEnumField(
                        description="CHARGED: charged\nALREADY: already\nPREVIEW: preview",
                        enum_type=LineOutcome,
                        max_length=8,
                    ),
                ),
                ("posted_key", fields.CharField(null=True, unique=True, max_length=120)),
                (
                    "bill",
                    fields.ForeignKeyField(
                        "models.Bill",
                        source_field="bill_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="fee_lines",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
            ],
            options={
                "table": "property_fee_run_line",
                "app": "models",
                "pk_attr": "id",
                "table_description": "What the run did for one account, item and period.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PropertySettings",
            fields=[
                (
                    "site",
                    fields.OneToOneField(
                        "models.Site",
                        source_field="site_id",
                        primary_key=True,
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="property_settings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("fees_may_cut", fields.BooleanField(default=False)),
                ("due_days", fields.SmallIntField(default=15)),
            ],
            options={
                "table": "property_settings",
                "app": "models",
                "pk_attr": "site_id",
                "table_description": "A site's property billing rules (a site without a row: the defaults).",
            },
            bases=["Model"],
        ),
        # State only: an AlterField would rebuild the ledger tables on SQLite and drop their
        # guards (0004, 0009); the columns are wide enough for the new choices.
        StateOnlyAlterField(
            model_name="LedgerAccount",
            name="kind",
            field=fields.CharEnumField(
                description="WALLET: wallet\nCLEARING: clearing\nREVENUE: revenue\nREFUNDS_PAYABLE: refunds_payable\nADJUSTMENTS: adjustments\nRECEIVABLE: receivable",
                enum_type=LedgerAccountKind,
                max_length=16,
            ),
        ),
        StateOnlyAlterField(
            model_name="LedgerTransaction",
            name="kind",
            field=fields.CharEnumField(
                description="RECHARGE: recharge\nCHARGE: charge\nADJUSTMENT: adjustment\nREFUND_HOLD: refund_hold\nREFUND_SETTLE: refund_settle\nREFUND_VOID: refund_void\nREVERSAL: reversal\nTRANSFER: transfer\nBILL: bill\nBILL_SETTLE: bill_settle",
                enum_type=TxKind,
                max_length=16,
            ),
        ),
    ]
