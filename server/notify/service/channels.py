"""The channel clients a notifier sends through, built from the settings: the configured
providers in production, the local fakes (server/notify/sandbox.py) in embedded mode when no
provider is configured."""

from __future__ import annotations

from redis.asyncio import Redis

from server.accounts.config import TenantSettings
from server.notify.config import NotifySettings
from server.notify.providers.aliyun import AliyunSms
from server.notify.providers.base import Sender
from server.notify.providers.email import SmtpMail
from server.notify.providers.tencent import TencentSms
from server.notify.providers.wechat import Tokens, WechatSubscribe


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
    if tenant.miniapp_appid:
        redis = Redis.from_url(redis_url) if redis_url else None
        base = tenant.wechat_api_base_url
        tokens = Tokens(tenant.miniapp_appid, tenant.miniapp_secret_value(), base, redis)
        out["wechat"] = WechatSubscribe(tenant.miniapp_appid, tokens, base, timeout_s=ns.timeout_s)
    return out
