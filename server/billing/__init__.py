"""Billing: usage charges from meter readings (pure math in usage.py), fee items, sharing."""

from server.billing.usage import (
    BandRegistersMismatch,
    BillingError,
    BillingRequest,
    BillingState,
    NegativeDelta,
    ReadingsOutOfOrder,
    UsageCharge,
    bill_usage,
    charge_usage,
    register_delta,
    settle,
    usage_between,
)

__all__ = [
    "BandRegistersMismatch",
    "BillingError",
    "BillingRequest",
    "BillingState",
    "NegativeDelta",
    "ReadingsOutOfOrder",
    "UsageCharge",
    "bill_usage",
    "charge_usage",
    "register_delta",
    "settle",
    "usage_between",
]
