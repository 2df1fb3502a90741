"""The operation log: append-only rows, one per action by a person or by the system.

Each row carries the hash of the previous row of its chain (`prev_hash`), so a later edit or
deletion of a row is detectable (tamper-evident, ASVS 16.4.2): `verify_chain` recomputes it.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OperationLog(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    # "staff:12", "tenant:o-abc", "system:controller", "system:alarms"
    actor = fields.CharField(max_length=64, db_index=True)
    action = fields.CharField(max_length=64, db_index=True)  # "meter.trip", "refund.approve"
    target_type = fields.CharField(max_length=32, default="")  # "meter", "account", "order"
    target_id = fields.CharField(max_length=64, default="", db_index=True)
    site_id = fields.IntField(null=True, db_index=True)  # scope for admin queries
    reason = fields.CharField(max_length=500, default="")  # Chinese, shown to staff
    detail = fields.JSONField(default=dict)
    prev_hash = fields.CharField(max_length=64, default="")
    row_hash = fields.CharField(max_length=64, default="")

    class Meta:
        table = "operation_log"
