"""Counter refunds and account closings (issue #14): `payment_counter_refund` (cash / bank
refunds, two-phase in the ledger, one per request key) and `account_closing` (销户 / 过户:
one per account, pending until its refunds are paid). The ledger's transaction kind gains
`transfer` (only the column's description changes). A counter refund's amount is positive
(a CHECK on PostgreSQL, triggers on SQLite, as in 0006).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.ledger.posting import TxKind
from server.payments.models import CounterChannel, CounterRefundStatus
from server.tenancy.models import ClosingKind, ClosingStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from server.core.migration_sql import StateOnlyAlterField, per_dialect

CHECK = "payment_counter_refund_amount_positive"
PG_CHECKS = [f"ALTER TABLE payment_counter_refund ADD CONSTRAINT {CHECK} CHECK (amount_fen > 0)"]
SQLITE_CHECKS = [
    f"CREATE TRIGGER {CHECK}_{op} BEFORE {op} ON payment_counter_refund WHEN NOT (NEW.amount_fen > 0)"
    f" BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {CHECK}'); END;"
    for op in ("INSERT", "UPDATE")
]

class Migration(migrations.Migration):
    dependencies = [("models", "0021_review")]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccountClosing',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.OneToOneField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='closing', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='CLOSE: close\nTRANSFER: transfer', enum_type=ClosingKind, max_length=10)),
                ('status', fields.CharEnumField(default=ClosingStatus.PENDING, description='PENDING: pending\nDONE: done', enum_type=ClosingStatus, max_length=10)),
                ('readings', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('refund_channel', fields.CharField(default='cash', max_length=8)),
                ('payee_name', fields.CharField(default='', max_length=100)),
                ('payee_account', fields.CharField(default='', max_length=64)),
                ('new_account', fields.ForeignKeyField('models.Account', source_field='new_account_id', null=True, db_constraint=True, to_field='id', related_name='taken_over', on_delete=OnDelete.RESTRICT)),
                ('carried_fen', fields.BigIntField(default=0)),
                ('requested_by', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'account_closing', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CounterRefund',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('number', fields.CharField(unique=True, max_length=32)),
                ('request_key', fields.CharField(unique=True, max_length=120)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='counter_refunds', on_delete=OnDelete.RESTRICT)),
                ('channel', fields.CharEnumField(description='CASH: cash\nBANK: bank', enum_type=CounterChannel, max_length=8)),
                ('amount_fen', fields.BigIntField()),
                ('status', fields.CharEnumField(description='PENDING: pending\nPAID: paid\nREJECTED: rejected', enum_type=CounterRefundStatus, max_length=8)),
                ('reason', fields.CharField(max_length=200)),
                ('payee_name', fields.CharField(default='', max_length=100)),
                ('payee_account', fields.CharField(default='', max_length=64)),
                ('requested_by', fields.CharField(max_length=100)),
                ('approved_by', fields.CharField(default='', max_length=100)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'payment_counter_refund', 'app': 'models', 'indexes': [Index(fields=['status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'Money paid back out of a wallet at the counter (cash) or by bank transfer: held in the'},
            bases=['Model'],
        ),
        # State only: an AlterField would rebuild ledger_transaction on SQLite and drop
        # its guards (0004, 0009).
        StateOnlyAlterField(
            model_name='LedgerTransaction',
            name='kind',
            field=fields.CharEnumField(description='RECHARGE: recharge\nCHARGE: charge\nADJUSTMENT: adjustment\nREFUND_HOLD: refund_hold\nREFUND_SETTLE: refund_settle\nREFUND_VOID: refund_void\nREVERSAL: reversal\nTRANSFER: transfer', enum_type=TxKind, max_length=16),
        ),
        per_dialect(postgres=PG_CHECKS, sqlite=SQLITE_CHECKS),
    ]
