"""The payment sandbox fixtures (fake WeChat Pay / Alipay), for closings that refund online."""

from tests.payments.conftest import (  # noqa: F401  (fixtures)
    alipay,
    recording_sleep,
    sandbox,
    sandbox_keys,
    wechat,
)
