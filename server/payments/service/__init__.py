"""Payment use cases. Import from here:

    create_recharge_order(payments, account_id, channel, amount_fen, *, actor, payer_openid="")
    receive_notification(payments, channel, headers, body) -> NotifyResult
    credit_order(channel, out_trade_no, *, amount_fen, transaction_id, paid_at, source)
    close_order(payments, out_trade_no, *, actor)
    request_refund / approve_refund / reject_refund / send_refund / apply_refund_result
    record_counter_payment / request_adjustment / approve_adjustment / reject_adjustment
    request_counter_refund / approve_counter_refund / reject_counter_refund   cash / bank
    run_followups / run_pending_followups
    reconcile_day / reconcile_yesterday
    quarantine / resolve_quarantine / list_quarantine (what the staff's list shows)

Money-moving calls that talk to a platform (refunds, order creation) must run outside the
caller's transaction: the platform may notify us before the caller would commit.
"""

from server.payments.service.counter import (
    approve_adjustment,
    counter_key,
    record_counter_payment,
    reject_adjustment,
    request_adjustment,
)
from server.payments.service.counter_refunds import (
    approve_counter_refund,
    reject_counter_refund,
    request_counter_refund,
)
from server.payments.service.followups import (
    metering_seam,
    run_followup,
    run_followups,
    run_pending_followups,
)
from server.payments.service.inbox import receive_notification
from server.payments.service.inbox_store import NotifyResult
from server.payments.service.orders import (
    CreditResult,
    close_order,
    create_recharge_order,
    credit_key,
    credit_order,
)
from server.payments.service.quarantine import (
    list_quarantine,
    quarantine,
    reason_text,
    resolve_quarantine,
)
from server.payments.service.reconciliation import reconcile_day, reconcile_yesterday
from server.payments.service.refunds import (
    apply_refund_result,
    approve_refund,
    hold_key,
    reject_refund,
    request_refund,
    send_refund,
)
from server.payments.service.runtime import Payments, build_payments

__all__ = [
    "CreditResult",
    "NotifyResult",
    "Payments",
    "apply_refund_result",
    "approve_adjustment",
    "approve_counter_refund",
    "approve_refund",
    "build_payments",
    "close_order",
    "counter_key",
    "create_recharge_order",
    "credit_key",
    "credit_order",
    "hold_key",
    "list_quarantine",
    "metering_seam",
    "quarantine",
    "reason_text",
    "receive_notification",
    "reconcile_day",
    "reconcile_yesterday",
    "record_counter_payment",
    "reject_adjustment",
    "reject_counter_refund",
    "reject_refund",
    "request_adjustment",
    "request_counter_refund",
    "request_refund",
    "resolve_quarantine",
    "run_followup",
    "run_followups",
    "run_pending_followups",
    "send_refund",
]
