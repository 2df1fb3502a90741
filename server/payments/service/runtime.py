"""The payment runtime: settings plus one provider per channel, shared by routes and jobs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from server.payments.config import PaymentSettings
from server.payments.errors import ChannelNotConfigured
from server.payments.providers.alipay import AlipayProvider
from server.payments.providers.base import Channel, PaymentProvider
from server.payments.providers.wechat import WechatPayProvider


@dataclass
class Payments:
    settings: PaymentSettings
    providers: dict[Channel, PaymentProvider] = field(default_factory=dict)

    def provider(self, channel: Channel | str) -> PaymentProvider:
        found = self.providers.get(Channel(channel))
        if found is None:
            raise ChannelNotConfigured("该支付渠道未配置", channel=str(channel))
        return found

    def configured_channels(self) -> list[Channel]:
        """The channels whose keys are set (the others refuse every call)."""
        return [ch for ch, provider in self.providers.items() if provider.configured]

    def notify_url(self, channel: Channel | str) -> str:
        return self.settings.notify_url(Channel(channel).value)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.aclose()


def build_payments(settings: PaymentSettings | None = None) -> Payments:
    """Providers for both channels from the settings. An unconfigured channel still gets a
    provider: its `verify_notification` refuses everything (NOT_CONFIGURED), fail closed."""
    settings = settings or PaymentSettings()
    return Payments(
        settings,
        {
            Channel.WECHAT: WechatPayProvider(settings.wechat_config()),
            Channel.ALIPAY: AlipayProvider(settings.alipay_config()),
        },
    )
