from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_constraints')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OperationLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(db_index=True, max_length=64)),
                ('action', fields.CharField(db_index=True, max_length=64)),
                ('target_type', fields.CharField(default='', max_length=32)),
                ('target_id', fields.CharField(default='', db_index=True, max_length=64)),
                ('site_id', fields.IntField(null=True, db_index=True)),
                ('reason', fields.CharField(default='', max_length=500)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('prev_hash', fields.CharField(default='', max_length=64)),
                ('row_hash', fields.CharField(default='', max_length=64)),
            ],
            options={'table': 'operation_log', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
