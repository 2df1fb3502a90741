"""Official-account settings (`SHUIDIAN_WECHAT_*`): the account's appid and secret, the
server-configuration token and EncodingAESKey (公众号后台 → 基本配置 → 服务器配置), and how
long a reply may take before it goes out as a customer-service message instead.

Left empty in embedded mode, the chatbot is the demo's sandbox official account: the token
and key below, and a local fake of WeChat's API (server/wechat/sandbox.py) for the
follow-up messages and the menu. Production refuses to start the endpoint without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The demo's sandbox official account (never a real one: these are published here).
SANDBOX_APPID = "wx-official-sandbox"
SANDBOX_SECRET = "sandbox-official-secret"
SANDBOX_TOKEN = "shuidian-sandbox-token"
SANDBOX_AES_KEY = "c2h1aWRpYW4tc2FuZGJveC1vZmZpY2lhbC1hY2N0ISE"  # 43 characters


def _secret(value: str, path: Path | None) -> str:
    return path.read_text().strip() if path is not None else value


class OfficialSettings(BaseSettings):
    """Field `x` is set by `SHUIDIAN_WECHAT_X`; `x_file` names a file holding the secret."""

    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_WECHAT_", extra="ignore")

    appid: str = ""
    secret: str = Field(default="", repr=False)
    secret_file: Path | None = None
    # 服务器配置: the Token WeChat signs with, and the EncodingAESKey of 安全模式.
    token: str = Field(default="", repr=False)
    encoding_aes_key: str = Field(default="", repr=False)
    encoding_aes_key_file: Path | None = None
    # plain: 明文模式; safe: 安全模式 (every message encrypted); compatible: 兼容模式 (both
    # come, we answer in the form asked: encrypted when the request carries msg_signature).
    encryption: Literal["plain", "safe", "compatible"] = "compatible"
    api_base_url: str = "https://api.weixin.qq.com/"
    api_timeout_s: float = Field(default=5.0, gt=0)

    # WeChat waits 5 s for an answer, then retries (three times). A reply not ready after
    # this long is answered "success" and sent as a customer-service message when ready.
    reply_budget_s: float = Field(default=3.5, ge=0)
    # A MsgId (or an event's sender + time) seen in this window is not acted on again.
    dedup_ttl_s: int = Field(default=300, ge=30)
    # WeChat's messages are small; a larger body is refused unread (413).
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # The mini-program 充值 links open: its appid (empty: SHUIDIAN_TENANT_MINIAPP_APPID)
    # and page; `recharge_url` is what clients too old for mini-program links open.
    miniapp_appid: str = ""
    recharge_page: str = "pages/recharge/recharge"
    recharge_url: str = "https://mp.weixin.qq.com/"
    # The mini-program's invoice page the 发票 reply links to; empty (no such page yet): the
    # reply says to ask the property's service desk instead.
    invoice_page: str = ""

    def secret_value(self) -> str:
        return _secret(self.secret, self.secret_file)

    def aes_key(self) -> str:
        return _secret(self.encoding_aes_key, self.encoding_aes_key_file)

    def configured(self) -> bool:
        return bool(self.appid and self.token)

    def sandboxed(self) -> OfficialSettings:
        """These settings as the demo's sandbox official account (embedded mode only)."""
        return self.model_copy(
            update={
                "appid": SANDBOX_APPID,
                "secret": SANDBOX_SECRET,
                "secret_file": None,
                "token": SANDBOX_TOKEN,
                "encoding_aes_key": SANDBOX_AES_KEY,
                "encoding_aes_key_file": None,
            }
        )
