"""Meters and gateways as the platform knows them.

The enums for kinds, protocols and relay states are the drivers' own (workers.meters.base, a
dependency-free module), so the row and the wire speak the same words.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from workers.meters.base import MeterKind, RelayState
from workers.meters.base import Protocol_ as MeterProtocol


class GatewayKind(StrEnum):
    MQTT = "mqtt"  # gateway publishing readings over MQTT (gw/{code}/…)
    TCP_TRANSPARENT = "tcp"  # serial server / DTU: DL/T 645 or CJ/T 188 frames over TCP
    MODBUS_TCP = "modbus_tcp"  # Modbus TCP (or RTU over TCP) bus


class MeterBilling(StrEnum):
    PLATFORM = "platform"  # 平台计费: the platform prices readings and debits the wallet
    METER = "meter"  # 表端计费: the meter keeps the money register; the platform mirrors it


class MeterStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"  # replaced (换表) or taken away; history stays
    SPARE = "spare"  # in stock, not installed


class Gateway(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="gateways", on_delete=fields.RESTRICT
    )
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=100, default="")
    kind = fields.CharEnumField(GatewayKind, max_length=16)
    host = fields.CharField(max_length=255, default="")
    port = fields.IntField(default=0)
    online = fields.BooleanField(default=False)
    last_seen_at = fields.DatetimeField(null=True)
    poll_interval_s = fields.IntField(default=900)

    class Meta:
        table = "gateway"


class Meter(Model):
    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="meters", on_delete=fields.RESTRICT
    )
    account: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Account", related_name="meters", on_delete=fields.RESTRICT, null=True
    )
    gateway: fields.ForeignKeyNullableRelation[Gateway] = fields.ForeignKeyField(
        "models.Gateway", related_name="meters", on_delete=fields.RESTRICT, null=True
    )
    kind = fields.CharEnumField(MeterKind, max_length=16)
    model = fields.CharField(max_length=32, default="")
    protocol = fields.CharEnumField(MeterProtocol, max_length=16)
    address = fields.CharField(max_length=32)  # DL/T 645 / CJ/T 188 address, or a serial no.
    unit = fields.IntField(default=0)  # Modbus slave id (box circuit); 0 when not Modbus
    ct_ratio = fields.IntField(default=1)
    pt_ratio = fields.IntField(default=1)
    rated_kw = fields.DecimalField(max_digits=10, decimal_places=2, default=10)
    billing = fields.CharEnumField(MeterBilling, max_length=10, default=MeterBilling.PLATFORM)
    status = fields.CharEnumField(MeterStatus, max_length=10, default=MeterStatus.ACTIVE)
    relay_state = fields.CharEnumField(RelayState, max_length=10, default=RelayState.UNKNOWN)
    protected = fields.BooleanField(default=False)  # 保电: never cut automatically
    online = fields.BooleanField(default=False)
    missed_reads = fields.IntField(default=0)
    installed_at = fields.DatetimeField(null=True)
    removed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "meter"
        # Database constraints (one active device per address, ratios > 0) live in
        # migrations/0002_constraints.py: Tortoise 1.1 does not emit Meta.constraints.

    @property
    def multiplier(self) -> int:
        return self.ct_ratio * self.pt_ratio
