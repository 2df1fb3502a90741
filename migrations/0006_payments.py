"""Payments: recharge orders, notification inbox, quarantine, refunds, counter payments,
balance adjustments, credit follow-ups, reconciliation reports.

The raw SQL at the end adds the money guards Tortoise does not emit: amounts positive, and a
recharge order's refunded amount never above what was paid (invariant 7, refunded <= paid).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.payments.models import AdjustmentStatus, CounterChannel, OrderStatus, QuarantineReason, RefundStatus
from server.payments.providers.base import Channel
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from server.core.migration_sql import per_dialect


_CHECKS = [
    ("recharge_order", "recharge_order_amount_positive", "amount_fen > 0"),
    ("recharge_order", "recharge_order_refunded_le_paid", "refunded_fen >= 0 AND refunded_fen <= amount_fen"),
    ("payment_refund", "payment_refund_amount_positive", "amount_fen > 0"),
    ("payment_counter", "payment_counter_amount_positive", "amount_fen > 0"),
    ("payment_adjustment", "payment_adjustment_amount_not_zero", "amount_fen <> 0"),
]
PG_CHECKS = [f"ALTER TABLE {t} ADD CONSTRAINT {name} CHECK ({cond})" for t, name, cond in _CHECKS]
SQLITE_CHECKS = [
    f"CREATE TRIGGER {name}_{op} BEFORE {op} ON {t} WHEN NOT ({cond.replace('amount_fen', 'NEW.amount_fen').replace('refunded_fen', 'NEW.refunded_fen')})"
    f" BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END;"
    for t, name, cond in _CHECKS
    for op in ("INSERT", "UPDATE")
]

class Migration(migrations.Migration):
    dependencies = [('models', '0005_metering_ops')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BalanceAdjustment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='balance_adjustments', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
                ('reason', fields.CharField(max_length=200)),
                ('status', fields.CharEnumField(description='PENDING: pending\nAPPLIED: applied\nREJECTED: rejected', enum_type=AdjustmentStatus, max_length=8)),
                ('requested_by', fields.CharField(max_length=100)),
                ('approved_by', fields.CharField(default='', max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'payment_adjustment', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CounterPayment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharEnumField(description='CASH: cash\nBANK: bank', enum_type=CounterChannel, max_length=8)),
                ('reference', fields.CharField(max_length=64)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='counter_payments', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
                ('payer_name', fields.CharField(default='', max_length=100)),
                ('memo', fields.CharField(default='', max_length=200)),
                ('recorded_by', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'payment_counter', 'app': 'models', 'unique_together': (('channel', 'reference'),), 'pk_attr': 'id', 'table_description': 'Cash at the counter or a bank transfer, credited once per receipt / transfer number.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CreditFollowUp',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('credit_key', fields.CharField(unique=True, max_length=160)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='credit_followups', on_delete=OnDelete.RESTRICT)),
                ('reason', fields.CharField(max_length=32)),
                ('attempts', fields.IntField(default=0)),
                ('last_error', fields.CharField(default='', max_length=300)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('done_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'payment_followup', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Work owed after a credit (alarms, relay, meter-side recharge), committed with it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PaymentEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharEnumField(description='WECHAT: wechat\nALIPAY: alipay', enum_type=Channel, max_length=8)),
                ('external_id', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=8)),
                ('notification_id', fields.CharField(default='', max_length=64)),
                ('headers', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('body', fields.TextField(unique=False)),
                ('verified', fields.BooleanField(default=True)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('handled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharField(default='', max_length=16)),
            ],
            options={'table': 'payment_event', 'app': 'models', 'unique_together': (('channel', 'external_id'),), 'pk_attr': 'id', 'table_description': 'The inbox: one verified raw notification per (channel, order or refund number).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Quarantine',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dedupe_key', fields.CharField(unique=True, max_length=120)),
                ('channel', fields.CharEnumField(description='WECHAT: wechat\nALIPAY: alipay', enum_type=Channel, max_length=8)),
                ('reason', fields.CharEnumField(description='AMOUNT_MISMATCH: amount_mismatch\nUNKNOWN_ORDER: unknown_order\nUNKNOWN_REFUND: unknown_refund\nWRONG_MERCHANT: wrong_merchant\nORDER_NOT_PAYABLE: order_not_payable\nREFUND_ABNORMAL: refund_abnormal', enum_type=QuarantineReason, max_length=20)),
                ('out_trade_no', fields.CharField(default='', max_length=64)),
                ('out_refund_no', fields.CharField(default='', max_length=64)),
                ('expected_fen', fields.BigIntField(null=True)),
                ('notified_fen', fields.BigIntField(null=True)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolved_by', fields.CharField(default='', max_length=100)),
                ('resolution', fields.CharField(default='', max_length=500)),
            ],
            options={'table': 'payment_quarantine', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Something from a platform we will not act on by ourselves: a person decides.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RechargeOrder',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('out_trade_no', fields.CharField(unique=True, max_length=32)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='recharge_orders', on_delete=OnDelete.RESTRICT)),
                ('channel', fields.CharEnumField(description='WECHAT: wechat\nALIPAY: alipay', enum_type=Channel, max_length=8)),
                ('amount_fen', fields.BigIntField()),
                ('status', fields.CharEnumField(default=OrderStatus.CREATED, description='CREATED: created\nPAID: paid\nCLOSED: closed\nEXPIRED: expired\nHELD: held', enum_type=OrderStatus, max_length=8)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('payer_openid', fields.CharField(default='', max_length=64)),
                ('created_by', fields.CharField(max_length=100)),
                ('transaction_id', fields.CharField(default='', max_length=64)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('credited_by', fields.CharField(default='', max_length=16)),
                ('refunded_fen', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'recharge_order', 'app': 'models', 'indexes': [Index(fields=['status', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReconciliationReport',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharEnumField(description='WECHAT: wechat\nALIPAY: alipay', enum_type=Channel, max_length=8)),
                ('bill_date', fields.DateField()),
                ('matched', fields.IntField()),
                ('missing', fields.IntField()),
                ('extra', fields.IntField()),
                ('amount_mismatches', fields.IntField()),
                ('duplicates', fields.IntField()),
                ('ignored_rows', fields.IntField()),
                ('clean', fields.BooleanField()),
                ('created_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'payment_reconciliation', 'app': 'models', 'unique_together': (('channel', 'bill_date'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReconciliationDifference',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('report', fields.ForeignKeyField('models.ReconciliationReport', source_field='report_id', db_constraint=True, to_field='id', related_name='differences', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('row_type', fields.CharField(max_length=8)),
                ('number', fields.CharField(max_length=64)),
                ('bill_fen', fields.BigIntField(null=True)),
                ('ours_fen', fields.BigIntField(null=True)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'payment_reconciliation_difference', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One line for finance: missing (bill only), extra (ours only), amount, duplicate.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Refund',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('out_refund_no', fields.CharField(unique=True, max_length=32)),
                ('order', fields.ForeignKeyField('models.RechargeOrder', source_field='order_id', db_constraint=True, to_field='id', related_name='refunds', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
                ('status', fields.CharEnumField(description='PENDING: pending\nAPPROVED: approved\nPROCESSING: processing\nSUCCEEDED: succeeded\nFAILED: failed\nREJECTED: rejected', enum_type=RefundStatus, max_length=10)),
                ('reason', fields.CharField(max_length=200)),
                ('requested_by', fields.CharField(max_length=100)),
                ('approved_by', fields.CharField(default='', max_length=100)),
                ('platform_refund_id', fields.CharField(default='', max_length=64)),
                ('last_error', fields.CharField(default='', max_length=300)),
                ('attempts', fields.IntField(default=0)),
                ('settled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'payment_refund', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        per_dialect(postgres=PG_CHECKS, sqlite=SQLITE_CHECKS),
    ]
