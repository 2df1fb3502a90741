"""The tenant API tests use the payment sandbox (the recharge ends with a signed
notification posted to our endpoint): its fixtures, shared with tests/payments."""

from tests.payments.conftest import (  # noqa: F401  (fixtures)
    alipay,
    recording_sleep,
    sandbox,
    sandbox_keys,
    wechat,
)
