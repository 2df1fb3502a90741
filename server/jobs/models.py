"""The `job` table: work that must survive a restart and run once across processes.

A row is written by `server.jobs.service.enqueue`, if need be in the same transaction as the
event that causes it, and claimed by a runner with a lease (`claimed_until`): a runner that
dies leaves its jobs to be claimed again when the lease ends. See docs/jobs.md.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class JobStatus(StrEnum):
    PENDING = "pending"  # waits for `run_at`
    RUNNING = "running"  # claimed until `claimed_until`; after it, claimable again
    DONE = "done"
    DEAD = "dead"  # failed `max_attempts` times; kept for staff, never retried by itself


class Job(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)  # the handler's name, e.g. "scheduler.sweep"
    payload = fields.JSONField(default=dict)
    status = fields.CharEnumField(JobStatus, max_length=8, default=JobStatus.PENDING)
    # Idempotency key: a second enqueue with the same key is a no-op (periodic work names
    # its period, an event its own key). Kept after the job is done.
    dedupe_key = fields.CharField(max_length=200, null=True, unique=True)
    run_at = fields.DatetimeField()
    attempts = fields.IntField(default=0)  # claims so far (a crashed claim counts)
    max_attempts = fields.IntField(default=5)
    claimed_until = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=64, default="")
    last_error = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job"
        # Claim indexes (partial, one per claimable state) are in migrations/0013_jobs.py.
