"""Room monitoring's indexes (issue #14, server/staff/service/monitor.py): a room reaches its
meters by `meter.room_id` and its tenant by `account.room_id`. Neither column had an index
(Tortoise emits none for a foreign key): the live panel's meters and its 30 days of usage
(every meter ever installed in the room, removed ones included), a page of tiles' usage of
the day, and the search by room would each walk the whole table. The open accounts per room
are a partial index, as the monitor asks for open accounts only.
"""

from tortoise import migrations

from server.core.migration_sql import per_dialect

INDEXES = [
    "CREATE INDEX meter_room_idx ON meter (room_id)",
    "CREATE INDEX account_room_open_idx ON account (room_id) WHERE status = 'open'",
]


class Migration(migrations.Migration):
    dependencies = [("models", "0023_notify_channels")]

    initial = False

    operations = [per_dialect(postgres=INDEXES, sqlite=INDEXES)]
