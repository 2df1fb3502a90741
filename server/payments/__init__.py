"""Payments: WeChat Pay v3 and Alipay recharges, refunds, notifications, reconciliation.

`providers/` talks to the platforms (one `PaymentProvider` per channel), `reconcile.py`
matches daily bills to our credits (pure), `sandbox/` fakes both platforms for tests and the
demo. The order/inbox/refund service builds on these.
"""
