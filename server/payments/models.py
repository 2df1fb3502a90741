"""Payment tables: recharge orders, the notification inbox, quarantine, refunds, counter
payments, balance adjustments, credit follow-ups and reconciliation reports.

Exactly-once rests on unique constraints, not on locks or caches:
- `RechargeOrder.out_trade_no` and the ledger key `pay:{channel}:{out_trade_no}`;
- `PaymentEvent (channel, external_id)`: the inbox stores one raw event per order / refund;
- `Refund.out_refund_no`, `CounterPayment (channel, reference)`, `Quarantine.dedupe_key`;
- `CounterRefund.request_key` (and `number`): a counter refund is requested once per key;
- `CreditFollowUp.credit_key`: the follow-up of a credit commits with the credit itself.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from server.payments.providers.base import Channel


class OrderStatus(StrEnum):
    CREATED = "created"  # waiting for the payer
    PAID = "paid"  # credited to the wallet (once)
    CLOSED = "closed"  # closed before payment (by us or the platform)
    EXPIRED = "expired"  # not paid in time, closed at the platform
    HELD = "held"  # a verified notification disagreed with the order: a person decides


class EventOutcome(StrEnum):
    CREDITED = "credited"
    ALREADY_DONE = "already_done"  # the order was credited earlier (poller, other copy)
    QUARANTINED = "quarantined"
    REFUND_SETTLED = "refund_settled"
    REFUND_VOIDED = "refund_voided"
    IGNORED = "ignored"  # a status that asks for nothing (e.g. NOTPAY)


class QuarantineReason(StrEnum):
    AMOUNT_MISMATCH = "amount_mismatch"
    UNKNOWN_ORDER = "unknown_order"
    UNKNOWN_REFUND = "unknown_refund"
    WRONG_MERCHANT = "wrong_merchant"
    ORDER_NOT_PAYABLE = "order_not_payable"  # paid at the platform after we closed it
    ACCOUNT_CLOSED = "account_closed"  # paid for an account closed since: refund by hand
    REFUND_ABNORMAL = "refund_abnormal"
    OUT_OF_RANGE = "out_of_range"  # signed, but an amount / number no platform sends


class RefundStatus(StrEnum):
    PENDING = "pending"  # waiting for a second person's approval
    APPROVED = "approved"  # may be sent
    PROCESSING = "processing"  # held in the ledger, sent (or being sent) to the platform
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"  # the approver said no


class CounterChannel(StrEnum):
    CASH = "cash"
    BANK = "bank"  # 公对公 transfer


class CounterRefundStatus(StrEnum):
    PENDING = "pending"  # held in the ledger, waiting for a second person's approval
    PAID = "paid"  # paid out in cash or by bank transfer (settled in the ledger)
    REJECTED = "rejected"  # the approver said no: the money went back to the wallet


class AdjustmentStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class RechargeOrder(Model):
    id = fields.BigIntField(primary_key=True)
    out_trade_no = fields.CharField(max_length=32, unique=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="recharge_orders", on_delete=fields.RESTRICT
    )
    channel = fields.CharEnumField(Channel, max_length=8)
    amount_fen = fields.BigIntField()
    status = fields.CharEnumField(OrderStatus, max_length=8, default=OrderStatus.CREATED)
    expires_at = fields.DatetimeField()
    payer_openid = fields.CharField(max_length=64, default="")
    created_by = fields.CharField(max_length=100)  # "tenant:<openid>", "staff:12"
    transaction_id = fields.CharField(max_length=64, default="")  # the platform's number
    paid_at = fields.DatetimeField(null=True)  # the platform's success time
    credited_by = fields.CharField(max_length=16, default="")  # "notify" or "poller"
    refunded_fen = fields.BigIntField(default=0)  # succeeded + in-flight refunds
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "recharge_order"
        indexes = (("status", "created_at"),)


class PaymentEvent(Model):
    """The inbox: one verified raw notification per (channel, order or refund number).

    A payment notification whose status asks nothing of us (closed, not paid) is stored
    under `<STATUS>:<order number>` instead (see `inbox.inbox_key`), so it never takes the
    order's own slot, which belongs to the notification that credits it."""

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=8)
    external_id = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=8)  # payment / refund
    notification_id = fields.CharField(max_length=64, default="")
    headers = fields.JSONField(default=dict)
    body = fields.TextField()
    verified = fields.BooleanField(default=True)
    received_at = fields.DatetimeField(auto_now_add=True)
    handled_at = fields.DatetimeField(null=True)
    outcome = fields.CharField(max_length=16, default="")

    class Meta:
        table = "payment_event"
        unique_together = (("channel", "external_id"),)


class Quarantine(Model):
    """Something from a platform we will not act on by ourselves: a person decides."""

    id = fields.BigIntField(primary_key=True)
    dedupe_key = fields.CharField(max_length=120, unique=True)
    channel = fields.CharEnumField(Channel, max_length=8)
    reason = fields.CharEnumField(QuarantineReason, max_length=20)
    out_trade_no = fields.CharField(max_length=64, default="")
    out_refund_no = fields.CharField(max_length=64, default="")
    expected_fen = fields.BigIntField(null=True)
    notified_fen = fields.BigIntField(null=True)
    detail = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    resolved_at = fields.DatetimeField(null=True)
    resolved_by = fields.CharField(max_length=100, default="")
    resolution = fields.CharField(max_length=500, default="")

    class Meta:
        table = "payment_quarantine"


class Refund(Model):
    id = fields.BigIntField(primary_key=True)
    out_refund_no = fields.CharField(max_length=32, unique=True)
    order: fields.ForeignKeyRelation[RechargeOrder] = fields.ForeignKeyField(
        "models.RechargeOrder", related_name="refunds", on_delete=fields.RESTRICT
    )
    amount_fen = fields.BigIntField()
    status = fields.CharEnumField(RefundStatus, max_length=10)
    reason = fields.CharField(max_length=200)
    requested_by = fields.CharField(max_length=100)
    approved_by = fields.CharField(max_length=100, default="")
    platform_refund_id = fields.CharField(max_length=64, default="")
    last_error = fields.CharField(max_length=300, default="")
    attempts = fields.IntField(default=0)
    settled_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "payment_refund"


class CounterPayment(Model):
    """Cash at the counter or a bank transfer, credited once per receipt / transfer number."""

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharEnumField(CounterChannel, max_length=8)
    reference = fields.CharField(max_length=64)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="counter_payments", on_delete=fields.RESTRICT
    )
    amount_fen = fields.BigIntField()
    payer_name = fields.CharField(max_length=100, default="")
    memo = fields.CharField(max_length=200, default="")
    recorded_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payment_counter"
        unique_together = (("channel", "reference"),)


class CounterRefund(Model):
    """Money paid back out of a wallet at the counter (cash) or by bank transfer: held in the
    ledger at the request, settled when paid out, voided when rejected (see
    `server.payments.service.counter_refunds`)."""

    id = fields.BigIntField(primary_key=True)
    number = fields.CharField(max_length=32, unique=True)  # "R…", on the receipt
    request_key = fields.CharField(max_length=120, unique=True)  # the caller's idempotency key
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="counter_refunds", on_delete=fields.RESTRICT
    )
    channel = fields.CharEnumField(CounterChannel, max_length=8)
    amount_fen = fields.BigIntField()
    status = fields.CharEnumField(CounterRefundStatus, max_length=8)
    reason = fields.CharField(max_length=200)
    payee_name = fields.CharField(max_length=100, default="")
    payee_account = fields.CharField(max_length=64, default="")  # bank account (transfers)
    requested_by = fields.CharField(max_length=100)
    approved_by = fields.CharField(max_length=100, default="")
    paid_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "payment_counter_refund"
        indexes = (("status", "created_at"),)


class BalanceAdjustment(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="balance_adjustments", on_delete=fields.RESTRICT
    )
    amount_fen = fields.BigIntField()  # signed
    reason = fields.CharField(max_length=200)
    status = fields.CharEnumField(AdjustmentStatus, max_length=8)
    requested_by = fields.CharField(max_length=100)
    approved_by = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "payment_adjustment"


class CreditFollowUp(Model):
    """Work owed after a credit (alarms, relay, meter-side recharge), committed with it."""

    id = fields.BigIntField(primary_key=True)
    credit_key = fields.CharField(max_length=160, unique=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="credit_followups", on_delete=fields.RESTRICT
    )
    reason = fields.CharField(max_length=32)  # "recharge", "counter", "adjustment"
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=300, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    done_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "payment_followup"


class ReconciliationReport(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=8)
    bill_date = fields.DateField()
    matched = fields.IntField()
    missing = fields.IntField()
    extra = fields.IntField()
    amount_mismatches = fields.IntField()
    duplicates = fields.IntField()
    ignored_rows = fields.IntField()
    clean = fields.BooleanField()
    created_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "payment_reconciliation"
        unique_together = (("channel", "bill_date"),)


class ReconciliationDifference(Model):
    """One line for finance: missing (bill only), extra (ours only), amount, duplicate."""

    id = fields.BigIntField(primary_key=True)
    report: fields.ForeignKeyRelation[ReconciliationReport] = fields.ForeignKeyField(
        "models.ReconciliationReport", related_name="differences", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)
    row_type = fields.CharField(max_length=8)  # payment / refund
    number = fields.CharField(max_length=64)
    bill_fen = fields.BigIntField(null=True)
    ours_fen = fields.BigIntField(null=True)
    detail = fields.JSONField(default=dict)

    class Meta:
        table = "payment_reconciliation_difference"
