"""Payloads of the gateway contract (v1), validated with pydantic.

Decimals (kWh, V, A, kW, PF, yuan/kWh) travel as JSON strings and are refused as JSON
numbers: a float on the wire has already lost the exact value. Money is integer fen.
Timestamps are ISO 8601 with an offset. Unknown fields are ignored so a newer gateway can
talk to an older platform; `v` must be 1.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    model_validator,
)
from pydantic_core import core_schema

from workers.meters.base import (
    Instant,
    MeterSnapshot,
    MeterStatus,
    MoneyRegister,
    Reading,
    RelayAction,
    RelayState,
)


def _decimal_string(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError("decimals travel as strings, never as JSON numbers")
    return value


class _DecimalString:
    """Validation of `DecStr`, built as one pydantic-core schema.

    JSON (every incoming message): a strict string, then the Decimal parse, both in Rust —
    the Python-level validators this replaces cost ~40 % of validating a reading.
    Python (our own code building payloads): a Decimal or a string, never a float.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        decimal = core_schema.decimal_schema(allow_inf_nan=False)
        as_string = core_schema.custom_error_schema(
            core_schema.str_schema(strict=True),
            "decimal_string",
            custom_error_message="decimals travel as strings, never as JSON numbers",
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([as_string, decimal]),
            python_schema=core_schema.no_info_before_validator_function(_decimal_string, decimal),
            serialization=core_schema.to_string_ser_schema(when_used="always"),
        )


DecStr = Annotated[Decimal, _DecimalString]
Address = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,16}$")]
Fen = Annotated[int, Field(strict=True)]


class Source(StrEnum):
    REALTIME = "RT"
    HISTORY = "HIS"  # store-and-forward replay after a link outage


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class MeterReading(_Msg):
    """One meter in a data message (or the reading an ack carries back)."""

    addr: Address
    total: DecStr
    bands: dict[int, DecStr] = Field(default_factory=dict)
    remaining: Fen | None = None  # fen, meter-side billing only; negative = overdrawn
    count: int | None = Field(default=None, ge=0)  # purchase count
    relay: RelayState = RelayState.UNKNOWN
    protected: bool = False
    alarm_1: bool = False
    alarm_2: bool = False
    owing: bool = False
    # Instant values (optional, absent from older gateways and from rounds that skip them):
    u: DecStr | None = None  # V
    i: DecStr | None = None  # A
    p: DecStr | None = None  # kW
    pf: DecStr | None = None

    @classmethod
    def from_snapshot(cls, snap: MeterSnapshot) -> MeterReading:
        inst, money = snap.instant or Instant(), snap.money
        return cls(
            addr=snap.address,
            total=snap.reading.total,
            bands=snap.reading.bands,
            remaining=money.remaining_fen if money else None,
            count=money.purchase_count if money else None,
            relay=snap.status.relay,
            protected=snap.status.protected,
            alarm_1=snap.status.alarm_1,
            alarm_2=snap.status.alarm_2,
            owing=snap.status.owing,
            u=inst.voltage,
            i=inst.current,
            p=inst.power,
            pf=inst.power_factor,
        )

    def registers(self, taken_at: datetime) -> Reading:
        return Reading(taken_at, self.total, self.bands)

    def instant(self) -> Instant:
        return Instant(voltage=self.u, current=self.i, power=self.p, power_factor=self.pf)

    def status(self) -> MeterStatus:
        return MeterStatus(
            relay=self.relay,
            protected=self.protected,
            alarm_1=self.alarm_1,
            alarm_2=self.alarm_2,
            owing=self.owing,
        )

    def money(self) -> MoneyRegister | None:
        if self.remaining is None or self.count is None:
            return None
        return MoneyRegister(remaining_fen=self.remaining, purchase_count=self.count)

    def has_instant(self) -> bool:
        """Whether the gateway sent any of U, I, P, PF (optional: older gateways send none)."""
        return not (self.u is None and self.i is None and self.p is None and self.pf is None)

    def snapshot(self, taken_at: datetime) -> MeterSnapshot:
        return MeterSnapshot(
            address=self.addr,
            reading=self.registers(taken_at),
            status=self.status(),
            instant=self.instant() if self.has_instant() else None,
            money=self.money(),
        )


class DataMessage(_Msg):
    """`gw/{gw}/up/data`: readings collected at `ts_collect`, sent at `ts_send`."""

    v: Literal[1] = 1
    msgid: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    src: Source
    ts_collect: AwareDatetime
    ts_send: AwareDatetime
    meters: list[MeterReading] = Field(min_length=1)


class Op(StrEnum):
    READ = "read"
    RELAY = "relay"
    RECHARGE = "recharge"
    PRICES = "prices"
    ALARMS = "alarms"


_REQUIRED = {
    Op.READ: (),
    Op.RELAY: ("action",),
    Op.RECHARGE: ("amount_fen", "count"),
    Op.PRICES: ("prices",),
    Op.ALARMS: ("alarm_1_fen", "alarm_2_fen"),
}


class Command(_Msg):
    """`gw/{gw}/down/cmd`: one operation on one meter; not to be executed after expires_at."""

    v: Literal[1] = 1
    cmd_id: str = Field(min_length=1, max_length=64)
    expires_at: AwareDatetime
    addr: Address
    op: Op
    action: RelayAction | None = None
    amount_fen: Fen | None = Field(default=None, gt=0)
    count: int | None = Field(default=None, ge=1)
    prices: dict[int, DecStr] | None = None
    alarm_1_fen: Fen | None = Field(default=None, ge=0)
    alarm_2_fen: Fen | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _fields_for_op(self) -> Command:
        missing = [f for f in _REQUIRED[self.op] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"op {self.op} needs {', '.join(missing)}")
        return self


class AckError(StrEnum):
    EXPIRED = "expired"
    UNKNOWN_METER = "unknown_meter"
    REFUSED = "refused"  # the meter said no; `code` is its own error code
    RECHARGE_REFUSED = "recharge_refused"  # purchase count not last + 1
    BAD_COMMAND = "bad_command"


class Ack(_Msg):
    """`gw/{gw}/up/ack`: the outcome of a command, with the meter's reading after it."""

    v: Literal[1] = 1
    cmd_id: str = Field(min_length=1, max_length=64)
    ok: bool
    error: AckError | None = None
    code: int | None = None
    message: str | None = None
    ts: AwareDatetime
    meter: MeterReading | None = None

    @model_validator(mode="after")
    def _error_iff_not_ok(self) -> Ack:
        if self.ok == (self.error is not None):
            raise ValueError("an ack carries an error exactly when ok is false")
        return self


class GatewayStatus(_Msg):
    """`gw/{gw}/status` (retained): online on connect, offline as the last will."""

    v: Literal[1] = 1
    online: bool
    ts: AwareDatetime | None = None
