"""Print templates (issue #17): an organisation's own paper for bills and counter receipts
(property_print_template). Only the new table: `makemigrations` also proposed option and
field changes of other contexts' models, which are theirs to migrate."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from server.property.printing import PrintKind
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0031_notify_recipients')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PrintTemplate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('models.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='print_templates', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='BILL: bill\nRECEIPT: receipt', enum_type=PrintKind, max_length=8)),
                ('source', fields.TextField(unique=False)),
                ('updated_by', fields.CharField(default='', max_length=100)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'property_print_template', 'app': 'models', 'unique_together': (('organisation', 'kind'),), 'pk_attr': 'id', 'table_description': "An organisation's own paper for bills or counter receipts (Jinja2 source, rendered in"},
            bases=['Model'],
        ),
    ]
