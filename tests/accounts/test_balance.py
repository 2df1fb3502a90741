"""Available balance: worked examples a clerk can check by hand, then properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.accounts.balance import Available, MeterMoney, available, top_up_fen

E, W = "electricity", "water"


def platform(meter_id: int, utility: str = E) -> MeterMoney:
    return MeterMoney(meter_id, utility, meter_billed=False)


def on_meter(meter_id: int, register: int | None, pending: int = 0, utility: str = E) -> MeterMoney:
    return MeterMoney(meter_id, utility, True, register, pending)


# -- worked examples ----------------------------------------------------------------------
def test_platform_billed_account_is_its_wallet() -> None:
    """¥86.50 in the wallet, one electricity and one water meter billed by the platform."""
    b = available(8650, [platform(1), platform(2, W)])
    assert (b.total_fen, b.alarm_fen, b.free_wallet_fen, b.lowest_fen) == (8650, 8650, 8650, 8650)
    assert [(u.utility, u.available_fen, u.draws_on_wallet) for u in b.utilities] == [
        (E, 8650, True),
        (W, 8650, True),
    ]


def test_meter_billed_account_with_an_empty_wallet_has_its_meter_money() -> None:
    """The demo's A202: its ¥300 went into the meter, which now holds ¥570; the wallet is 0."""
    b = available(0, [on_meter(7, 57000)])
    assert (b.total_fen, b.alarm_fen, b.lowest_fen, b.on_meters_fen) == (57000, 57000, 57000, 57000)
    assert b.of(E) is not None and b.of(E).meter_billed
    assert top_up_fen(b, on_meter(7, 57000)) == 0


def test_money_on_its_way_to_the_meter_is_counted_once() -> None:
    """¥100 paid, a ¥100 recharge command queued (the wallet is debited only when the meter
    confirms): the meter holds ¥20, the tenant has ¥120, nothing more to send."""
    meter = on_meter(7, 2000, pending=10000)
    b = available(10000, [meter])
    assert (b.total_fen, b.free_wallet_fen, b.on_meters_fen) == (12000, 0, 2000)
    assert b.of(E) is not None and b.of(E).on_meters_fen == 12000
    assert top_up_fen(b, meter) == 0


def test_meter_only_account_sends_all_its_free_wallet_money() -> None:
    meter = on_meter(7, 2000, pending=3000)
    b = available(10000, [meter])
    assert top_up_fen(b, meter) == 7000


def test_mixed_account_shows_each_utility_and_alarms_on_the_wallet() -> None:
    """Electricity meter-billed with ¥480 in the meter, water billed by the platform from a
    ¥20 wallet: ¥500 in all, but water is about to trip, so alarms speak of ¥20."""
    b = available(2000, [on_meter(7, 48000), platform(8, W)])
    assert (b.total_fen, b.alarm_fen, b.lowest_fen) == (50000, 2000, 2000)
    elec, water = b.of(E), b.of(W)
    assert elec is not None and (elec.available_fen, elec.draws_on_wallet) == (48000, False)
    assert water is not None and (water.available_fen, water.draws_on_wallet) == (2000, True)


def test_mixed_account_credit_tops_up_the_lower_side_first() -> None:
    """Meter ¥20, wallet ¥0, ¥100 paid: ¥40 goes to the meter, ¥60 stays for water; a
    repeat of the same follow-up finds nothing more to send."""
    water = platform(8, W)
    b = available(10000, [on_meter(7, 2000), water])
    assert top_up_fen(b, on_meter(7, 2000)) == 4000
    again = available(10000, [on_meter(7, 2000, pending=4000), water])
    assert top_up_fen(again, on_meter(7, 2000, pending=4000)) == 0
    assert again.free_wallet_fen == 6000 and again.lowest_fen == 6000


def test_mixed_account_with_a_full_meter_keeps_the_credit_in_the_wallet() -> None:
    b = available(10000, [on_meter(7, 50000), platform(8, W)])
    assert top_up_fen(b, on_meter(7, 50000)) == 0


def test_wallet_in_arrears_and_an_unconfirmed_register() -> None:
    """A postpaid-style negative wallet is money owed; a register never read counts 0 and is
    named, so a screen can say "unknown"."""
    b = available(-1500, [on_meter(7, None), platform(8)])
    assert (b.total_fen, b.alarm_fen, b.unconfirmed) == (-1500, -1500, (7,))
    assert top_up_fen(b, on_meter(7, None)) == 0


def test_account_without_meters_is_its_wallet() -> None:
    b = available(300, [])
    assert (b.total_fen, b.alarm_fen, b.lowest_fen, b.utilities) == (300, 300, 300, ())
    assert top_up_fen(b, platform(1)) == 0


# -- properties ---------------------------------------------------------------------------
fen = st.integers(-(10**9), 10**9)
meters = st.lists(
    st.builds(
        MeterMoney,
        meter_id=st.integers(1, 10**6),
        utility=st.sampled_from([E, W]),
        meter_billed=st.booleans(),
        register_fen=st.none() | fen,
        pending_fen=st.integers(0, 10**8),
    ),
    max_size=6,
)


def _registers(ms: list[MeterMoney]) -> int:
    return sum(m.register_fen or 0 for m in ms if m.meter_billed)


@given(fen, meters)
def test_total_is_the_wallet_plus_the_confirmed_registers(
    wallet: int, ms: list[MeterMoney]
) -> None:
    b = available(wallet, ms)
    assert b.total_fen == wallet + _registers(ms)
    # Open recharges move money from "free wallet" to "on its way", never create it.
    on_way = sum(u.on_meters_fen for u in b.utilities)
    assert b.free_wallet_fen + on_way == b.total_fen


@given(fen, meters)
def test_alarms_follow_the_wallet_exactly_when_a_meter_is_platform_billed(
    wallet: int, ms: list[MeterMoney]
) -> None:
    b = available(wallet, ms)
    if any(not m.meter_billed for m in ms):
        assert b.alarm_fen == b.free_wallet_fen and b.platform_billed
    else:
        assert b.alarm_fen == b.total_fen and not b.platform_billed


@given(fen, meters)
def test_every_utility_is_shown_once_and_the_lowest_is_one_of_them(
    wallet: int, ms: list[MeterMoney]
) -> None:
    b = available(wallet, ms)
    assert [u.utility for u in b.utilities] == sorted({m.utility for m in ms})
    if b.utilities:
        assert b.lowest_fen in {u.available_fen for u in b.utilities}
    for u in b.utilities:
        assert u.available_fen == u.on_meters_fen + (b.free_wallet_fen if u.draws_on_wallet else 0)
        # Platform-billed use is paid from the wallet, so such a utility always draws on it.
        assert u.draws_on_wallet or u.meter_billed


@given(fen, meters)
def test_platform_only_accounts_are_their_wallet(wallet: int, ms: list[MeterMoney]) -> None:
    ms = [MeterMoney(m.meter_id, m.utility, False) for m in ms]
    b = available(wallet, ms)
    assert b.total_fen == b.alarm_fen == b.free_wallet_fen == b.lowest_fen == wallet


@given(
    st.integers(-(10**6), 10**8), st.integers(-(10**6), 10**8), st.integers(0, 10**6), st.booleans()
)
def test_a_top_up_never_sends_more_than_is_free_and_levels_a_mixed_account(
    wallet: int, register: int, pending: int, mixed: bool
) -> None:
    meter = on_meter(1, register, pending)
    ms = [meter, platform(2, W)] if mixed else [meter]
    b = available(wallet, ms)
    x = top_up_fen(b, meter)
    assert 0 <= x <= max(b.free_wallet_fen, 0)
    if not mixed:
        assert x == max(b.free_wallet_fen, 0)
    elif x > 0:  # after it the meter has the wallet's free money or one fen more, unless
        diff = (register + pending + x) - (b.free_wallet_fen - x)  # all went and was short
        assert diff <= 1 and (diff >= 0 or x == b.free_wallet_fen)
    # A second follow-up, with the first one's command open, sends nothing more (mixed:
    # at most what levelling still asks for when the meter was above the wallet).
    after = on_meter(1, register, pending + x)
    again = available(wallet, [after, platform(2, W)] if mixed else [after])
    assert top_up_fen(again, after) == 0


def test_results_are_frozen() -> None:
    b = available(1, [])
    assert isinstance(b, Available)
    try:
        b.total_fen = 2  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("Available must be frozen")
