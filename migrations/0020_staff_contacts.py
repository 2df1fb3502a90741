"""Staff contacts (issue #13): a staff member's phone and e-mail, for the notifier's staff
alerts and for the staff pages. Empty means "not reached"; existing rows get empty strings.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0019_dashboard_counts")]

    initial = False

    operations = [
        ops.AddField(
            model_name="AdminUser",
            name="phone",
            field=fields.CharField(default="", max_length=20),
        ),
        ops.AddField(
            model_name="AdminUser",
            name="email",
            field=fields.CharField(default="", max_length=254),
        ),
    ]
