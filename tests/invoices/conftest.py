"""The invoice tests' tenant API runs on the payment sandbox's app: its fixtures, shared with
tests/payments and tests/accounts."""

from tests.payments.conftest import (  # noqa: F401  (fixtures)
    alipay,
    recording_sleep,
    sandbox,
    sandbox_keys,
    wechat,
)
