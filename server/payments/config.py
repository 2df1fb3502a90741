"""Payment settings (`SHUIDIAN_PAY_*`): merchant keys, limits and approval thresholds.

Keys are read from files named by `*_file` settings (outside the repository) or from the
environment; none is ever logged (`repr=False`). Fail closed: a channel without its platform
key builds a provider whose `verify_notification` refuses everything (NOT_CONFIGURED), so no
notification is believed on a half-configured server.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.core.errors import ConfigError
from server.payments.providers.alipay import DEFAULT_GATEWAY, AlipayConfig
from server.payments.providers.wechat import DEFAULT_BASE_URL, WechatPayConfig

NOTIFY_PATHS = {"wechat": "/api/v1/pay/notify/wechat", "alipay": "/api/v1/pay/notify/alipay"}


class PaymentSettings(BaseSettings):
    """Field `x` is set by `SHUIDIAN_PAY_X`; `x_file` names a file holding the secret."""

    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_PAY_", extra="ignore")

    # Where the platforms post notifications: our public HTTPS origin (no query string).
    notify_base_url: str = "http://127.0.0.1:8000"

    # Limits of one recharge order, in fen.
    min_recharge_fen: int = Field(default=100, ge=1)
    max_recharge_fen: int = Field(default=5_000_000, ge=1)
    order_ttl_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # The poller asks the platform about an unpaid order this long after it was created.
    poll_after_s: int = Field(default=60, ge=0)
    # Above these amounts a second person must approve (ASVS 2.3.5).
    refund_approval_above_fen: int = Field(default=50_000, ge=0)
    adjustment_approval_above_fen: int = Field(default=10_000, ge=0)

    wechat_appid: str = ""
    wechat_mchid: str = ""
    wechat_merchant_serial_no: str = ""
    wechat_merchant_private_key: str = Field(default="", repr=False)
    wechat_merchant_private_key_file: Path | None = None
    wechat_apiv3_key: str = Field(default="", repr=False)
    wechat_apiv3_key_file: Path | None = None
    wechat_platform_public_key: str = Field(default="", repr=False)
    wechat_platform_public_key_file: Path | None = None
    wechat_platform_public_key_id: str = ""
    wechat_base_url: str = DEFAULT_BASE_URL

    alipay_app_id: str = ""
    alipay_seller_id: str = ""
    alipay_app_private_key: str = Field(default="", repr=False)
    alipay_app_private_key_file: Path | None = None
    alipay_public_key: str = Field(default="", repr=False)
    alipay_public_key_file: Path | None = None
    alipay_gateway_url: str = DEFAULT_GATEWAY

    def notify_url(self, channel: str) -> str:
        return self.notify_base_url.rstrip("/") + NOTIFY_PATHS[channel]

    def wechat_config(self) -> WechatPayConfig:
        return WechatPayConfig(
            appid=self.wechat_appid,
            mchid=self.wechat_mchid,
            merchant_serial_no=self.wechat_merchant_serial_no,
            merchant_private_key=_secret(
                self.wechat_merchant_private_key, self.wechat_merchant_private_key_file,
                "wechat_merchant_private_key",
            ),
            apiv3_key=_secret(self.wechat_apiv3_key, self.wechat_apiv3_key_file,
                              "wechat_apiv3_key").strip(),
            platform_public_key=_secret(
                self.wechat_platform_public_key, self.wechat_platform_public_key_file,
                "wechat_platform_public_key",
            ),
            platform_public_key_id=self.wechat_platform_public_key_id,
            refund_notify_url=self.notify_url("wechat"),
            base_url=self.wechat_base_url,
        )  # fmt: skip

    def alipay_config(self) -> AlipayConfig:
        return AlipayConfig(
            app_id=self.alipay_app_id,
            app_private_key=_secret(
                self.alipay_app_private_key, self.alipay_app_private_key_file,
                "alipay_app_private_key",
            ),
            alipay_public_key=_secret(
                self.alipay_public_key, self.alipay_public_key_file, "alipay_public_key"
            ),
            seller_id=self.alipay_seller_id,
            gateway_url=self.alipay_gateway_url,
        )  # fmt: skip


def _secret(value: str, path: Path | None, name: str) -> str:
    if value or path is None:
        return value
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"SHUIDIAN_PAY_{name.upper()}_FILE: cannot read {path}: {exc}") from None
