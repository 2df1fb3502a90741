"""Demo mode: a tenant's "pay" completes through the local sandbox.

    demo = await start_sandbox_for_demo("http://127.0.0.1:8000")
    app.ctx.payments = demo.payments          # before the server starts
    order, created = await create_recharge_order(demo.payments, account_id, "wechat", 5000,
                                                 actor="tenant:o-demo", payer_openid="o-demo")
    demo.pay(order.channel, order.out_trade_no)   # the tenant confirms the payment
    ...
    await demo.aclose()

The sandbox signs its notifications with locally generated keys exactly as the platforms
do and posts them to our notify routes, so the demo exercises the real verification, inbox
and ledger path. Run `poll_once(demo.payments)` periodically as in production.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.payments.config import PaymentSettings
from server.payments.providers.alipay import AlipayProvider
from server.payments.providers.base import Channel
from server.payments.providers.wechat import WechatPayProvider
from server.payments.sandbox import PaymentSandbox
from server.payments.service.runtime import Payments


@dataclass
class DemoPayments:
    sandbox: PaymentSandbox
    payments: Payments

    def pay(self, channel: Channel | str, out_trade_no: str) -> None:
        """The tenant confirms the payment; the signed notification goes out at once."""
        if Channel(channel) is Channel.WECHAT:
            self.sandbox.wechat.pay(out_trade_no)
        else:
            self.sandbox.alipay.pay(out_trade_no)

    async def aclose(self) -> None:
        await self.payments.aclose()
        await self.sandbox.close()


async def start_sandbox_for_demo(
    public_url: str, *, time_scale: float = 60.0, poll_after_s: int = 10
) -> DemoPayments:
    """Start both fake platforms and providers wired to them; notifications go to
    `public_url` + /api/v1/pay/notify/{wechat,alipay}."""
    sandbox = await PaymentSandbox(time_scale=time_scale).start()
    settings = PaymentSettings(notify_base_url=public_url, poll_after_s=poll_after_s)
    providers = {
        Channel.WECHAT: WechatPayProvider(
            sandbox.wechat_config(refund_notify_url=settings.notify_url("wechat"))
        ),
        Channel.ALIPAY: AlipayProvider(sandbox.alipay_config()),
    }
    return DemoPayments(sandbox, Payments(settings, providers))  # type: ignore[arg-type]
