"""Billing: usage charges from meter readings (pure math in usage.py), fee items, sharing."""

from server.billing.usage import (
    BandRegistersMismatch,
    BatchResult,
    BillingError,
    BillingRequest,
    BillingState,
    NegativeDelta,
    ReadingsOutOfOrder,
    UsageCharge,
    bill_batch,
    bill_usage,
    register_delta,
    settle,
    usage_between,
)

__all__ = [
    "BandRegistersMismatch",
    "BatchResult",
    "BillingError",
    "BillingRequest",
    "BillingState",
    "NegativeDelta",
    "ReadingsOutOfOrder",
    "UsageCharge",
    "bill_batch",
    "bill_usage",
    "register_delta",
    "settle",
    "usage_between",
]
