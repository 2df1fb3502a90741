"""Typed errors of the tariff context; messages are Simplified Chinese for staff."""

from __future__ import annotations

from server.core.errors import NotFound, ValidationFailed


class InvalidTariff(ValidationFailed):
    """A plan breaks one of its invariants (24 h covered once, thresholds increasing, prices
    ≥ 0 with ≤ 5 decimals…). An invalid plan cannot be constructed, so none is ever priced."""

    code = "invalid_tariff"


class NoPlanInForce(NotFound):
    """Usage lies before the first version of a tariff: there is no price to apply."""

    code = "no_plan_in_force"


class InvalidUsage(ValidationFailed):
    """A usage slice that cannot be priced (negative quantity, end before start, naive time)."""

    code = "invalid_usage"
