"""`bill_round`: usage billing for a collector's round, as lean `Bill`s. Pure.

The same fen, lines, carries and states as `usage.bill_batch` to the digit (a property test,
tests/billing/test_bill_round.py, holds the two together) for a fraction of the CPU: the
common case is priced inline with each tariff's prices looked up once per batch, everything
else goes through `usage.bill_usage` itself. What the billing service uses.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from decimal import Context, Decimal, getcontext, localcontext
from functools import partial
from typing import NamedTuple

from server.billing.usage import (
    _BANDS,
    _EXACT,
    _FEN_PER_YUAN,
    ONE_FEN,
    ZERO,
    BillingRequest,
    BillingState,
    _times,
    bill_usage,
)
from server.core.errors import ShuidianError
from server.metering.reading import Reading
from server.tariffs.calendar import HolidayRule
from server.tariffs.pricing import RegisterPrices, register_prices

BillLine = tuple[str, Decimal, Decimal, Decimal]  # label, quantity, unit price, amount (yuan)


class Bill(NamedTuple):
    """A billed pair as the service stores it: the fen to deduct now, the quantity and exact
    yuan priced (as in `UsageCharge`), and the bill lines."""

    deduct_fen: int
    quantity: Decimal
    exact_yuan: Decimal
    lines: tuple[BillLine, ...]


def bill_round(
    requests: Sequence[BillingRequest | tuple],
    states: Mapping[Hashable, BillingState] | None = None,
    *,
    is_holiday: HolidayRule = None,
) -> tuple[list[Bill | ShuidianError], dict[Hashable, BillingState]]:
    """`bill_batch` for a collector's round, answering with `Bill`s: the same fen, lines,
    carries and states to the digit (a property test holds the two together), for a fraction
    of the CPU.

    Most pairs of a round are the common case: the tariff's newest version in force at the
    previous reading, no tiers, a flat price or TOU band registers, registers moving forward,
    no roll-over. Those are priced here with the tariff's prices looked up once per batch
    (`register_prices`) and the Decimal operations of `bill_usage` in the same order and
    the same exact context, without its intermediate objects. Every other pair, including
    each one `bill_usage` would refuse, goes through `bill_usage` itself.

    A request may be a plain tuple of `BillingRequest`'s six fields, in order."""
    current: dict[Hashable, BillingState] = dict(states or {})
    results: list[Bill | ShuidianError] = []
    outer = getcontext()  # the context `bill_usage` runs in (its ZERO + quantity uses it)
    prices: dict[int, RegisterPrices | None] = {}  # by id() of the batch's few tariffs
    multiplier_seen, times = None, None  # a round's meters share a few multiplier objects
    with localcontext(_EXACT):  # the common case's operators compute as _EXACT's methods do
        for request in requests:
            account, prev, curr, tariff, multiplier, register_max = request
            state = current.get(account)
            common = prices.get(id(tariff), _UNSEEN)
            if common is _UNSEEN:
                common = prices[id(tariff)] = register_prices(tariff)
            if multiplier is not multiplier_seen:
                multiplier_seen, times = multiplier, _times(multiplier)
            billed = None
            if common is not None:
                carry = state.carry_fen if state is not None else ZERO
                billed = _bill_common(prev, curr, common, times, carry, outer)
            if billed is not None:
                bill, carry = billed
                current[account] = _new_state((carry, None, ZERO))
                results.append(bill)
                continue
            try:
                with localcontext(outer):
                    charge = bill_usage(
                        prev, curr, tariff=tariff, state=state, multiplier=multiplier,
                        register_max=register_max, is_holiday=is_holiday,
                    )  # fmt: skip
            except ShuidianError as error:
                results.append(error)
                continue
            current[account] = charge.state
            lines = tuple((ln.label, ln.quantity, ln.unit_price, ln.amount) for ln in charge.lines)
            results.append(Bill(charge.deduct_fen, charge.quantity, charge.exact_yuan, lines))
    return results, current


_UNSEEN: object = object()
# A named tuple made from a ready tuple by tuple.__new__ costs half a call of its class;
# a round makes one of each per reading.
_new_bill = partial(tuple.__new__, Bill)
_new_state = partial(tuple.__new__, BillingState)
_REGISTER_NUMBERS = tuple(_BANDS)  # 1 … 5: band registers in the order pricing sorts them


def _bill_common(
    prev: Reading,
    curr: Reading,
    prices: RegisterPrices,
    times: Decimal | None,
    carry: Decimal,
    outer: Context,
) -> tuple[Bill, Decimal] | None:
    """`bill_usage` of one common-case pair (see `bill_round`), under the exact context;
    None when the pair is not the common case. Each step names the general one it mirrors."""
    start, end = prev.taken_at, curr.taken_at
    if end <= start or start.utcoffset() is None or end.utcoffset() is None:
        return None  # usage_between / UsageSlice refuse it
    if start < prices.since:
        return None  # an older version in force at the start: _price_common steps aside
    if times is not None and times <= ZERO:
        return None  # usage_between raises
    if curr.total < prev.total:
        return None  # register_delta: backwards or rolled over
    before, after = prev.bands, curr.bands
    if prices.flat is None and not (before and after):
        return None  # TOU without registers: split by time on the general path
    lines: list[BillLine] = []
    quantity = exact = ZERO  # _price_common's sums (band order, as usage_between sorts)
    if before and after:
        if len(before) != len(after):
            return None  # BandRegistersMismatch
        found = 0
        for number in _REGISTER_NUMBERS:
            value = after.get(number)
            if value is None:
                continue
            start_value = before.get(number)
            if start_value is None or value < start_value:
                return None  # BandRegistersMismatch, or register_delta's refusal
            found += 1
            if prices.flat is not None:
                continue  # a flat plan prices the total; the bands were only checked
            q = value - start_value if times is None else (value - start_value) * times
            quantity = quantity + q
            if q == 0:
                continue
            label_price = prices.bands.get(number)
            if label_price is None:
                return None  # use in a band the plan has no price for: InvalidUsage
            label, price = label_price
            amount = q * price
            lines.append((label, q, price, amount))
            exact = exact + amount
        if found != len(after):
            return None  # a register numbered outside 1–5
    if prices.flat is not None:
        label, price = prices.flat
        quantity = curr.total - prev.total
        if times is not None:
            quantity = quantity * times
        amount = quantity * price
        lines.append((label, quantity, price, amount))
        exact = exact + amount
    # settle(): floor of exact fen (never negative here, so int() is the floor) and the carry
    if not ZERO <= carry < ONE_FEN:
        raise ValueError(f"carry must be in [0, 1) fen, got {carry}")
    exact_fen = exact * _FEN_PER_YUAN + carry
    deduct = int(exact_fen)
    bill = _new_bill((deduct, outer.add(ZERO, quantity), exact, tuple(lines)))
    return bill, exact_fen - deduct
