"""WeChat login: wx.login's code → code2Session → our tenant identity → a session token.

code2Session (`GET /sns/jscode2session`) needs only the app's id and secret, no access
token: wechatpy's client would fetch one for every call, so `_Code2SessionClient` has none
(requests drops a None parameter) and never retries for one. wechatpy is blocking: the
call runs in a worker thread. The `session_key` WeChat answers is not kept anywhere: we
decrypt nothing with it (the phone comes from the account on file, not from WeChat).

WeChat's answers (docs "auth.code2Session"): 40029 invalid code, 40163 code already used,
45011 too many logins of this user (100 a minute), 40226 high-risk user blocked, -1 busy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from wechatpy.client.api.wxa import WeChatWxa
from wechatpy.client.base import BaseWeChatClient
from wechatpy.exceptions import WeChatClientException

from server.accounts.errors import (
    WechatCodeInvalid,
    WechatRateLimited,
    WechatUnavailable,
    WechatUserBlocked,
)
from server.accounts.models import AccountBinding, TenantApp, TenantIdentity
from server.accounts.service.sessions import SessionStore, TenantSession

log = logging.getLogger(__name__)

CODE_INVALID = {40029, 40163}
RATE_LIMITED = 45011
USER_BLOCKED = 40226


@dataclass(frozen=True, slots=True)
class WechatUser:
    """Who WeChat says logged in (the session_key is deliberately not here)."""

    openid: str
    unionid: str | None


class _Code2SessionClient(BaseWeChatClient):
    """A wechatpy client for code2Session alone: no access token, no token refresh."""

    wxa = WeChatWxa()

    def __init__(self, appid: str, secret: str, base_url: str, timeout_s: float) -> None:
        super().__init__(appid, timeout=timeout_s, auto_retry=False)
        self.secret = secret
        self.wxa.API_BASE_URL = base_url

    @property
    def access_token(self) -> None:  # type: ignore[override]
        return None


class WechatLogin:
    """code2Session for one mini-program app (id, secret, API base URL)."""

    def __init__(self, appid: str, secret: str, base_url: str, *, timeout_s: float = 5.0) -> None:
        self.appid = appid
        self._secret = secret
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout_s = timeout_s

    async def code2session(self, code: str) -> WechatUser:
        answer = await asyncio.to_thread(self._call, code)
        openid = answer.get("openid") if isinstance(answer, dict) else None
        if not openid:
            log.warning("code2Session answered without an openid: %r", answer)
            raise WechatUnavailable("微信登录服务异常，请稍后重试")
        return WechatUser(str(openid), answer.get("unionid") or None)

    def _call(self, code: str) -> Any:
        client = _Code2SessionClient(self.appid, self._secret, self.base_url, self.timeout_s)
        try:
            return client.wxa.code_to_session(code)
        except WeChatClientException as exc:
            raise _translate(exc) from None
        except requests.RequestException as exc:
            log.warning(
                "code2Session unreachable: %s", type(exc).__name__
            )  # the URL holds the secret
            raise WechatUnavailable("暂时无法连接微信，请稍后重试") from None
        finally:
            client._http.close()


def _translate(exc: WeChatClientException) -> Exception:
    errcode = exc.errcode
    if errcode in CODE_INVALID:
        return WechatCodeInvalid("登录凭证无效或已使用，请重新登录", errcode=errcode)
    if errcode == RATE_LIMITED:
        return WechatRateLimited("登录过于频繁，请稍后再试", errcode=errcode)
    if errcode == USER_BLOCKED:
        return WechatUserBlocked("微信判定该账号存在风险，暂时无法登录", errcode=errcode)
    log.warning("code2Session failed: errcode=%s errmsg=%s", errcode, exc.errmsg)
    return WechatUnavailable("微信登录服务暂时不可用，请稍后重试", errcode=errcode or "http")


@dataclass(frozen=True, slots=True)
class LoggedIn:
    token: str
    session: TenantSession
    identity: TenantIdentity
    accounts: int


async def upsert_identity(app: TenantApp, user: WechatUser, *, now: datetime) -> TenantIdentity:
    """The identity of (app, openid), created on first login; the unionid kept once known."""
    identity, _created = await TenantIdentity.get_or_create(
        app=app, openid=user.openid, defaults={"unionid": user.unionid, "last_login_at": now}
    )
    updates: dict[str, Any] = {"last_login_at": now}
    if user.unionid and identity.unionid != user.unionid:
        updates["unionid"] = user.unionid
    await TenantIdentity.filter(id=identity.id).update(**updates)
    identity.update_from_dict(updates)
    return identity


async def login(wechat: WechatLogin, sessions: SessionStore, code: str) -> LoggedIn:
    """Log a mini-program user in with wx.login's code: identity upserted, token issued."""
    user = await wechat.code2session(code)
    identity = await upsert_identity(TenantApp.MINIAPP, user, now=datetime.now(UTC))
    token, session = await sessions.issue(identity.id, identity.app, identity.openid)
    accounts = await AccountBinding.filter(identity_id=identity.id).count()
    return LoggedIn(token, session, identity, accounts)
