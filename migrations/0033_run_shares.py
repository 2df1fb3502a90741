"""The monthly run's sharing and losses steps (issue #17): the grid figures entered ahead of
the run (loss_entry) and the run's per-account share lines (property_run_share_line). Only
the new tables: `makemigrations` also proposed other contexts' option changes."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from server.property.models import LineOutcome
from server.sharing.allocation import Method
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0032_print_templates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LossEntryRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('site', fields.ForeignKeyField('models.Site', source_field='site_id', db_constraint=True, to_field='id', related_name='loss_entries', on_delete=OnDelete.RESTRICT)),
                ('period', fields.CharField(max_length=7)),
                ('start_reading', fields.CharField(max_length=40)),
                ('end_reading', fields.CharField(max_length=40)),
                ('multiplier', fields.IntField(default=1)),
                ('bill_fen', fields.BigIntField()),
                ('own_use_kwh', fields.CharField(default='0', max_length=40)),
                ('method', fields.CharEnumField(default=Method.USAGE, description='RATIO: ratio\nAREA: area\nUSAGE: usage\nEQUAL: equal', enum_type=Method, max_length=8)),
                ('cap', fields.CharField(default='0.10', max_length=12)),
                ('entered_by', fields.CharField(max_length=100)),
                ('entered_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'loss_entry', 'app': 'models', 'unique_together': (('site', 'period'),), 'pk_attr': 'id', 'table_description': "A period's grid figures entered ahead of the monthly run (录入): the property run's"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RunShareLine',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('run', fields.ForeignKeyField('models.FeeRun', source_field='run_id', db_constraint=True, to_field='id', related_name='share_lines', on_delete=OnDelete.CASCADE)),
                ('account', fields.ForeignKeyField('models.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='run_share_lines', on_delete=OnDelete.RESTRICT)),
                ('step', fields.CharField(max_length=16)),
                ('label', fields.CharField(max_length=100)),
                ('amount_fen', fields.BigIntField()),
                ('outcome', fields.CharEnumField(description='CHARGED: charged\nALREADY: already\nPREVIEW: preview', enum_type=LineOutcome, max_length=8)),
            ],
            options={'table': 'property_run_share_line', 'app': 'models', 'pk_attr': 'id', 'table_description': "What a run's sharing step did for one account: its share of a pool's common-area use"},
            bases=['Model'],
        ),
    ]
