"""Meters and gateways as the platform knows them.

The enums for kinds, protocols and relay states are the shared vocabulary
(`server.metering.vocabulary`, which the drivers re-export), so the row and the wire speak
the same words.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from server.metering.vocabulary import MeterKind, MeterProtocol, RelayState


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
    # Retired (退役): kept for the history of its meters, no longer offered or polled.
    retired_at = fields.DatetimeField(null=True)

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
    # Where the meter is installed, whether or not the room has a tenant: a vacant room's
    # meter keeps its room, and the account opened there later finds it (None: a master or
    # common-area meter).
    room: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Room", related_name="meters", on_delete=fields.RESTRICT, null=True
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
    # Who opened the relay (alarms.TripCause), set when the meter confirms an open relay.
    trip_cause = fields.CharField(max_length=16, null=True)
    relay_confirmed_at = fields.DatetimeField(null=True)
    last_reading_at = fields.DatetimeField(null=True)
    # Meter-billed (表端计费): the meter's money register as last confirmed by the meter.
    purchase_count = fields.IntField(default=0)
    money_fen = fields.BigIntField(null=True)
    money_read_at = fields.DatetimeField(null=True)
    # 换表: the meter this one replaced (set by services.replacement), so a meter's page and
    # its usage chart follow the chain both ways.
    replaces: fields.ForeignKeyNullableRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="successors", on_delete=fields.RESTRICT, null=True
    )

    class Meta:
        table = "meter"
        # Database constraints (one active device per address, ratios > 0) live in
        # migrations/0002_constraints.py: Tortoise 1.1 does not emit Meta.constraints.

    @property
    def multiplier(self) -> int:
        return self.ct_ratio * self.pt_ratio


# -- readings ---------------------------------------------------------------------------------
class ReadingSource(StrEnum):
    POLL = "poll"  # the collector's scheduled round over a bus
    READ_NOW = "read_now"  # 点抄: a person asked for a reading now
    GATEWAY = "gateway"  # a gateway's realtime message (src=RT)
    HISTORY = "history"  # a gateway's replay of buffered readings (src=HIS)
    MANUAL = "manual"  # entered by staff (换表 final reading of a dead meter)


class BillingStatus(StrEnum):
    NONE = "none"  # nothing to bill: baseline, late point, meter-billed meter
    PENDING = "pending"  # a delta waits for the billing service
    BILLED = "billed"
    FAILED = "failed"  # billing refused it (no tariff, …); see billing_error


class Reading(Model):
    """An accepted register reading (raw, before CT×PT). Unique by (meter, taken_at): the
    reading's idempotency key, so a replayed or duplicated reading is a no-op."""

    id = fields.BigIntField(primary_key=True)
    meter: fields.ForeignKeyRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="readings", on_delete=fields.RESTRICT
    )
    taken_at = fields.DatetimeField()
    total = fields.DecimalField(max_digits=14, decimal_places=4)
    bands = fields.JSONField(default=dict)  # {"1": "12.34", …} exact strings
    outcome = fields.CharField(max_length=16)  # server.metering.ingest.Outcome
    source = fields.CharEnumField(ReadingSource, max_length=10)
    # Billing of the delta from the previous accepted reading to this one.
    billing = fields.CharEnumField(BillingStatus, max_length=8, default=BillingStatus.NONE)
    prev_taken_at = fields.DatetimeField(null=True)
    energy = fields.CharField(max_length=40, default="0")  # billed delta × multiplier (exact)
    billing_error = fields.CharField(max_length=200, default="")
    money_fen = fields.BigIntField(null=True)  # meter-billed: remaining money at this reading
    purchase_count = fields.IntField(null=True)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "meter_reading"
        unique_together = (("meter", "taken_at"),)


class ReviewStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"  # staff accepted it (a new baseline, or a corrected value)
    REJECTED = "rejected"


class HeldReading(Model):
    """A reading held for review (conflict, reset, implausible jump): stored, never billed
    unless a person accepts it (`services.held`, which says what accepting each reason means)."""

    id = fields.BigIntField(primary_key=True)
    meter: fields.ForeignKeyRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="held_readings", on_delete=fields.RESTRICT
    )
    taken_at = fields.DatetimeField()
    total = fields.DecimalField(max_digits=14, decimal_places=4)
    bands = fields.JSONField(default=dict)
    outcome = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=300)  # Chinese, for the review queue
    source = fields.CharEnumField(ReadingSource, max_length=10)
    status = fields.CharEnumField(ReviewStatus, max_length=10, default=ReviewStatus.OPEN)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The review: who decided and when, and why (a rejection's reason; what accepting did);
    # None while open (ingest's raw insert names only the columns it knows).
    decided_by = fields.CharField(max_length=64, null=True)
    decided_at = fields.DatetimeField(null=True)
    decision = fields.CharField(max_length=300, null=True)

    class Meta:
        table = "held_reading"
        unique_together = (("meter", "taken_at"),)


# -- commands ---------------------------------------------------------------------------------
class CommandOp(StrEnum):
    TRIP = "trip"
    CLOSE = "close"
    CLOSE_ALLOWED = "close_allowed"
    PROTECT_ON = "protect_on"
    PROTECT_OFF = "protect_off"
    RECHARGE = "recharge"  # params: amount_fen; purchase_count fixed at the first send
    READ = "read"  # 点抄
    PRICES = "prices"
    ALARM_AMOUNTS = "alarm_amounts"


class CommandStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # handed to the wire; a crash here is resolved by reading the meter
    ACKED = "acked"
    FAILED = "failed"
    EXPIRED = "expired"


TERMINAL = frozenset({CommandStatus.ACKED, CommandStatus.FAILED, CommandStatus.EXPIRED})


class MeterCommand(Model):
    """A command to a meter: a durable row first, then work for the controller."""

    id = fields.BigIntField(primary_key=True)
    meter: fields.ForeignKeyRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="commands", on_delete=fields.RESTRICT
    )
    op = fields.CharEnumField(CommandOp, max_length=16)
    params = fields.JSONField(default=dict)
    status = fields.CharEnumField(CommandStatus, max_length=8, default=CommandStatus.QUEUED)
    key = fields.CharField(max_length=160, null=True, unique=True)  # idempotency key
    actor = fields.CharField(max_length=64)  # "staff:12", "system:alarms", …
    reason = fields.CharField(max_length=300, default="")
    batch_id = fields.CharField(max_length=64, null=True, db_index=True)
    attempts = fields.IntField(default=0)
    max_attempts = fields.IntField(default=5)
    last_error = fields.CharField(max_length=500, default="")
    result = fields.JSONField(default=dict)  # what the meter confirmed
    created_at = fields.DatetimeField(auto_now_add=True)
    next_attempt_at = fields.DatetimeField(db_index=True)
    expires_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "meter_command"


# -- alarms -----------------------------------------------------------------------------------
class MeteringPolicy(Model):
    """A site's collection and alarm rules (absent: the defaults)."""

    id = fields.IntField(primary_key=True)
    site: fields.OneToOneRelation = fields.OneToOneField(
        "models.Site", related_name="metering_policy", on_delete=fields.CASCADE
    )
    poll_interval_s = fields.IntField(default=900)
    offline_after = fields.IntField(default=3)  # missed reads before a meter is offline
    alarm = fields.JSONField(default=dict)  # server.metering.service.config schema

    class Meta:
        table = "metering_policy"


class AccountAlarmState(Model):
    """`alarms.AlarmState` of one account, its per-account override, and the forecast rate."""

    id = fields.IntField(primary_key=True)
    account: fields.OneToOneRelation = fields.OneToOneField(
        "models.Account", related_name="alarm_state", on_delete=fields.CASCADE
    )
    state = fields.JSONField(default=dict)
    override = fields.JSONField(default=dict)
    daily_use_fen = fields.CharField(max_length=40, null=True)  # forecast rate, daily refresh
    deferred_until = fields.DatetimeField(null=True)  # a trip waits for this moment
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "account_alarm_state"


class AlarmRecord(Model):
    """An alarm for the tenant, handed to the notifier (`notified_at` is the notifier's)."""

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="alarms", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)  # alarms.AlarmKind
    level = fields.IntField()
    balance_fen = fields.BigIntField()
    message = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(db_index=True)
    notified_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "alarm_record"


# -- meter-billed reconciliation --------------------------------------------------------------
class ReconciliationItem(Model):
    """One difference (or a clean match) between a meter-billed meter and the platform."""

    id = fields.BigIntField(primary_key=True)
    meter: fields.ForeignKeyRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="reconciliations", on_delete=fields.RESTRICT
    )
    day = fields.DateField()
    kind = fields.CharField(max_length=24)  # services.reconcile.Difference
    meter_count = fields.IntField(null=True)
    platform_count = fields.IntField(null=True)
    meter_fen = fields.BigIntField(null=True)
    platform_fen = fields.BigIntField(null=True)
    detail = fields.CharField(max_length=300, default="")  # Chinese, for staff
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "meter_reconciliation"
        unique_together = (("meter", "day", "kind"),)


# -- live values and daily usage (room monitoring, the mini-program) ------------------------
class LiveValues(Model):
    """The latest values read from one meter: one row per meter, updated in place by
    `services.live_values.record` (a value older than the stored one is ignored).

    `read_at`/`total`/`relay_state` come with every reading; U, I, P, PF only with the rounds
    that read them (`instant_at`: their own time, see settings.live_every_*)."""

    id = fields.IntField(primary_key=True)
    meter: fields.OneToOneRelation[Meter] = fields.OneToOneField(
        "models.Meter", related_name="live", on_delete=fields.CASCADE
    )
    read_at = fields.DatetimeField()
    total = fields.DecimalField(max_digits=14, decimal_places=4)  # register, before CT×PT
    relay_state = fields.CharEnumField(RelayState, max_length=10, default=RelayState.UNKNOWN)
    instant_at = fields.DatetimeField(null=True)
    voltage = fields.DecimalField(max_digits=12, decimal_places=4, null=True)  # V
    current = fields.DecimalField(max_digits=12, decimal_places=4, null=True)  # A
    power = fields.DecimalField(max_digits=12, decimal_places=4, null=True)  # kW
    power_factor = fields.DecimalField(max_digits=12, decimal_places=4, null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "meter_live"


class DailyUsage(Model):
    """One meter's use on one local day (settings.timezone), per TOU band, and the money the
    platform charged for it — maintained as readings are ingested and billed
    (`services.daily_usage`; rules in `server.metering.daily` and docs/daily-usage.md).

    Quantities are whole units of 0.0001 kWh / m³ (CT×PT applied): integers add exactly in
    SQL on PostgreSQL and SQLite alike. `amount_fen` is None when the platform charged
    nothing for the day (meter-billed meters, master meters, vacant rooms)."""

    id = fields.BigIntField(primary_key=True)
    meter: fields.ForeignKeyRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="daily_usage", on_delete=fields.RESTRICT
    )
    # The meter's account when the day was last written (None: a vacant room, a master meter).
    account: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Account", related_name="daily_usage", on_delete=fields.RESTRICT, null=True
    )
    day = fields.DateField()
    quantity_e4 = fields.BigIntField(default=0)
    band1_e4 = fields.BigIntField(default=0)  # 尖 sharp
    band2_e4 = fields.BigIntField(default=0)  # 峰 peak
    band3_e4 = fields.BigIntField(default=0)  # 平 flat
    band4_e4 = fields.BigIntField(default=0)  # 谷 valley
    band5_e4 = fields.BigIntField(default=0)  # 深谷 deep valley
    amount_fen = fields.BigIntField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "daily_usage"
        unique_together = (("meter", "day"),)


# -- batch operations (批量操作) ------------------------------------------------------------------
class BatchAction(StrEnum):
    """What a batch does to each of its meters (one command per meter)."""

    TRIP = "trip"
    CLOSE = "close"
    PROTECT_ON = "protect_on"
    PROTECT_OFF = "protect_off"
    PRICES = "prices"
    ALARM_AMOUNTS = "alarm_amounts"
    RECHARGE = "recharge"  # the wallet's free money, as 下发充值 on one meter
    READ = "read"


class BatchStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for run_at; nothing queued yet
    RUNNING = "running"  # its commands are queued; some are not finished
    DONE = "done"  # every item finished (or cancelled)
    CANCELLED = "cancelled"  # cancelled before it was released


class BatchItemState(StrEnum):
    PENDING = "pending"  # the batch has not been released
    RELEASED = "released"  # `command` carries it; its status is the item's
    CANCELLED = "cancelled"  # cancelled before anything was sent
    SKIPPED = "skipped"  # could not be queued (meter removed, nothing to recharge…): `error`


class MeterBatch(Model):
    """A batch operation: one action on many meters of one site, now or at `run_at`.

    The row is the schedule: a worker releases it (queues one durable command per item) when
    `run_at` has come, so a restart of anything loses nothing."""

    id = fields.IntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="meter_batches", on_delete=fields.RESTRICT
    )
    action = fields.CharEnumField(BatchAction, max_length=16)
    params = fields.JSONField(default=dict)
    title = fields.CharField(max_length=100, default="")
    selection = fields.JSONField(default=dict)  # how the meters were picked, for the page
    status = fields.CharEnumField(BatchStatus, max_length=10, default=BatchStatus.SCHEDULED)
    run_at = fields.DatetimeField()
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    released_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    outcome = fields.JSONField(default=dict)  # counts per state once done

    class Meta:
        table = "meter_batch"
        indexes = (("status", "run_at"),)


class MeterBatchItem(Model):
    """One meter of a batch and the command that carries it (the latest, after a retry)."""

    id = fields.BigIntField(primary_key=True)
    batch: fields.ForeignKeyRelation[MeterBatch] = fields.ForeignKeyField(
        "models.MeterBatch", related_name="items", on_delete=fields.CASCADE
    )
    meter: fields.ForeignKeyRelation[Meter] = fields.ForeignKeyField(
        "models.Meter", related_name="batch_items", on_delete=fields.RESTRICT
    )
    command: fields.ForeignKeyNullableRelation[MeterCommand] = fields.ForeignKeyField(
        "models.MeterCommand", related_name="batch_items", on_delete=fields.RESTRICT, null=True
    )
    state = fields.CharEnumField(BatchItemState, max_length=10, default=BatchItemState.PENDING)
    tries = fields.IntField(default=0)  # commands queued for it (a retry adds one)
    error = fields.CharField(max_length=300, default="")

    class Meta:
        table = "meter_batch_item"
        unique_together = (("batch", "meter"),)
