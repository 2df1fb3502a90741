"""Tenant self-service settings (`SHUIDIAN_TENANT_*`): the mini-program's WeChat app, tenant
sessions, SMS binding codes, subscribe-message templates.

An empty `miniapp_appid` in embedded mode means the demo's sandbox login (the fake WeChat
API of `sandbox.py`, started by `routes/auth.py`); production refuses to start without the
app's id and secret (`service/keys.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Purpose = Literal["low_balance", "power_off", "recharge_done"]


class SubscribeTemplate(BaseModel):
    """One subscribe-message template: its id in the WeChat back-office, what we send with
    it, and the Chinese title the mini-program shows."""

    template_id: str = Field(min_length=1, max_length=64)
    purpose: Purpose
    title: str


class TenantSettings(BaseSettings):
    """Field `x` is set by `SHUIDIAN_TENANT_X`; `x_file` names a file holding the secret."""

    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_TENANT_", extra="ignore")

    # A tenant session (the mini-program's bearer token) lasts this long; the mini-program
    # logs in again on 401.
    session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)

    # The mini-program's WeChat app (code2Session).
    miniapp_appid: str = ""
    miniapp_secret: str = Field(default="", repr=False)
    miniapp_secret_file: Path | None = None
    # api.weixin.qq.com; tests point it at a local fake WeChat server.
    wechat_api_base_url: str = "https://api.weixin.qq.com/"
    # code2Session answers in well under a second; past this the login answers 502.
    wechat_timeout_s: float = Field(default=5.0, gt=0)

    # SMS binding codes: valid this long, this many tries, at most one send a minute and
    # `sms_daily_max` a day, per phone and per identity.
    sms_code_ttl_s: int = Field(default=300, ge=60)
    sms_max_tries: int = Field(default=5, ge=1)
    sms_resend_s: int = Field(default=60, ge=1)
    sms_daily_max: int = Field(default=10, ge=1)

    # Binding QR codes staff generate are valid this long unless the command says otherwise.
    qr_ticket_hours: int = Field(default=72, ge=1)

    # Subscribe-message templates (mini-program back-office → 订阅消息); the demo's are
    # placeholders. Set as JSON: SHUIDIAN_TENANT_SUBSCRIBE_TEMPLATES='[{"template_id": …}]'.
    subscribe_templates: list[SubscribeTemplate] = Field(
        default_factory=lambda: [
            SubscribeTemplate(
                template_id="demo-low-balance", purpose="low_balance", title="余额不足提醒"
            ),
            SubscribeTemplate(
                template_id="demo-power-off", purpose="power_off", title="断电/关阀通知"
            ),
            SubscribeTemplate(
                template_id="demo-recharge-done", purpose="recharge_done", title="充值成功通知"
            ),
        ]
    )

    def miniapp_secret_value(self) -> str:
        """The app secret, from the setting or the file it names."""
        if self.miniapp_secret_file is not None:
            return self.miniapp_secret_file.read_text().strip()
        return self.miniapp_secret
