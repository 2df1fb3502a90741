"""The channel clients a notifier sends through, built from the settings: the configured
providers in production, the local fakes (server/notify/sandbox.py) in embedded mode when no
provider is configured."""

from __future__ import annotations

from redis.asyncio import Redis

from server.accounts.config import TenantSettings
from server.notify.config import NotifySettings
from server.notify.providers.aliyun import AliyunSms, AliyunVoice
from server.notify.providers.base import Sender
from server.notify.providers.email import SmtpMail
from server.notify.providers.tencent import TencentSms
from server.notify.providers.wechat import Tokens, WechatSubscribe, WechatTemplate


def configured(
    ns: NotifySettings, tenant: TenantSettings, redis_url: str = ""
) -> dict[str, Sender]:
    """Clients of the configured providers, by channel; an unconfigured channel is absent
    (its messages fail as `local.no_channel`, visible in the delivery log)."""
    out: dict[str, Sender] = {}
    if ns.sms_configured() and ns.sms_provider == "aliyun":
        out["sms"] = AliyunSms(
            ns.aliyun_access_key_id, ns.aliyun_secret(), ns.aliyun_sign_name,
            ns.aliyun_templates, endpoint=ns.aliyun_endpoint, timeout_s=ns.timeout_s,
        )  # fmt: skip
    elif ns.sms_configured():
        out["sms"] = TencentSms(
            ns.tencent_secret_id, ns.tencent_secret(), ns.tencent_sdk_app_id,
            ns.tencent_sign_name, ns.tencent_templates, region=ns.tencent_region,
            endpoint=ns.tencent_endpoint, timeout_s=ns.timeout_s,
        )  # fmt: skip
    if ns.smtp_host:
        out["email"] = SmtpMail(
            ns.smtp_host, ns.smtp_port, ns.smtp_from, tls=ns.smtp_tls, user=ns.smtp_user,
            password=ns.smtp_secret(), timeout_s=ns.timeout_s,
        )  # fmt: skip
    if ns.aliyun_access_key_id and ns.voice_called_show_number:
        out["voice"] = AliyunVoice(
            ns.aliyun_access_key_id, ns.aliyun_secret(), ns.voice_called_show_number,
            ns.voice_templates, endpoint=ns.voice_endpoint, play_times=ns.voice_play_times,
            timeout_s=ns.timeout_s,
        )  # fmt: skip
    redis = Redis.from_url(redis_url) if redis_url else None
    base = tenant.wechat_api_base_url
    if tenant.miniapp_appid:
        tokens = Tokens(tenant.miniapp_appid, tenant.miniapp_secret_value(), base, redis)
        out["wechat"] = WechatSubscribe(tenant.miniapp_appid, tokens, base, timeout_s=ns.timeout_s)
    if ns.official_appid:
        tokens = Tokens(ns.official_appid, ns.official_secret_value(), base, redis)
        out["official"] = WechatTemplate(
            ns.official_appid, tokens, base, ns.official_templates, timeout_s=ns.timeout_s
        )
    return out
