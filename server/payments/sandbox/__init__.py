"""Local payment sandbox: fake WeChat Pay v3 and Alipay servers for tests and the demo.

    keys = SandboxKeys.generate()
    async with PaymentSandbox(keys, time_scale=600) as sandbox:
        wechat = WechatPayProvider(sandbox.wechat_config())
        alipay = AlipayProvider(sandbox.alipay_config())
        ...
        sandbox.wechat.pay(out_trade_no)        # the payer pays; the notification goes out

Both fakes run in-process on 127.0.0.1 (random ports), sign with locally generated keys
exactly as the platforms do, and resend notifications on the published schedules, compressed
by `time_scale`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from server.payments.providers.alipay import AlipayConfig
from server.payments.providers.wechat import WechatPayConfig
from server.payments.sandbox.alipay import AlipayFault, FakeAlipay
from server.payments.sandbox.http import ALIPAY_RESEND_S, WECHAT_RESEND_S, Attempt, Notifier
from server.payments.sandbox.keys import SandboxKeys
from server.payments.sandbox.wechat import FakeWechatPay
from server.payments.sandbox.wechat_signing import WechatFault


class PaymentSandbox:
    """Both fake platforms, started and stopped together."""

    def __init__(
        self,
        keys: SandboxKeys | None = None,
        *,
        time_scale: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.keys = keys or SandboxKeys.generate()
        self.wechat = FakeWechatPay(
            self.keys, notifier=Notifier(time_scale=time_scale, sleep=sleep)
        )
        self.alipay = FakeAlipay(self.keys, notifier=Notifier(time_scale=time_scale, sleep=sleep))

    async def start(self) -> PaymentSandbox:
        await self.wechat.start()
        await self.alipay.start()
        return self

    async def close(self) -> None:
        await self.wechat.close()
        await self.alipay.close()

    async def __aenter__(self) -> PaymentSandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def wechat_config(self, refund_notify_url: str = "") -> WechatPayConfig:
        return self.keys.wechat_config(self.wechat.base_url, refund_notify_url)

    def alipay_config(self) -> AlipayConfig:
        return self.keys.alipay_config(self.alipay.gateway_url)


__all__ = [
    "ALIPAY_RESEND_S",
    "WECHAT_RESEND_S",
    "AlipayFault",
    "Attempt",
    "FakeAlipay",
    "FakeWechatPay",
    "Notifier",
    "PaymentSandbox",
    "SandboxKeys",
    "WechatFault",
]
