"""Durable background jobs (docs/jobs.md): the `job` table and its claim indexes.

A runner claims `(status = 'pending' AND run_at <= now) OR (status = 'running' AND
claimed_until <= now)`, oldest first: one partial index per branch keeps the claim an index
look-up however many done rows the table holds. `dedupe_key` is unique (a job's idempotency
key; NULL for jobs that need none).
"""

import functools
from json import dumps, loads

from tortoise import migrations
from tortoise.migrations import operations as ops
from server.jobs.models import JobStatus
from tortoise import fields

from server.core.migration_sql import per_dialect


INDEXES = [
    "CREATE INDEX job_due_idx ON job (run_at, id) WHERE status = 'pending'",
    "CREATE INDEX job_lease_idx ON job (claimed_until) WHERE status = 'running'",
]


class Migration(migrations.Migration):
    dependencies = [('models', '0012_live_values_daily_usage')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=JobStatus.PENDING, description='PENDING: pending\nRUNNING: running\nDONE: done\nDEAD: dead', enum_type=JobStatus, max_length=8)),
                ('dedupe_key', fields.CharField(null=True, unique=True, max_length=200)),
                ('run_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('max_attempts', fields.IntField(default=5)),
                ('claimed_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_by', fields.CharField(default='', max_length=64)),
                ('last_error', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'job', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        per_dialect(postgres=INDEXES, sqlite=INDEXES),
    ]
