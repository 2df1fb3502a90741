"""Tenant self-service settings (`SHUIDIAN_TENANT_*`): the mini-program's WeChat app, tenant
sessions, SMS binding codes, subscribe-message templates.

An empty `miniapp_appid` in embedded mode means the demo's sandbox login (see
`service/login.py`); production refuses to start without the app's id and secret.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
