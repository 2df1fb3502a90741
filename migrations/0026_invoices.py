"""E-invoices (issue #18, server/invoices/): an organisation's tax items (invoice_item) and
seller profile (invoice_profile), invoices (blue and red), the payments each covers and its
lines.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from server.invoices.models import InvoiceKind, InvoiceStatus, ItemKind, PaymentKind, TitleType
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from server.core.migration_sql import per_dialect

# What an invoice holds of a payment is summed per order / counter payment at every request.
INDEXES = [
    "CREATE INDEX invoice_payment_order_idx ON invoice_payment (order_id)",
    "CREATE INDEX invoice_payment_counter_idx ON invoice_payment (counter_id)",
    "CREATE INDEX invoice_account_idx ON invoice (account_id)",
]

class Migration(migrations.Migration):
    dependencies = [('models', '0025_sharing')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Invoice',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('number', fields.CharField(unique=True, max_length=32)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='invoices', on_delete=OnDelete.RESTRICT)),
                ('site', fields.ForeignKeyField('models.Site', source_field='site_id', db_constraint=True, to_field='id', related_name='invoices', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='NORMAL: normal\nSPECIAL: special', enum_type=InvoiceKind, max_length=8)),
                ('title_type', fields.CharEnumField(description='PERSONAL: personal\nCOMPANY: company', enum_type=TitleType, max_length=8)),
                ('buyer_name', fields.CharField(max_length=100)),
                ('buyer_tax_id', fields.CharField(default='', max_length=20)),
                ('buyer_address', fields.CharField(default='', max_length=200)),
                ('buyer_phone', fields.CharField(default='', max_length=40)),
                ('buyer_bank', fields.CharField(default='', max_length=100)),
                ('buyer_bank_account', fields.CharField(default='', max_length=40)),
                ('email', fields.CharField(default='', max_length=100)),
                ('phone', fields.CharField(default='', max_length=20)),
                ('amount_fen', fields.BigIntField()),
                ('tax_fen', fields.BigIntField(default=0)),
                ('status', fields.CharEnumField(default=InvoiceStatus.REQUESTED, description='REQUESTED: requested\nQUEUED: queued\nISSUING: issuing\nISSUED: issued\nFAILED: failed\nREJECTED: rejected\nREVERSING: reversing\nREVERSED: reversed', enum_type=InvoiceStatus, max_length=10)),
                ('reverses', fields.ForeignKeyField('models.Invoice', source_field='reverses_id', null=True, db_constraint=True, to_field='id', related_name='red_invoices', on_delete=OnDelete.RESTRICT)),
                ('reversal_reason', fields.CharField(default='', max_length=200)),
                ('requested_by', fields.CharField(max_length=100)),
                ('reviewed_by', fields.CharField(default='', max_length=100)),
                ('review_note', fields.CharField(default='', max_length=200)),
                ('serial', fields.CharField(default='', max_length=40)),
                ('invoice_code', fields.CharField(default='', max_length=20)),
                ('invoice_no', fields.CharField(default='', max_length=20)),
                ('pdf_url', fields.CharField(default='', max_length=500)),
                ('ofd_url', fields.CharField(default='', max_length=500)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(default='', max_length=300)),
                ('issued_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'invoice', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['site_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InvoiceItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('models.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='invoice_items', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='ELECTRICITY: electricity\nWATER: water\nPROPERTY: property\nSERVICE: service\nRENT: rent\nOTHER: other', enum_type=ItemKind, max_length=12)),
                ('name', fields.CharField(max_length=60)),
                ('tax_code', fields.CharField(max_length=19)),
                ('tax_rate', fields.DecimalField(max_digits=5, decimal_places=4)),
                ('unit', fields.CharField(default='', max_length=10)),
                ('updated_by', fields.CharField(default='', max_length=100)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'invoice_item', 'app': 'models', 'unique_together': (('organisation', 'kind'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InvoiceLine',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='ELECTRICITY: electricity\nWATER: water\nPROPERTY: property\nSERVICE: service\nRENT: rent\nOTHER: other', enum_type=ItemKind, max_length=12)),
                ('name', fields.CharField(max_length=60)),
                ('tax_code', fields.CharField(max_length=19)),
                ('tax_rate', fields.DecimalField(max_digits=5, decimal_places=4)),
                ('amount_fen', fields.BigIntField()),
                ('tax_fen', fields.BigIntField()),
            ],
            options={'table': 'invoice_line', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InvoicePayment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', db_constraint=True, to_field='id', related_name='payments', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='ONLINE: online\nCOUNTER: counter', enum_type=PaymentKind, max_length=8)),
                ('order', fields.ForeignKeyField('models.RechargeOrder', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='invoice_parts', on_delete=OnDelete.RESTRICT)),
                ('counter', fields.ForeignKeyField('models.CounterPayment', source_field='counter_id', null=True, db_constraint=True, to_field='id', related_name='invoice_parts', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
            ],
            options={'table': 'invoice_payment', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InvoiceProfile',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.OneToOneField('models.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='invoice_profile', on_delete=OnDelete.CASCADE)),
                ('seller_name', fields.CharField(max_length=100)),
                ('seller_tax_id', fields.CharField(max_length=20)),
                ('seller_address', fields.CharField(default='', max_length=200)),
                ('seller_phone', fields.CharField(default='', max_length=40)),
                ('drawer', fields.CharField(default='', max_length=20)),
                ('default_item', fields.CharEnumField(default=ItemKind.ELECTRICITY, description='ELECTRICITY: electricity\nWATER: water\nPROPERTY: property\nSERVICE: service\nRENT: rent\nOTHER: other', enum_type=ItemKind, max_length=12)),
                ('auto_issue_max_fen', fields.BigIntField(default=0)),
                ('updated_by', fields.CharField(default='', max_length=100)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'invoice_profile', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        per_dialect(postgres=INDEXES, sqlite=INDEXES),
    ]
