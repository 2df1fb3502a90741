"""The JSON form of tariff plans: what the admin panel posts and the database stores.

`to_plan` / `to_tariff` validate a JSON value and build the frozen plan; `from_plan` /
`from_tariff` give the JSON value back (decimals as strings, times as "HH:MM", bands as 1–5),
so a stored plan round-trips exactly. The plan invariants themselves (24 h covered once,
thresholds increasing, prices ≥ 0 with ≤ 5 decimals…) live in plans.py and are checked once,
when the plan is built; this module maps shapes and turns every error into Chinese.

    {"kind": "flat", "unit": "kWh", "price": "0.6500"}
    {"kind": "tou", "prices": {"2": "1.02", "3": "0.65", "4": "0.28"},
     "seasons": [{"name": "全年", "months": [1, …, 12],
                  "workday": [{"start": "00:00", "end": "08:00", "band": 4}, …],
                  "holiday": null}]}
    {"kind": "tiered", "period": "year", "base": null,
     "tiers": [{"upto": "2760", "price": "0.5283"}, {"upto": null, "price": "0.8283"}]}
    {"kind": "two_part", "basis": "capacity", "rate": "32", "energy": {…any of the above}}
    tariff: {"versions": [{"effective_from": "2025-01-01T00:00:00+08:00", "plan": {…}}]}
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from server.tariffs.errors import InvalidTariff
from server.tariffs.plans import (
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    Plan,
    PlanVersion,
    Season,
    Tariff,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
    TwoPartPlan,
    Unit,
    check_price,
)


def _price(value: Decimal) -> Decimal:
    try:
        return check_price(value, "价格")
    except InvalidTariff as error:
        raise PydanticCustomError("invalid_tariff", error.message) from error


Price = Annotated[Decimal, AfterValidator(_price)]
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _plan_invariants(self) -> _In:
        try:
            self.to_domain()
        except InvalidTariff as error:
            raise PydanticCustomError("invalid_tariff", error.message) from error
        return self

    def to_domain(self) -> Any:
        raise NotImplementedError


class SegmentIn(_In):
    start: HHMM
    end: HHMM
    band: Band

    def to_domain(self) -> TimeSegment:
        return TimeSegment(_parse_time(self.start), _parse_time(self.end), self.band)


class SeasonIn(_In):
    name: str = Field(min_length=1)
    months: list[int] = Field(min_length=1)
    workday: list[SegmentIn]
    holiday: list[SegmentIn] | None = None

    def to_domain(self) -> Season:
        holiday = self.holiday
        return Season(
            name=self.name,
            months=frozenset(self.months),
            workday=DaySchedule(tuple(s.to_domain() for s in self.workday)),
            holiday=DaySchedule(tuple(s.to_domain() for s in holiday)) if holiday else None,
        )


class FlatIn(_In):
    kind: Literal["flat"]
    unit: Unit = Unit.KWH
    price: Price

    def to_domain(self) -> FlatPlan:
        return FlatPlan(self.price, self.unit)


class TouIn(_In):
    kind: Literal["tou"]
    unit: Unit = Unit.KWH
    prices: dict[Band, Price]
    seasons: list[SeasonIn] = Field(min_length=1)

    def to_domain(self) -> TouPlan:
        seasons = tuple(s.to_domain() for s in self.seasons)
        return TouPlan(dict(sorted(self.prices.items())), seasons, self.unit)


class TierIn(_In):
    upto: Decimal | None
    price: Price

    def to_domain(self) -> Tier:
        return Tier(self.upto, self.price)


class TieredIn(_In):
    kind: Literal["tiered"]
    unit: Unit = Unit.KWH
    period: TierPeriod = TierPeriod.YEAR
    tiers: list[TierIn] = Field(min_length=1)
    base: Annotated[FlatIn | TouIn, Field(discriminator="kind")] | None = None

    def to_domain(self) -> TieredPlan:
        base = self.base.to_domain() if self.base else None
        tiers = tuple(t.to_domain() for t in self.tiers)
        return TieredPlan(tiers, self.period, base, self.unit)


class TwoPartIn(_In):
    kind: Literal["two_part"]
    basis: ChargeBasis
    rate: Price
    energy: Annotated[FlatIn | TouIn | TieredIn, Field(discriminator="kind")]

    def to_domain(self) -> TwoPartPlan:
        return TwoPartPlan(self.energy.to_domain(), self.basis, self.rate)


PlanIn = Annotated[FlatIn | TouIn | TieredIn | TwoPartIn, Field(discriminator="kind")]


class VersionIn(_In):
    effective_from: AwareDatetime
    plan: PlanIn

    def to_domain(self) -> PlanVersion:
        return PlanVersion(self.effective_from, self.plan.to_domain())


class TariffIn(_In):
    versions: list[VersionIn] = Field(min_length=1)

    def to_domain(self) -> Tariff:
        return Tariff(tuple(v.to_domain() for v in self.versions))


_PLAN = TypeAdapter(PlanIn)
_TARIFF = TypeAdapter(TariffIn)


def to_plan(data: dict[str, Any] | str | bytes) -> Plan:
    """Validate a plan's JSON form (dict or JSON text) and build it; `InvalidTariff` if bad."""
    return _validate(_PLAN, data).to_domain()


def to_tariff(data: dict[str, Any] | str | bytes) -> Tariff:
    """Validate a versioned tariff's JSON form and build it; `InvalidTariff` if bad."""
    return _validate(_TARIFF, data).to_domain()


def from_plan(plan: Plan) -> dict[str, Any]:
    """The JSON form of `plan` (only str, int, list, dict and None inside)."""
    if isinstance(plan, FlatPlan):
        return {"kind": "flat", "unit": plan.unit.value, "price": str(plan.price)}
    if isinstance(plan, TouPlan):
        return {
            "kind": "tou",
            "unit": plan.unit.value,
            "prices": {str(int(b)): str(p) for b, p in sorted(plan.prices.items())},
            "seasons": [_season_json(s) for s in plan.seasons],
        }
    if isinstance(plan, TieredPlan):
        return {
            "kind": "tiered",
            "unit": plan.unit.value,
            "period": plan.period.value,
            "tiers": [
                {"upto": None if t.upto is None else str(t.upto), "price": str(t.price)}
                for t in plan.tiers
            ],
            "base": from_plan(plan.base) if plan.base else None,
        }
    return {
        "kind": "two_part",
        "basis": plan.basis.value,
        "rate": str(plan.rate),
        "energy": from_plan(plan.energy),
    }


def from_tariff(tariff: Tariff) -> dict[str, Any]:
    """The JSON form of a versioned tariff."""
    return {
        "versions": [
            {"effective_from": v.effective_from.isoformat(), "plan": from_plan(v.plan)}
            for v in tariff.versions
        ]
    }


def _season_json(season: Season) -> dict[str, Any]:
    def segments(day: DaySchedule) -> list[dict[str, Any]]:
        return [
            {"start": _format_time(s.start, end=False), "end": _format_time(s.end, end=True),
             "band": int(s.band)}
            for s in day.segments
        ]  # fmt: skip

    return {
        "name": season.name,
        "months": sorted(season.months),
        "workday": segments(season.workday),
        "holiday": segments(season.holiday) if season.holiday else None,
    }


def _parse_time(text: str) -> time:
    return time(0) if text == "24:00" else time.fromisoformat(text)


def _format_time(t: time, *, end: bool) -> str:
    return "24:00" if end and t == time(0) else t.strftime("%H:%M")


_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "decimal_parsing": "必须是数字",
    "decimal_type": "必须是数字",
    "finite_number": "必须是有限的数字",
    "int_parsing": "必须是整数",
    "int_type": "必须是整数",
    "int_from_float": "必须是整数",
    "string_type": "必须是文本",
    "string_too_short": "不能为空",
    "string_pattern_mismatch": "时间格式应为 HH:MM（00:00 至 24:00）",
    "too_short": "不能为空",
    "enum": "取值无效",
    "literal_error": "取值无效",
    "union_tag_invalid": "方案类型无效，应为 flat、tou、tiered 或 two_part",
    "union_tag_not_found": "缺少方案类型 kind",
    "timezone_aware": "时间必须带时区",
    "datetime_parsing": "时间格式无效",
    "datetime_type": "时间格式无效",
    "json_invalid": "不是有效的 JSON",
}


def _validate(adapter: TypeAdapter[Any], data: dict[str, Any] | str | bytes) -> Any:
    try:
        if isinstance(data, str | bytes):
            return adapter.validate_json(data)
        return adapter.validate_python(data)
    except ValidationError as error:
        problems = [_problem(e) for e in error.errors()]
        raise InvalidTariff("价格方案无效：" + "；".join(problems), problems=problems) from None


def _problem(error: Any) -> str:
    message = error["msg"] if error["type"] == "invalid_tariff" else None
    message = message or _MESSAGES.get(error["type"], "格式无效")
    where = ".".join(str(part) for part in error["loc"] if part not in {"[key]"})
    return f"{where}：{message}" if where else message
