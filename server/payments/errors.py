"""Typed payment errors with Chinese messages (rendered by the one error handler)."""

from __future__ import annotations

from server.core.errors import Conflict, Forbidden, NotFound, ShuidianError, ValidationFailed


class PaymentError(ShuidianError):
    """Base of the payment errors."""


class ChannelNotConfigured(PaymentError):
    """Fail closed: a channel without merchant keys takes no orders and believes nothing."""

    status_code = 503
    code = "channel_not_configured"


class AmountOutOfLimits(PaymentError, ValidationFailed):
    code = "amount_out_of_limits"


class OrderNotFound(PaymentError, NotFound):
    code = "order_not_found"


class RefundNotFound(PaymentError, NotFound):
    code = "refund_not_found"


class RefundExceedsPaid(PaymentError, Conflict):
    """Invariant 7: what is refunded on an order never exceeds what was paid for it."""

    code = "refund_exceeds_paid"


class WrongStatus(PaymentError, Conflict):
    code = "wrong_status"


class SamePersonApproval(PaymentError, Forbidden):
    """ASVS 2.3.5: large refunds and adjustments need a second person."""

    code = "same_person_approval"


class ReferenceReused(PaymentError, Conflict):
    """A receipt or transfer reference names one counter payment; reused with other data."""

    code = "reference_reused"


class PlatformUnavailable(PaymentError):
    status_code = 502
    code = "platform_unavailable"
