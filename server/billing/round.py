"""`bill_round`: usage billing for a collector's round, as lean `Bill`s. Pure.

A round is many (prev, curr) reading pairs, several accounts interleaved, each account's in
reading order. `bill_round` bills them one by one as `bill_usage` does (usage.py): the use by
`usage_between`, the price by `server.tariffs.pricing`, fen and carry by `settle`. It threads
each account's `BillingState` from one of its pairs to the next and answers each pair with a
`Bill` — the figures the billing service stores — or the error that refused it; a refused
pair leaves its account's state as it was and does not stop the round.

Most pairs of a round are the common case: the newest version of a flat or TOU tariff in
force since before the previous reading. The round looks that plan up once per tariff
(`untiered_energy`) and prices such a pair with `price_energy` — what `price_usage` does for
it — without the rest of `price_usage`; every other pair goes through `charge_usage`, as in
`bill_usage`. A property test (tests/billing/test_bill_round.py) holds the round to
`bill_usage`, pair by pair, to the digit.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from server.billing.usage import (
    BillingRequest,
    BillingState,
    charge_usage,
    settle,
    usage_between,
)
from server.core.errors import ShuidianError
from server.tariffs.calendar import HolidayRule
from server.tariffs.plans import FlatPlan, TouPlan
from server.tariffs.pricing import PriceLine, exact, price_energy, untiered_energy

_NEW_ACCOUNT = BillingState()


class Bill(NamedTuple):
    """A billed pair as the service stores it: the fen to deduct now, the quantity and exact
    yuan priced (as in `UsageCharge`), and the price's lines (the store reads their label,
    quantity, unit price and amount)."""

    deduct_fen: int
    quantity: Decimal
    exact_yuan: Decimal
    lines: tuple[PriceLine, ...]


def bill_round(
    requests: Sequence[BillingRequest],
    states: Mapping[Hashable, BillingState] | None = None,
    *,
    is_holiday: HolidayRule = None,
) -> tuple[list[Bill | ShuidianError], dict[Hashable, BillingState]]:
    """Bill a round's pairs in order: `results[i]` answers `requests[i]`; the states are every
    account's after its last billed pair (those given, updated)."""
    current: dict[Hashable, BillingState] = dict(states or {})
    results: list[Bill | ShuidianError] = []
    in_force: dict[int, tuple[datetime, FlatPlan | TouPlan] | None] = {}  # by id(tariff)
    with exact():  # once for the round, not once per function per reading
        for request in requests:
            state = current.get(request.account, _NEW_ACCOUNT)
            tariff = request.tariff
            plan = in_force.get(id(tariff), _UNSEEN)
            if plan is _UNSEEN:
                plan = in_force[id(tariff)] = untiered_energy(tariff)
            try:
                usage = usage_between(
                    request.prev, request.curr, request.multiplier, request.register_max
                )
                if plan is not None and plan[0] <= usage.start:
                    price = price_energy(plan[1], usage, is_holiday)
                    deduct, carry = settle(price.total, state.carry_fen)
                    after = BillingState(carry)
                else:
                    price, deduct, after = charge_usage(tariff, usage, state, is_holiday)
            except ShuidianError as error:
                results.append(error)
                continue
            current[request.account] = after
            results.append(Bill(deduct, price.quantity, price.total, price.lines))
    return results, current


_UNSEEN: object = object()
