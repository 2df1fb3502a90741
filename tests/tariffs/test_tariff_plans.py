"""Plan invariants: an invalid plan cannot be built, and says why in Chinese."""

from datetime import UTC, datetime, time
from decimal import Decimal as D

import pytest

from server.tariffs import (
    LOCAL_TZ,
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    InvalidTariff,
    NoPlanInForce,
    PlanVersion,
    Season,
    Tariff,
    Tier,
    TieredPlan,
    TimeSegment,
    TouPlan,
    TwoPartPlan,
    Unit,
)

ALL_YEAR = frozenset(range(1, 13))


def day(*parts: tuple[int, int, Band]) -> DaySchedule:
    return DaySchedule(tuple(TimeSegment(time(a), time(b % 24), band) for a, b, band in parts))


def test_a_day_may_wrap_past_midnight() -> None:
    schedule = day((23, 7, Band.VALLEY), (7, 19, Band.PEAK), (19, 23, Band.FLAT))
    assert schedule.band_at_minute(0) is Band.VALLEY
    assert schedule.band_at_minute(23 * 60 + 59) is Band.VALLEY
    assert schedule.band_at_minute(7 * 60) is Band.PEAK
    assert schedule.band_at_minute(19 * 60 - 1) is Band.PEAK


def test_a_single_whole_day_segment() -> None:
    assert day((0, 0, Band.FLAT)).band_at_minute(720) is Band.FLAT


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (((0, 8, Band.VALLEY), (9, 24, Band.FLAT)), "时段未覆盖全天24小时"),
        (((0, 8, Band.VALLEY), (8, 23, Band.FLAT)), "时段未覆盖全天24小时"),
        (((0, 9, Band.VALLEY), (8, 24, Band.FLAT)), "时段相互重叠"),
        (((22, 8, Band.VALLEY), (8, 23, Band.FLAT)), "时段相互重叠"),
        (((5, 5, Band.FLAT),), "时段的开始和结束时间不能相同"),
    ],
)
def test_segments_must_cover_the_day_exactly_once(parts, message) -> None:
    with pytest.raises(InvalidTariff, match=message):
        day(*parts)


def test_segments_are_whole_minutes() -> None:
    with pytest.raises(InvalidTariff, match="只能精确到分钟"):
        DaySchedule((TimeSegment(time(0, 0, 30), time(0), Band.FLAT),))


def test_months_must_be_covered_once() -> None:
    whole = day((0, 24, Band.FLAT))
    with pytest.raises(InvalidTariff, match="恰好覆盖1到12月"):
        TouPlan({Band.FLAT: D(1)}, (Season("a", frozenset(range(1, 12)), whole),))
    with pytest.raises(InvalidTariff, match="恰好覆盖1到12月"):
        TouPlan(
            {Band.FLAT: D(1)},
            (Season("a", ALL_YEAR, whole), Season("b", frozenset({7}), whole)),
        )
    with pytest.raises(InvalidTariff, match="月份必须在1到12之间"):
        Season("a", frozenset({0, 13}), whole)


def test_every_band_in_a_schedule_needs_a_price() -> None:
    holiday = day((0, 24, Band.DEEP_VALLEY))
    with pytest.raises(InvalidTariff, match="时段“深谷”没有设置单价"):
        TouPlan({Band.FLAT: D(1)}, (Season("a", ALL_YEAR, day((0, 24, Band.FLAT)), holiday),))


@pytest.mark.parametrize(
    ("price", "message"),
    [(D("-0.01"), "不能为负数"), (D("0.123456"), "最多保留5位小数"), (D("NaN"), "必须是数字")],
)
def test_prices_are_non_negative_with_at_most_five_decimals(price, message) -> None:
    with pytest.raises(InvalidTariff, match=message):
        FlatPlan(price)


def test_five_decimals_and_zero_are_fine() -> None:
    assert FlatPlan(D("0.12345")).price == D("0.12345")
    assert FlatPlan(D(0)).price == 0


def test_tier_thresholds_increase_and_only_the_last_is_open() -> None:
    with pytest.raises(InvalidTariff, match="逐档递增"):
        TieredPlan((Tier(D(100), D(1)), Tier(D(100), D(2)), Tier(None, D(3))))
    with pytest.raises(InvalidTariff, match="逐档递增"):
        TieredPlan((Tier(D(0), D(1)), Tier(None, D(2))))
    with pytest.raises(InvalidTariff, match="只有最后一档不设上限"):
        TieredPlan((Tier(D(100), D(1)), Tier(D(200), D(2))))
    with pytest.raises(InvalidTariff, match="只有最后一档不设上限"):
        TieredPlan((Tier(None, D(1)), Tier(None, D(2))))
    with pytest.raises(InvalidTariff, match="阶梯至少需要一档"):
        TieredPlan(())


def test_units_must_agree() -> None:
    with pytest.raises(InvalidTariff, match="计量单位不一致"):
        TieredPlan((Tier(None, D(0)),), base=FlatPlan(D(1), Unit.M3))
    with pytest.raises(InvalidTariff, match="两部制只适用于电"):
        TwoPartPlan(FlatPlan(D(1), Unit.M3), ChargeBasis.CAPACITY, D(23))


def test_versions_are_aware_and_strictly_increasing() -> None:
    plan = FlatPlan(D(1))
    jan = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
    with pytest.raises(InvalidTariff, match="生效时间必须带时区"):
        Tariff((PlanVersion(datetime(2025, 1, 1), plan),))
    with pytest.raises(InvalidTariff, match="严格递增"):
        Tariff((PlanVersion(jan, plan), PlanVersion(jan, plan)))
    with pytest.raises(InvalidTariff, match="至少需要一个版本"):
        Tariff(())
    with pytest.raises(InvalidTariff, match="计量单位必须一致"):
        Tariff((PlanVersion(jan, plan), PlanVersion(jan.replace(month=2), FlatPlan(D(1), Unit.M3))))


def test_plan_at_picks_the_version_in_force() -> None:
    old, new = FlatPlan(D("0.60")), FlatPlan(D("0.65"))
    change = datetime(2025, 7, 1, tzinfo=LOCAL_TZ)
    tariff = Tariff(
        (PlanVersion(datetime(2025, 1, 1, tzinfo=LOCAL_TZ), old), PlanVersion(change, new))
    )
    assert tariff.plan_at(change) is new
    assert tariff.plan_at(datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC)) is old  # 23:59:59 local
    assert tariff.plan_at(datetime(2025, 6, 30, 16, 0, tzinfo=UTC)) is new  # 00:00 local
    with pytest.raises(NoPlanInForce, match="尚无生效的价格方案"):
        tariff.plan_at(datetime(2024, 12, 31, tzinfo=LOCAL_TZ))
