"""Reading ingestion rules: what a new register reading of a meter means for billing.

A reading is unique by (meter, collection time). The collector looks up the accepted
readings around the new one — `previous` (the latest at or before it) and `following`
(the earliest after it, present only when the new reading arrived late) — and `classify`
answers with one outcome:

    BASELINE      first reading of a meter: stored, nothing billed
    DUPLICATE     same time, same registers: a no-op (a replay)
    CONFLICT      same time, different registers: held for review
    ACCEPT        newer, registers grew plausibly: bill the delta
    ROLLOVER      newer, the register wrapped past its maximum: bill the wrapped delta
    OUT_OF_ORDER  older than an accepted reading, consistent with its neighbours: stored as a
                  point, nothing billed
    RESET         register fell far below the previous value, not a plausible wrap: held
    IMPLAUSIBLE   negative delta, or more than the meter can physically pass: held
    RESTART       a held fall a person accepted (`review`): the meter's new starting point,
                  nothing billed; usage curves start again from it

Late readings (OUT_OF_ORDER). Billing is by register difference, so when `previous` and
`following` were accepted, the use between them was billed exactly once as one delta. The
late reading is stored as an unbilled point (it refines the usage curve; the split it
implies is returned in `Classification.split`) and the billed interval is not re-split:
re-splitting would only move use between billing periods that may already be closed, and
never changes the total. This also makes a gateway replaying a month of history safe in
any order: readings newer than the last accepted one bill their delta, older ones bill
nothing.

Units. Readings are raw register values as the meter keeps them (before CT×PT). Deltas are
returned both raw (`register`) and multiplied (`energy` = register × multiplier, in kWh or
m³), and billing uses `energy`. The plausibility limit is in energy units: the meter's
rated rate (kW, or m³/h for water) × elapsed hours × a safety factor, plus one register
step so a short interval can still move the last digit.

Rollover. How far a register moved is `server.metering.reading.advance`'s to say, the one
rule billing uses too: a register with maximum 999999.99 wraps to 000000.00, its modulus is
the maximum plus one step of its last digit (`resolution`), so 999999.50 → 0.30 is 0.80. A
fall `advance` refuses is a RESET (far below the previous value) or IMPLAUSIBLE; so is a
roll-over larger than the meter could pass in the time.

Meter replacement (换表). The old meter's final reading closes the old meter like any
reading; the new meter's first reading is a BASELINE. `join_replacement` does both and
returns the offset that continues the account's cumulative series across the swap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from server.metering.reading import REGISTER_MAX, RESOLUTION, Reading, RegisterWentBack, advance

_SECONDS_PER_HOUR = Decimal(3600)


class Outcome(StrEnum):
    BASELINE = "baseline"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    ACCEPT = "accept"
    ROLLOVER = "rollover"
    OUT_OF_ORDER = "out_of_order"
    RESET = "reset"
    IMPLAUSIBLE = "implausible"
    RESTART = "restart"


# Outcomes whose delta goes to billing.
BILLABLE = frozenset({Outcome.ACCEPT, Outcome.ROLLOVER})
# Outcomes a person must look at before anything is billed or the baseline moves.
HELD = frozenset({Outcome.CONFLICT, Outcome.RESET, Outcome.IMPLAUSIBLE})


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """What the rules need to know about a meter.

    `rated_per_hour` is the most the installation can pass in an hour, in energy units
    after the multiplier (kW for electricity, m³/h for water).
    """

    rated_per_hour: Decimal
    register_max: Decimal = REGISTER_MAX
    resolution: Decimal = RESOLUTION
    multiplier: Decimal = Decimal(1)  # CT ratio × PT ratio
    safety_factor: Decimal = Decimal("1.5")
    reset_fraction: Decimal = Decimal("0.1")  # below this share of the previous: a reset

    def __post_init__(self) -> None:
        if self.rated_per_hour <= 0 or self.multiplier <= 0 or self.resolution <= 0:
            raise ValueError("rated_per_hour, multiplier and resolution must be positive")
        if self.register_max <= 0 or self.safety_factor < 1:
            raise ValueError("register_max must be positive and safety_factor at least 1")

    @property
    def modulus(self) -> Decimal:
        return self.register_max + self.resolution

    def allowance(self, start: datetime, end: datetime) -> Decimal:
        """The largest plausible use (energy units) between two collection times."""
        hours = Decimal((end - start).total_seconds()) / _SECONDS_PER_HOUR
        return self.rated_per_hour * hours * self.safety_factor + self.resolution * self.multiplier


@dataclass(frozen=True, slots=True)
class Usage:
    """Use between two readings: raw register difference and multiplied energy."""

    register: Decimal
    energy: Decimal
    bands: Mapping[int, Decimal] = field(default_factory=dict)  # energy per band

    @classmethod
    def zero(cls) -> Usage:
        return cls(register=Decimal(0), energy=Decimal(0))


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one reading. `usage` is what to bill: zero unless `billable`."""

    outcome: Outcome
    usage: Usage
    reason: str  # Chinese, for the review queue and the operation log
    split: tuple[Usage, Usage] | None = None  # OUT_OF_ORDER: previous→late, late→following

    @property
    def billable(self) -> bool:
        return self.outcome in BILLABLE

    @property
    def held_for_review(self) -> bool:
        return self.outcome in HELD


def classify(
    new: Reading,
    previous: Reading | None,
    spec: MeterSpec,
    following: Reading | None = None,
) -> Classification:
    """Classify `new` against the accepted readings around it (see the module docstring)."""
    if previous is not None and previous.taken_at > new.taken_at:
        raise ValueError("previous must not be later than the new reading")
    if following is not None and following.taken_at <= new.taken_at:
        raise ValueError("following must be later than the new reading")
    if previous is not None and previous.taken_at == new.taken_at:
        if previous.same_registers(new):
            return Classification(Outcome.DUPLICATE, Usage.zero(), "重复读数，已忽略")
        return Classification(Outcome.CONFLICT, Usage.zero(), "同一时刻的读数与已入库读数不一致")
    if following is not None:
        return _late(new, previous, following, spec)
    if previous is None:
        return Classification(Outcome.BASELINE, Usage.zero(), "首次读数，作为起点")
    return _step(previous, new, spec)


def _step(prev: Reading, curr: Reading, spec: MeterSpec) -> Classification:
    """Classify the newest reading `curr` after the accepted `prev`."""
    try:
        raw = advance(prev.total, curr.total, spec.modulus)
    except RegisterWentBack:
        return _fallen(prev, curr, spec)
    outcome = Outcome.ACCEPT if curr.total >= prev.total else Outcome.ROLLOVER
    energy = raw * spec.multiplier
    allowance = spec.allowance(prev.taken_at, curr.taken_at)
    if energy > allowance and outcome is Outcome.ROLLOVER:
        return _fallen(prev, curr, spec)  # more than the meter can pass: not a wrap but a fall
    if energy > allowance:
        return Classification(
            Outcome.IMPLAUSIBLE,
            Usage.zero(),
            f"用量 {energy} 超过额定上限 {allowance.normalize()}，疑似异常跳变",
        )
    bands = _band_usage(prev, curr, raw, spec)
    if bands is None:
        return Classification(Outcome.IMPLAUSIBLE, Usage.zero(), "分时费率读数与总读数不一致")
    reason = "正常读数" if outcome is Outcome.ACCEPT else "表码满量程翻转，按翻转计算用量"
    return Classification(outcome, Usage(register=raw, energy=energy, bands=bands), reason)


def _fallen(prev: Reading, curr: Reading, spec: MeterSpec) -> Classification:
    if curr.total < prev.total * spec.reset_fraction:
        return Classification(
            Outcome.RESET,
            Usage.zero(),
            f"表码由 {prev.total} 降至 {curr.total}，疑似电表清零或被更换",
        )
    return Classification(
        Outcome.IMPLAUSIBLE, Usage.zero(), f"表码倒退：由 {prev.total} 降至 {curr.total}"
    )


def _band_usage(
    prev: Reading, curr: Reading, total_raw: Decimal, spec: MeterSpec
) -> dict[int, Decimal] | None:
    """Per-band energy; {} when the readings do not carry the same bands; None if inconsistent.

    A band register may wrap like the total; a band delta larger than the total delta (plus
    one step per band for the meter's own rounding) means the reading is not trustworthy.
    """
    if not prev.bands or set(prev.bands) != set(curr.bands):
        return {}
    tolerance = total_raw + spec.resolution * len(curr.bands)
    out: dict[int, Decimal] = {}
    for band, value in curr.bands.items():
        try:
            raw = advance(prev.bands[band], value, spec.modulus)
        except RegisterWentBack:
            return None
        if raw > tolerance:
            return None
        out[band] = raw * spec.multiplier
    return out


def _late(
    new: Reading, previous: Reading | None, following: Reading, spec: MeterSpec
) -> Classification:
    """A reading older than an accepted one: a point between billed readings, never billed."""
    after = _step(new, following, spec)
    if after.held_for_review:
        return Classification(
            after.outcome, Usage.zero(), f"迟到读数与其后读数不一致：{after.reason}"
        )
    if previous is None:
        return Classification(
            Outcome.OUT_OF_ORDER, Usage.zero(), "迟到读数早于起点，仅记录不计费", split=None
        )
    before = _step(previous, new, spec)
    if before.held_for_review:
        return Classification(
            before.outcome, Usage.zero(), f"迟到读数与其前读数不一致：{before.reason}"
        )
    return Classification(
        Outcome.OUT_OF_ORDER,
        Usage.zero(),
        "迟到读数，该区间已计费，仅记录不重复计费",
        split=(before.usage, after.usage),
    )


def review(
    new: Reading, previous: Reading | None, spec: MeterSpec
) -> tuple[Classification, Reading]:
    """A held reading a person accepted (server.metering.service.held): what it becomes, and
    the reading to store. Only the meter's newest reading can be accepted (`previous` is the
    latest accepted one, strictly earlier): a held reading older than an accepted one lies
    inside an interval already billed, and accepting it could only bill that use twice.

    - register at or above `previous` (a jump the rules found too large): ACCEPT, the whole
      difference billed once at the meter's multiplier; registers of TOU bands that do not
      agree with the total are dropped (the interval is priced on its total alone);
    - register below `previous` (a reset, a replaced register, a fall, a wrap too large to
      trust): RESTART, nothing billed — a fall is never billed as a guessed roll-over; the
      use between is not measured and a person charges it by hand if it is known;
    - no previous reading: BASELINE.
    """
    if previous is not None and previous.taken_at >= new.taken_at:
        raise ValueError("only a reading newer than every accepted one can be accepted")
    if previous is None:
        return Classification(Outcome.BASELINE, Usage.zero(), "人工确认：首次读数，作为起点"), new
    if new.total < previous.total:
        why = f"人工确认：表码由 {previous.total} 降至 {new.total}，自此重新起算，不计费"
        return Classification(Outcome.RESTART, Usage.zero(), why), new
    raw = new.total - previous.total
    bands = _band_usage(previous, new, raw, spec)
    if bands is None:  # the bands disagree with the total: keep the total only
        new = Reading(new.taken_at, new.total, {})
        bands = {}
    usage = Usage(register=raw, energy=raw * spec.multiplier, bands=bands)
    return Classification(Outcome.ACCEPT, usage, "人工确认：按两次读数之差计费"), new


@dataclass(frozen=True, slots=True)
class Replacement:
    """换表: the old meter's closing usage and the new meter's baseline, joined.

    `offset` continues the account's cumulative energy series: for any later reading `r`
    of the new meter, the account's cumulative energy is `offset + r.total × new multiplier`.
    """

    closing: Classification
    baseline: Reading
    offset: Decimal


def join_replacement(
    old_last: Reading,
    old_final: Reading,
    old_spec: MeterSpec,
    new_first: Reading,
    new_spec: MeterSpec,
    old_cumulative: Decimal,
) -> Replacement:
    """Close the old meter at `old_final` and start the new one at `new_first`.

    `old_cumulative` is the account's cumulative energy at `old_last`. When the old meter
    could not be read, staff enter an estimated `old_final`; a held closing (implausible,
    reset) does not move the series, and the review decides the closing use.
    """
    if new_first.taken_at < old_final.taken_at:
        raise ValueError("the new meter's first reading must not precede the old final reading")
    closing = classify(old_final, old_last, old_spec)
    at_swap = old_cumulative + closing.usage.energy
    offset = at_swap - new_first.total * new_spec.multiplier
    return Replacement(closing=closing, baseline=new_first, offset=offset)
