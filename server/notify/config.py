"""Notifier settings (`SHUIDIAN_NOTIFY_*`): which SMS provider, the providers' keys and
template codes, the SMTP server, de-duplication and rate limits.

Left empty in embedded mode, the notifier sends to the local fakes (server/notify/sandbox.py)
and the demo's messages show as delivered to them. Production needs the keys of the providers
it uses; `_file` settings name files holding the secrets. The WeChat app (appid, secret,
subscribe templates) is the mini-program's, from `SHUIDIAN_TENANT_*`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _secret(value: str, path: Path | None) -> str:
    return path.read_text().strip() if path is not None else value


class NotifySettings(BaseSettings):
    """Field `x` is set by `SHUIDIAN_NOTIFY_X`."""

    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_NOTIFY_", extra="ignore")

    sms_provider: Literal["aliyun", "tencent"] = "aliyun"
    # Alibaba Cloud SMS (dysmsapi 2017-05-25): template key → approved TemplateCode.
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: str = Field(default="", repr=False)
    aliyun_access_key_secret_file: Path | None = None
    aliyun_sign_name: str = "水电"
    aliyun_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_templates: dict[str, str] = Field(default_factory=dict)
    # Tencent Cloud SMS (2021-01-11): template key → TemplateId; parameters in TEMPLATE order.
    tencent_secret_id: str = ""
    tencent_secret_key: str = Field(default="", repr=False)
    tencent_secret_key_file: Path | None = None
    tencent_sdk_app_id: str = ""
    tencent_sign_name: str = "水电"
    tencent_region: str = "ap-guangzhou"
    tencent_endpoint: str = "https://sms.tencentcloudapi.com/"
    tencent_templates: dict[str, str] = Field(default_factory=dict)
    # E-mail (aiosmtplib): empty host = the local fake in embedded mode.
    smtp_host: str = ""
    smtp_port: int = 465
    smtp_tls: Literal["tls", "starttls", "none"] = "tls"
    smtp_user: str = ""
    smtp_password: str = Field(default="", repr=False)
    smtp_password_file: Path | None = None
    smtp_from: str = "水电 <noreply@example.com>"

    # Alibaba Cloud voice notification (dyvmsapi 2017-05-25, same AccessKey as the SMS):
    # the shown number and template key → approved TtsCode. Every TTS template takes one
    # variable, `text`: the message's rendered text (an organisation's override included).
    voice_called_show_number: str = ""
    voice_endpoint: str = "https://dyvmsapi.aliyuncs.com/"
    voice_templates: dict[str, str] = Field(default_factory=dict)
    voice_play_times: int = Field(default=2, ge=1, le=3)
    # Voice quiet hours, local time (a site's own in notify_site_setting wins): a call that
    # falls in them waits until they end.
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"
    # Official account (公众号) template messages: its appid, secret and template key →
    # template_id (from the account's 模板消息 library).
    official_appid: str = ""
    official_secret: str = Field(default="", repr=False)
    official_secret_file: Path | None = None
    official_templates: dict[str, str] = Field(default_factory=dict)
    # SMS delivery receipts: sent messages are asked about (QuerySendDetails /
    # PullSmsSendStatus) every `receipt_period_s`, for at most `receipt_window_h` hours.
    receipt_period_s: float = Field(default=60.0, gt=0)
    receipt_window_h: int = Field(default=24, ge=1)

    # A provider's answer is awaited this long; then the attempt is a temporary failure.
    timeout_s: float = Field(default=10.0, gt=0)
    # The same template for the same account and recipient at most once in this interval.
    dedup_interval_s: int = Field(default=3600, ge=0)
    # At most this many messages to one recipient per channel in an hour; more are failed
    # as `local.rate_limited` (visible in the delivery log) rather than sent.
    rate_per_hour: int = Field(default=10, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    batch: int = Field(default=50, ge=1)
    # Sends in flight per notifier (the providers' answers are awaited concurrently).
    concurrency: int = Field(default=8, ge=1)
    period_s: float = Field(default=2.0, gt=0)

    def aliyun_secret(self) -> str:
        return _secret(self.aliyun_access_key_secret, self.aliyun_access_key_secret_file)

    def tencent_secret(self) -> str:
        return _secret(self.tencent_secret_key, self.tencent_secret_key_file)

    def smtp_secret(self) -> str:
        return _secret(self.smtp_password, self.smtp_password_file)

    def official_secret_value(self) -> str:
        return _secret(self.official_secret, self.official_secret_file)

    def sms_configured(self) -> bool:
        if self.sms_provider == "aliyun":
            return bool(self.aliyun_access_key_id)
        return bool(self.tencent_secret_id)


SHANGHAI = ZoneInfo("Asia/Shanghai")


def parse_hhmm(text: str) -> time:
    """ "22:00" → 22:00; ValueError for anything else."""
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"时间格式应为 HH:MM：{text}")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, start: str, end: str, tz: ZoneInfo = SHANGHAI) -> datetime | None:
    """When the quiet hours [start, end) around `now` end (aware), or None outside them.
    start > end spans midnight (22:00–08:00); start == end means no quiet hours."""
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    if begin == finish:
        return None
    local = now.astimezone(tz)
    clock = local.time()
    overnight = begin > finish
    inside = (clock >= begin or clock < finish) if overnight else begin <= clock < finish
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if overnight and clock >= begin else local.date()
    return datetime.combine(day, finish, tz).astimezone(UTC)  # SQLite compares text: UTC
