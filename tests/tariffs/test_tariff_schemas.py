"""The JSON form of plans: round trip, and Chinese errors for every kind of bad input."""

import json
from datetime import datetime, time
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.tariffs import (
    LOCAL_TZ,
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    InvalidTariff,
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
)
from server.tariffs.schemas import from_plan, from_tariff, to_plan, to_tariff

SUMMER = DaySchedule(
    (
        TimeSegment(time(23), time(7), Band.VALLEY),
        TimeSegment(time(7), time(11), Band.FLAT),
        TimeSegment(time(11), time(12), Band.SHARP),
        TimeSegment(time(12), time(23), Band.PEAK),
    )
)
OTHER = DaySchedule(
    (TimeSegment(time(0), time(8), Band.DEEP_VALLEY), TimeSegment(time(8), time(0), Band.FLAT))
)
TOU = TouPlan(
    {Band.SHARP: D("1.25620"), Band.PEAK: D("1.0468"), Band.FLAT: D("0.65"), Band.VALLEY: D("0.3"),
     Band.DEEP_VALLEY: D("0.1")},
    (
        Season("夏季", frozenset({7, 8}), SUMMER, holiday=OTHER),
        Season("其他", frozenset(set(range(1, 13)) - {7, 8}), OTHER),
    ),
)  # fmt: skip
PLANS = [
    FlatPlan(D("0.6500")),
    FlatPlan(D("4.2"), Unit.M3),
    TOU,
    TieredPlan((Tier(D(2760), D("0.68")), Tier(D(4800), D("0.73")), Tier(None, D("0.98")))),
    TieredPlan((Tier(D(22), D("3.45")), Tier(None, D("4.83"))), TierPeriod.MONTH, unit=Unit.M3),
    TieredPlan((Tier(D(200), D(0)), Tier(None, D("0.05"))), TierPeriod.MONTH, base=TOU),
    TwoPartPlan(TOU, ChargeBasis.CAPACITY, D("23.00")),
    TwoPartPlan(FlatPlan(D("0.6")), ChargeBasis.DEMAND, D("35")),
]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: type(p).__name__)
def test_every_plan_round_trips_through_json_text(plan) -> None:
    stored = json.dumps(from_plan(plan), ensure_ascii=False)
    assert to_plan(stored) == plan
    assert to_plan(json.loads(stored)) == plan
    assert from_plan(to_plan(stored)) == json.loads(stored)


def test_the_json_form_is_readable() -> None:
    data = from_plan(TieredPlan((Tier(D(2760), D("0.68")), Tier(None, D("0.98")))))
    assert data == {
        "kind": "tiered",
        "unit": "kWh",
        "period": "year",
        "tiers": [{"upto": "2760", "price": "0.68"}, {"upto": None, "price": "0.98"}],
        "base": None,
    }
    assert from_plan(TOU)["seasons"][1]["workday"][1] == {
        "start": "08:00",
        "end": "24:00",
        "band": 3,
    }


def test_a_tariff_round_trips_with_its_versions() -> None:
    tariff = Tariff(
        (
            PlanVersion(datetime(2025, 1, 1, tzinfo=LOCAL_TZ), PLANS[0]),
            PlanVersion(datetime(2025, 7, 1, tzinfo=LOCAL_TZ), TOU),
        )
    )
    data = from_tariff(tariff)
    assert data["versions"][1]["effective_from"] == "2025-07-01T00:00:00+08:00"
    assert to_tariff(json.dumps(data)) == tariff


@settings(max_examples=100, deadline=None)
@given(
    price=st.decimals(min_value=0, max_value=100, places=5),
    uptos=st.lists(
        st.decimals(min_value="0.001", max_value=10**6, places=3), max_size=4, unique=True
    ),
    period=st.sampled_from(list(TierPeriod)),
    unit=st.sampled_from(list(Unit)),
)
def test_tiered_plans_round_trip(price, uptos, period, unit) -> None:
    tiers = (*(Tier(u, price) for u in sorted(uptos)), Tier(None, price))
    plan = TieredPlan(tiers, period, unit=unit)
    assert to_plan(json.dumps(from_plan(plan))) == plan


def flat_day(band: int = 3) -> list[dict]:
    return [{"start": "00:00", "end": "24:00", "band": band}]


def tou_json(*segments: tuple[str, str, int], months: list[int] | None = None) -> dict:
    workday = [{"start": a, "end": b, "band": band} for a, b, band in segments]
    season = {"name": "全年", "months": months or list(range(1, 13)), "workday": workday}
    return {"kind": "tou", "prices": {"3": "1"}, "seasons": [season]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "flat"}, "flat.price：缺少必填字段"),
        ({"kind": "flat", "price": "abc"}, "flat.price：必须是数字"),
        ({"kind": "flat", "price": "-0.1"}, "flat.price：价格不能为负数"),
        ({"kind": "flat", "price": "0.123456"}, "flat.price：价格最多保留5位小数"),
        ({"kind": "flat", "price": "1", "colour": "red"}, "flat.colour：不允许的字段"),
        ({"kind": "gas", "price": "1"}, "方案类型无效"),
        ({"price": "1"}, "缺少方案类型 kind"),
        (
            tou_json(("00:00", "12:00", 3)),
            "tou.seasons.0：时段未覆盖全天24小时",
        ),
        (
            tou_json(("00:00", "13:00", 3), ("12:00", "24:00", 3)),
            "时段相互重叠",
        ),
        (
            tou_json(("7:00", "24:00", 3)),
            "时间格式应为 HH:MM",
        ),
        (
            {"kind": "tou", "prices": {"9": "1"}, "seasons": [{"name": "全年", "months": [1],
             "workday": flat_day()}]},
            "tou.prices.9：取值无效",
        ),
        (
            tou_json(("00:00", "24:00", 3), months=[1, 2]),
            "恰好覆盖1到12月",
        ),
        (
            tou_json(("00:00", "24:00", 2)),
            "时段“峰”没有设置单价",
        ),
        (
            {"kind": "tiered", "tiers": [{"upto": "100", "price": "1"},
             {"upto": "90", "price": "2"}, {"upto": None, "price": "3"}]},
            "阶梯上限必须大于零并逐档递增",
        ),
        (
            {"kind": "two_part", "basis": "capacity", "rate": "23",
             "energy": {"kind": "flat", "unit": "m³", "price": "1"}},
            "两部制只适用于电",
        ),
        ("{not json", "不是有效的 JSON"),
    ],
)  # fmt: skip
def test_bad_plans_are_refused_in_chinese(data, message) -> None:
    with pytest.raises(InvalidTariff) as caught:
        to_plan(data)
    assert caught.value.message.startswith("价格方案无效：")
    assert message in caught.value.message
    assert caught.value.status_code == 422


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(InvalidTariff) as caught:
        to_plan({"kind": "tou", "prices": {"2": "-1", "3": "0.1234567"}, "seasons": []})
    problems = caught.value.context["problems"]
    assert problems == [
        "tou.prices.2：价格不能为负数",
        "tou.prices.3：价格最多保留5位小数",
        "tou.seasons：不能为空",
    ]


def test_tariff_versions_need_a_time_zone_and_increasing_times() -> None:
    version = {"effective_from": "2025-01-01T00:00:00", "plan": {"kind": "flat", "price": "1"}}
    with pytest.raises(InvalidTariff, match="时间必须带时区"):
        to_tariff({"versions": [version]})
    same = {**version, "effective_from": "2025-01-01T00:00:00+08:00"}
    with pytest.raises(InvalidTariff, match="严格递增"):
        to_tariff({"versions": [same, same]})
