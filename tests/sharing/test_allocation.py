"""The splits of common-area and loss sharing, the energy balance and the compliance
statement (pure): worked examples a clerk can check by hand, and properties."""

from datetime import date
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.core.errors import ValidationFailed
from server.sharing.allocation import Member, Method, allocate
from server.sharing.compliance import Flag, TenantUse, statement
from server.sharing.losses import GridEntry, LossNotPositive, balance
from server.sharing.periods import period_of


def test_lifts_of_a_three_floor_building_shared_by_area() -> None:
    """The lifts used 1,234.5 kWh at ¥0.80: ¥987.60. Floors of 120, 200 and 180 m² (500 m²)
    bear 120/500, 200/500, 180/500 of it: 23,702.4 / 39,504 / 35,553.6 fen. Floors give
    98,759; the fen left goes to the largest remainder (0.6, the third floor)."""
    members = [
        Member(1, area_m2=D("120")),
        Member(2, area_m2=D("200")),
        Member(3, area_m2=D("180")),
    ]
    shares = allocate(Method.AREA, members, 98_760, D("1234.5"))
    assert [s.amount_fen for s in shares] == [23_702, 39_504, 35_554]
    assert [s.quantity for s in shares] == [D("296.2800"), D("493.8000"), D("444.4200")]


def test_ties_go_to_the_member_listed_first() -> None:
    """100 fen over three equal members: 33.33 each, one fen left, three equal remainders:
    the first listed (the lowest account id) gets it."""
    shares = allocate(Method.EQUAL, [Member(7), Member(8), Member(9)], 100, D("1"))
    assert [s.amount_fen for s in shares] == [34, 33, 33]


def test_ratio_and_usage_and_nobody_used_anything() -> None:
    by_ratio = allocate(Method.RATIO, [Member(1, ratio=D(3)), Member(2, ratio=D(1))], 1_000, D(0))
    assert [s.amount_fen for s in by_ratio] == [750, 250]
    none_used = allocate(Method.USAGE, [Member(1), Member(2)], 101, D("2"))
    assert [s.amount_fen for s in none_used] == [51, 50]  # all weights 0: equally


members_st = st.lists(
    st.builds(
        Member,
        st.integers(1, 10_000),
        st.decimals(0, 1_000, places=4),
        st.decimals(0, 10_000, places=2),
        st.decimals(0, 100_000, places=4),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(Method)),
    members_st,
    st.integers(0, 10**10),
    st.decimals(0, 10**7, places=4),
)
def test_shares_always_add_up_to_the_whole(
    method: Method, members: list[Member], amount_fen: int, quantity: D
) -> None:
    shares = allocate(method, members, amount_fen, quantity)
    assert sum(s.amount_fen for s in shares) == amount_fen
    assert sum(s.quantity for s in shares) == quantity
    assert all(s.amount_fen >= 0 for s in shares)
    weights = [s.weight for s in shares]
    if sum(weights):  # each within one fen of its exact share
        for s in shares:
            assert abs(s.amount_fen - D(amount_fen) * s.weight / sum(weights)) < 1


def _park_with_six_percent_loss() -> tuple[GridEntry, list[D]]:
    """100,000 kWh from the grid for ¥70,000.00 (¥0.70/kWh); 40 tenants used 1,275 + 50·i kWh
    (90,000 in all), the common area 3,000, the operator 1,000: 6,000 kWh lost (6 %)."""
    entry = GridEntry(D("12000"), D("112000"), 1, 7_000_000, D("1000"))
    return entry, [D(1_275 + 50 * i) for i in range(40)]


def test_six_percent_line_loss_across_forty_tenants() -> None:
    entry, usage = _park_with_six_percent_loss()
    b = balance(entry, sum(usage, D(0)), D("3000"))
    assert (b.grid_kwh, b.loss_kwh, b.loss_rate) == (D(100_000), D(6_000), D("0.0600"))
    assert b.grid_price == D("0.700000")
    # each kWh costs 70 fen: tenants 6,300,000, common 210,000, own 70,000, loss 420,000
    assert (b.tenant_fen, b.common_fen, b.own_use_fen, b.loss_fen) == (
        6_300_000, 210_000, 70_000, 420_000,
    )  # fmt: skip
    shares = allocate(Method.USAGE, [Member(i + 1, usage=u) for i, u in enumerate(usage)],
                      b.loss_fen, b.loss_kwh)  # fmt: skip
    assert sum(s.amount_fen for s in shares) == 420_000
    # 420,000 × 1,275 / 90,000 = 5,950 fen exactly; the last: 3,225 kWh → 15,050 fen
    assert shares[0].amount_fen == 5_950 and shares[-1].amount_fen == 15_050
    assert shares[0].quantity == D("85.0000")  # 6,000 × 1,275 / 90,000 kWh


def test_the_grid_below_the_meters_is_refused() -> None:
    with pytest.raises(LossNotPositive):
        balance(GridEntry(D(0), D(100), 1, 10_000, D(0)), D(90), D(20))
    with pytest.raises(ValidationFailed):
        balance(GridEntry(D(100), D(0), 1, 10_000, D(0)), D(0), D(0))


def test_the_statement_flags_a_markup_seeded_on_purpose() -> None:
    """The grid sells at ¥0.70. Tenant 1 pays ¥0.70 × 1,000 kWh; tenant 2 was put on ¥0.85:
    ¥850 for 1,000 kWh — a mark-up, flagged for it and for the site."""
    entry = GridEntry(D(0), D("2200"), 1, 154_000, D(0))
    b = balance(entry, D("2000"), D("100"))  # 100 kWh lost: 7,000 fen
    uses = [
        TenantUse(1, "H1", "守规矩", D("1000"), 70_000, 3_500, 3_500),
        TenantUse(2, "H2", "加价户", D("1000"), 85_000, 3_500, 3_500),
    ]
    s = statement(b, uses)
    assert [line.flags for line in s.lines] == [(), (Flag.MARKUP,)]
    assert s.lines[1].energy_price == D("0.850000")
    assert s.lines[0].effective_price == D("0.770000")
    assert Flag.MARKUP in s.flags and Flag.OVERCHARGED in s.flags
    assert (s.charged_fen, s.allowed_fen) == (169_000, 154_000)
    tight = statement(b, uses, cap=D("0.04"))  # 3,500 / 70,000 = 5 % of the energy > 4 %
    assert Flag.LOSS_OVER_CAP in tight.lines[0].flags and Flag.LOSS_OVER_CAP in tight.flags


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 10**6), st.integers(0, 10**9))
def test_a_tenant_at_the_grid_price_is_never_flagged(kwh: int, extra: int, bill: int) -> None:
    grid = D(kwh + extra)
    b = balance(GridEntry(D(0), grid, 1, bill, D(0)), D(kwh), D(0))
    s = statement(b, [TenantUse(1, "H1", "租户", D(kwh), b.tenant_fen, 0, 0)], cap=D(1))
    assert Flag.MARKUP not in s.lines[0].flags
    assert Flag.OVERCHARGED not in s.flags


def test_period_bounds_and_bad_codes() -> None:
    p = period_of("2026-11", ZoneInfo("Asia/Shanghai"))
    assert (p.first, p.last) == (date(2026, 11, 1), date(2026, 11, 30))
    assert p.start.isoformat() == "2026-11-01T00:00:00+08:00"
    assert period_of("2026-12", ZoneInfo("UTC")).end.isoformat() == "2027-01-01T00:00:00+00:00"
    for bad in ("2026-13", "26-11", "", "2026-1", "x"):
        with pytest.raises(ValidationFailed):
            period_of(bad, ZoneInfo("UTC"))
