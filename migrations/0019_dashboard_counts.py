"""The dashboard's figures as index reads (issue #13, server/staff/service/dashboard.py and
server/ledger/statement.py):

- money in per day: the transactions that can move a channel's clearing account (recharge,
  refund settle, reversal), by time, so a week of them is found without walking the usage
  charges that make up most of the ledger;
- accounts in alarm: the alarm states whose level is above 0 (a few among thousands; the
  level stays in the state's JSON, written by the alarm service alone);
- energy per day: the chart's week of `daily_usage` by day, instead of a scan of every day
  ever kept (its rows are updated all day, but never their day: updates stay heap-only).
"""

from tortoise import migrations

from server.core.migration_sql import per_dialect

MONEY_IN = (
    "CREATE INDEX ledger_transaction_money_in_idx ON ledger_transaction (created_at)"
    " WHERE kind IN ('recharge', 'refund_settle', 'reversal')"
)
BY_DAY = "CREATE INDEX daily_usage_day_idx ON daily_usage (day)"
IN_ALARM = "CREATE INDEX account_alarm_state_alarm_idx ON account_alarm_state (account_id) WHERE "


class Migration(migrations.Migration):
    dependencies = [("models", "0018_notify")]

    initial = False

    operations = [
        per_dialect(
            postgres=[MONEY_IN, BY_DAY, IN_ALARM + "(state->>'level')::int > 0"],
            sqlite=[MONEY_IN, BY_DAY, IN_ALARM + "json_extract(state, '$.level') > 0"],
        )
    ]
