"""`bill_round`: usage billing for a collector's round, as lean `Bill`s. Pure.

A round is many (prev, curr) reading pairs, several accounts interleaved, each account's in
reading order. `bill_round` bills them one by one with the steps `bill_usage` takes
(usage.py: `usage_between`, then `charge_usage`, which prices through
`server.tariffs.pricing.price_usage` and settles to fen), threading each account's
`BillingState` from one of its pairs to the next, and answers each pair with a `Bill` — the
figures the billing service stores — or the error that refused it. A refused pair leaves its
account's state as it was and does not stop the round. What the billing service uses.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple

from server.billing.usage import BillingRequest, BillingState, charge_usage, usage_between
from server.core.errors import ShuidianError
from server.tariffs.calendar import HolidayRule
from server.tariffs.pricing import exact

BillLine = tuple[str, Decimal, Decimal, Decimal]  # label, quantity, unit price, amount (yuan)
_NEW_ACCOUNT = BillingState()


class Bill(NamedTuple):
    """A billed pair as the service stores it: the fen to deduct now, the quantity and exact
    yuan priced (as in `UsageCharge`), and the bill lines."""

    deduct_fen: int
    quantity: Decimal
    exact_yuan: Decimal
    lines: tuple[BillLine, ...]


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
    with exact():  # once for the round, not once per function per reading
        for request in requests:
            try:
                usage = usage_between(
                    request.prev, request.curr, request.multiplier, request.register_max
                )
                state = current.get(request.account, _NEW_ACCOUNT)
                price, deduct, after = charge_usage(request.tariff, usage, state, is_holiday)
            except ShuidianError as error:
                results.append(error)
                continue
            current[request.account] = after
            lines = tuple([(ln.label, ln.quantity, ln.unit_price, ln.amount) for ln in price.lines])
            results.append(Bill(deduct, price.quantity, price.total, lines))
    return results, current
