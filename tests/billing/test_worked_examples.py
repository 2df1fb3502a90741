"""Bills a finance clerk can check by hand.

Every figure below is worked out in the comments: quantity × unit price = amount, summed,
then turned into whole fen with the account's sub-fen carry (分以下的尾数结转到下次):

    exact fen = exact yuan × 100 + carry;  deduct = floor(exact fen);  new carry = the rest.

Prices are plausible Guangdong/Shenzhen-style figures, not any utility's official schedule.
"""

from datetime import datetime, time
from decimal import Decimal as D

from server.billing import BillingState, bill_usage
from server.metering.reading import Reading
from server.tariffs import (
    LOCAL_TZ,
    Band,
    ChargeBasis,
    DaySchedule,
    FlatPlan,
    LineKind,
    Season,
    Tier,
    TieredPlan,
    TierPeriod,
    TimeSegment,
    TouPlan,
    TwoPartPlan,
    Unit,
    basic_charge,
)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def seg(start: str, end: str, band: Band) -> TimeSegment:
    end_time = time(0) if end == "24:00" else time.fromisoformat(end)  # 24:00 is midnight
    return TimeSegment(time.fromisoformat(start), end_time, band)


# Shenzhen-style commercial TOU. All year: 谷 00–08, 平 08–10, 峰 10–12, 平 12–14, 峰 14–19,
# 平 19–24. July–September add 尖 11–12 and 15–17 inside the peak hours.
ORDINARY_DAY = DaySchedule(
    (
        seg("00:00", "08:00", Band.VALLEY),
        seg("08:00", "10:00", Band.FLAT),
        seg("10:00", "12:00", Band.PEAK),
        seg("12:00", "14:00", Band.FLAT),
        seg("14:00", "19:00", Band.PEAK),
        seg("19:00", "24:00", Band.FLAT),
    )
)
SUMMER_DAY = DaySchedule(
    (
        seg("00:00", "08:00", Band.VALLEY),
        seg("08:00", "10:00", Band.FLAT),
        seg("10:00", "11:00", Band.PEAK),
        seg("11:00", "12:00", Band.SHARP),
        seg("12:00", "14:00", Band.FLAT),
        seg("14:00", "15:00", Band.PEAK),
        seg("15:00", "17:00", Band.SHARP),
        seg("17:00", "19:00", Band.PEAK),
        seg("19:00", "24:00", Band.FLAT),
    )
)
SHOP_TOU = TouPlan(
    prices={
        Band.SHARP: D("1.2562"),
        Band.PEAK: D("1.0468"),
        Band.FLAT: D("0.6542"),
        Band.VALLEY: D("0.2617"),
    },
    seasons=(
        Season("夏季（7–9月）", frozenset({7, 8, 9}), SUMMER_DAY),
        Season("其他月份", frozenset({1, 2, 3, 4, 5, 6, 10, 11, 12}), ORDINARY_DAY),
    ),
)


def test_shenzhen_shop_july_on_time_of_use() -> None:
    # 深圳某商铺, 直接接入电表 (倍率 1), 7月1日0点 → 8月1日0点 的四个分时寄存器:
    #   尖  1 020.00 → 1 200.50   = 180.50 kWh × ¥1.2562 = ¥226.74410
    #   峰  3 100.00 → 3 720.25   = 620.25 kWh × ¥1.0468 = ¥649.27770
    #   平  5 000.00 → 5 910.00   = 910.00 kWh × ¥0.6542 = ¥595.32200
    #   谷  2 000.00 → 2 240.75   = 240.75 kWh × ¥0.2617 = ¥ 63.004275
    #   总 11 120.00 → 13 071.50  = 1 951.50 kWh (= 180.50 + 620.25 + 910.00 + 240.75)
    # 合计 226.7441 + 649.2777 + 595.322 + 63.004275 = ¥1 534.348075
    # = 153 434.8075 分 → 扣 153 434 分 (¥1 534.34), 结转 0.8075 分.
    prev = Reading(
        at(2025, 7, 1),
        D("11120.00"),
        {1: D("1020.00"), 2: D("3100.00"), 3: D("5000.00"), 4: D("2000.00")},
    )
    curr = Reading(
        at(2025, 8, 1),
        D("13071.50"),
        {1: D("1200.50"), 2: D("3720.25"), 3: D("5910.00"), 4: D("2240.75")},
    )
    charge = bill_usage(prev, curr, tariff=SHOP_TOU)

    assert [(line.band, line.quantity, line.amount) for line in charge.lines] == [
        (Band.SHARP, D("180.50"), D("226.74410")),
        (Band.PEAK, D("620.25"), D("649.27770")),
        (Band.FLAT, D("910.00"), D("595.32200")),
        (Band.VALLEY, D("240.75"), D("63.004275")),
    ]
    assert charge.quantity == D("1951.50")
    assert charge.exact_yuan == D("1534.348075")
    assert charge.deduct_fen == 153434
    assert charge.carry_fen_decimal == D("0.8075")
    assert str(charge.lines[1]) == "峰时段电量 620.25 kWh × ¥1.0468 = ¥649.277700"

    # 9月1日的下一次读数只多了 1.00 kWh 谷电: 1 × ¥0.2617 = 26.17 分, 加结转 0.8075 分
    # = 26.9775 分 → 扣 26 分, 结转 0.9775 分. 两次共扣 153 460 分 = floor(153 460.9775).
    later = Reading(
        at(2025, 9, 1),
        D("13072.50"),
        {1: D("1200.50"), 2: D("3720.25"), 3: D("5910.00"), 4: D("2241.75")},
    )
    again = bill_usage(curr, later, tariff=SHOP_TOU, state=charge.state)
    assert again.deduct_fen == 26
    assert again.carry_fen_decimal == D("0.9775")


# Residential yearly tiers (居民阶梯): 0–2760 kWh ¥0.68, 2761–4800 ¥0.73, above 4800 ¥0.98.
APARTMENT_TIERS = TieredPlan(
    tiers=(Tier(D(2760), D("0.68")), Tier(D(4800), D("0.73")), Tier(None, D("0.98"))),
    period=TierPeriod.YEAR,
)


def test_apartment_crosses_into_the_second_tier_in_november() -> None:
    # 某公寓, 今年1–10月已用 2 650 kWh. 11月: 12 480.6 → 12 815.9 = 335.3 kWh.
    #   第一档剩余 2 760 − 2 650 = 110.0 kWh × ¥0.68 = ¥ 74.800
    #   第二档     335.3 − 110   = 225.3 kWh × ¥0.73 = ¥164.469
    #   合计 ¥239.269 = 23 926.9 分 → 扣 23 926 分, 结转 0.9 分; 年累计 2 985.3 kWh.
    state = BillingState(tier_period_start=at(2025, 1, 1), cumulative=D("2650"))
    oct_end = Reading(at(2025, 11, 1), D("12480.6"))
    nov_end = Reading(at(2025, 12, 1), D("12815.9"))
    nov = bill_usage(oct_end, nov_end, tariff=APARTMENT_TIERS, state=state)
    assert [(line.label, line.quantity, line.amount) for line in nov.lines] == [
        ("第一档", D("110.0"), D("74.800")),
        ("第二档", D("225.3"), D("164.469")),
    ]
    assert (nov.deduct_fen, nov.carry_fen_decimal) == (23926, D("0.9"))
    assert nov.state.cumulative == D("2985.3")

    # 12月: 12 815.9 → 13 050.0 = 234.1 kWh, 全在第二档: × ¥0.73 = ¥170.893
    #   = 17 089.3 分 + 结转 0.9 分 = 17 090.2 分 → 扣 17 090 分, 结转 0.2 分.
    dec_end = Reading(at(2025, 12, 31, 23, 59), D("13050.0"))
    dec = bill_usage(nov_end, dec_end, tariff=APARTMENT_TIERS, state=nov.state)
    assert dec.exact_yuan == D("170.893")
    assert (dec.deduct_fen, dec.carry_fen_decimal) == (17090, D("0.2"))

    # 两个月一次抄表: 569.4 kWh = 110 × 0.68 + 459.4 × 0.73 = 74.80 + 335.362 = ¥410.162
    # → 41 016 分 = 23 926 + 17 090, 分文不差.
    once = bill_usage(oct_end, dec_end, tariff=APARTMENT_TIERS, state=state)
    assert once.exact_yuan == nov.exact_yuan + dec.exact_yuan == D("410.162")
    assert once.deduct_fen == nov.deduct_fen + dec.deduct_fen == 41016


FACTORY_ENERGY = TouPlan(
    prices={Band.PEAK: D("1.0256"), Band.FLAT: D("0.6418"), Band.VALLEY: D("0.3021")},
    seasons=(
        Season(
            "全年",
            frozenset(range(1, 13)),
            DaySchedule(
                (
                    seg("00:00", "08:00", Band.VALLEY),
                    seg("08:00", "10:00", Band.FLAT),
                    seg("10:00", "12:00", Band.PEAK),
                    seg("12:00", "14:00", Band.FLAT),
                    seg("14:00", "19:00", Band.PEAK),
                    seg("19:00", "24:00", Band.FLAT),
                )
            ),
        ),
    ),
)


def test_factory_two_part_with_a_630_kva_transformer() -> None:
    # 某工厂, 两部制: 630 kVA 变压器, 基本电费按容量 ¥23.00/kVA·月; 电度电费按分时.
    # 10 kV 高压计量: CT 50/5 = 10, PT 10 000/100 = 100 → 倍率 1 000.
    # 3月寄存器差 × 1 000:
    #   峰 12.34 → 12 340 kWh × ¥1.0256 = ¥12 655.904
    #   平 18.50 → 18 500 kWh × ¥0.6418 = ¥11 873.300
    #   谷 25.06 → 25 060 kWh × ¥0.3021 = ¥ 7 570.626
    #   电度电费 ¥32 099.830
    # 基本电费 630 kVA × ¥23.00 = ¥14 490.00; 当月电费合计 ¥46 589.83.
    plan = TwoPartPlan(FACTORY_ENERGY, ChargeBasis.CAPACITY, D("23.00"))
    prev = Reading(at(2025, 3, 1), D("100.00"), {2: D("30.00"), 3: D("40.00"), 4: D("30.00")})
    curr = Reading(at(2025, 4, 1), D("155.90"), {2: D("42.34"), 3: D("58.50"), 4: D("55.06")})
    energy = bill_usage(prev, curr, tariff=plan, multiplier=D(1000))
    assert energy.meter_kwh_by_band == {
        Band.PEAK: D("12340.00"),
        Band.FLAT: D("18500.00"),
        Band.VALLEY: D("25060.00"),
    }
    assert [line.amount for line in energy.lines] == [
        D("12655.9040"),
        D("11873.3000"),
        D("7570.6260"),
    ]
    assert energy.exact_yuan == D("32099.83")
    assert energy.deduct_fen == 3209983

    capacity = basic_charge(plan, D(630))
    assert capacity.lines[0].kind is LineKind.CAPACITY
    assert capacity.total == D("14490.00")
    assert energy.exact_yuan + capacity.total == D("46589.83")

    # 若改按最大需量 ¥35.00/kW·月, 当月最大需量 480 kW: 480 × 35.00 = ¥16 800.00.
    by_demand = TwoPartPlan(FACTORY_ENERGY, ChargeBasis.DEMAND, D("35.00"))
    assert basic_charge(by_demand, D(480)).total == D("16800.00")


# Residential water, monthly tiers (居民用水阶梯, 按月): 0–22 m³ ¥3.45, 23–30 m³ ¥4.83,
# above 30 m³ ¥5.83.
WATER_TIERS = TieredPlan(
    tiers=(Tier(D(22), D("3.45")), Tier(D(30), D("4.83")), Tier(None, D("5.83"))),
    period=TierPeriod.MONTH,
    unit=Unit.M3,
)


def test_household_water_in_june_crosses_all_three_tiers() -> None:
    # 6月1日 1 203.4 → 6月16日 1 219.6 = 16.2 m³, 全在第一阶: 16.2 × ¥3.45 = ¥55.89
    #   → 扣 5 589 分, 结转 0.
    r0 = Reading(at(2025, 6, 1), D("1203.4"))
    r1 = Reading(at(2025, 6, 16), D("1219.6"))
    first = bill_usage(r0, r1, tariff=WATER_TIERS)
    assert (first.exact_yuan, first.deduct_fen) == (D("55.890"), 5589)
    assert first.meter_kwh_by_band == {}  # water has no TOU bands

    # 6月16日 1 219.6 → 7月1日 1 238.0 = 18.4 m³, 当月累计 16.2 → 34.6 m³:
    #   第一阶 22 − 16.2 = 5.8 m³ × ¥3.45 = ¥20.010
    #   第二阶 30 − 22   = 8.0 m³ × ¥4.83 = ¥38.640
    #   第三阶 34.6 − 30 = 4.6 m³ × ¥5.83 = ¥26.818
    #   合计 ¥85.468 → 扣 8 546 分, 结转 0.8 分. 6月共 ¥141.358 → 14 135 分 = 5 589 + 8 546.
    r2 = Reading(at(2025, 7, 1), D("1238.0"))
    second = bill_usage(r1, r2, tariff=WATER_TIERS, state=first.state)
    assert [(line.tier, line.quantity, line.amount) for line in second.lines] == [
        (1, D("5.8"), D("20.010")),
        (2, D("8.0"), D("38.640")),
        (3, D("4.6"), D("26.818")),
    ]
    assert (second.deduct_fen, second.carry_fen_decimal) == (8546, D("0.8"))

    # 7月是新的一个月, 累计归零: 1 238.0 → 1 250.5 = 12.5 m³ × ¥3.45 = ¥43.125
    #   = 4 312.5 分 + 结转 0.8 = 4 313.3 分 → 扣 4 313 分, 结转 0.3 分.
    r3 = Reading(at(2025, 7, 20), D("1250.5"))
    third = bill_usage(r2, r3, tariff=WATER_TIERS, state=second.state)
    assert [line.tier for line in third.lines] == [1]
    assert (third.deduct_fen, third.carry_fen_decimal) == (4313, D("0.3"))
    assert third.state.cumulative == D("12.5")


def test_flat_water_for_a_shop() -> None:
    # 商铺用水单一价 ¥4.20/m³: 3.27 m³ × 4.20 = ¥13.734 → 扣 1 373 分, 结转 0.4 分.
    plan = FlatPlan(D("4.20"), Unit.M3)
    charge = bill_usage(
        Reading(at(2025, 5, 1), D("88.00")),
        Reading(at(2025, 6, 1), D("91.27")),
        tariff=plan,
    )
    assert charge.lines[0].label == "用水量"
    assert (charge.exact_yuan, charge.deduct_fen, charge.carry_fen_decimal) == (
        D("13.7340"),
        1373,
        D("0.40"),
    )
