"""WeChat mini-program subscribe messages (`POST /cgi-bin/message/subscribe/send`) and
official-account template messages (`POST /cgi-bin/message/template/send`) through wechatpy,
each app's access_token from one shared refresher.

A new access_token invalidates the old one after a grace period, so processes must not each
fetch their own: `Tokens` keeps it in Redis (production) under a lock — one process fetches,
the others read — or in memory (embedded: one process). wechatpy's own refresh is off
(`auto_retry=False`): on 40001/42001 we refresh through `Tokens` once and retry.
wechatpy is blocking (requests), so each call runs in a thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import requests
from redis.asyncio import Redis
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from server.notify.providers.base import Outgoing, SendError, unreachable

TOKEN_EXPIRED = {40001, 42001, 40014}
# Permanent for this message: no grant left / refused (43101), bad template data (47003),
# bad openid (40003), bad template id (40037), user unsubscribed (43004), the template
# message API refused for this user or template (43100 frequency per template per user is
# temporary, not here).
PERMANENT = {43101, 47003, 40003, 40037, 43004, 40013, 40125, 43116}


def is_temporary(errcode: int) -> bool:
    return errcode not in PERMANENT


class Tokens:
    """The app's access_token: fetched by one process, refreshed at 80% of its life."""

    def __init__(self, appid: str, secret: str, base_url: str, redis: Redis | None = None) -> None:
        self._appid, self._secret, self._base = appid, secret, base_url
        self._redis = redis
        self._key = f"shuidian:wechat:token:{appid}"
        self._token = ""
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, stale: str = "") -> str:
        """The current token; `stale` is one WeChat just refused (fetch a new one)."""
        async with self._lock:
            if self._token and self._token != stale and time.time() < self._until:
                return self._token
            if self._redis is not None:
                shared = await self._redis.get(self._key)
                if shared and shared.decode() != stale:
                    self._token, self._until = shared.decode(), time.time() + 60
                    return self._token
                async with self._redis.lock(self._key + ":lock", timeout=30, blocking_timeout=30):
                    shared = await self._redis.get(self._key)  # fetched while we waited?
                    if shared and shared.decode() != stale:
                        self._token, self._until = shared.decode(), time.time() + 60
                        return self._token
                    token, life = await self._fetch()
                    await self._redis.set(self._key, token, ex=max(60, int(life * 0.8)))
            else:
                token, life = await self._fetch()
            self._token, self._until = token, time.time() + life * 0.8
            return token

    async def _fetch(self) -> tuple[str, int]:
        params = {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret}
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                body = (await http.get(f"{self._base}cgi-bin/token", params=params)).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise unreachable("wechat", exc) from None
        if "access_token" not in body:
            code = int(body.get("errcode", -1))
            raise SendError(str(code), str(body.get("errmsg", "")), temporary=is_temporary(code))
        return str(body["access_token"]), int(body.get("expires_in", 7200))


class _WechatSender:
    """What both WeChat channels share: the token, one refresh-and-retry on an expired
    token, WeChat's errcode kept."""

    name = "wechat"

    def __init__(
        self, appid: str, tokens: Tokens, base_url: str, *, page: str = "", timeout_s: float = 10.0
    ) -> None:
        self._appid, self._tokens, self._page = appid, tokens, page
        self._base, self._timeout = base_url, timeout_s

    def _client(self, token: str) -> WeChatClient:
        client = WeChatClient(
            self._appid, None, access_token=token, timeout=self._timeout, auto_retry=False
        )
        client.API_BASE_URL = f"{self._base}cgi-bin/"
        client.wxa.API_BASE_URL = self._base  # the wxa endpoints name their cgi-bin/ path
        return client

    def _call(self, token: str, message: Outgoing) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, message: Outgoing) -> str:
        token = await self._tokens.get()
        for attempt in (1, 2):
            try:
                result = await asyncio.to_thread(self._call, token, message)
                return str(result.get("msgid", ""))
            except WeChatClientException as exc:
                code = int(exc.errcode) if exc.errcode is not None else -1
                if code in TOKEN_EXPIRED and attempt == 1:
                    token = await self._tokens.get(stale=token)
                    continue
                if exc.errcode is None:  # an HTTP error status
                    raise SendError("http.error", str(exc)[:300], temporary=True) from None
                raise SendError(
                    str(code), str(exc.errmsg or ""), temporary=is_temporary(code)
                ) from None
            except requests.RequestException as exc:
                raise unreachable("wechat", exc) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    async def aclose(self) -> None:
        return None


class WechatSubscribe(_WechatSender):
    """Mini-program subscribe message (订阅消息): one allowance per message."""

    def _call(self, token: str, message: Outgoing) -> dict[str, Any]:
        return self._client(token).wxa.send_subscribe_message(
            message.recipient,
            message.wechat_template_id,
            dict(message.wechat_data),
            page=self._page or None,
        )


class WechatTemplate(_WechatSender):
    """Official-account template message (公众号模板消息) to a follower's openid; its
    `remark` field carries the rendered (override) text."""

    name = "wechat-mp"

    def __init__(
        self,
        appid: str,
        tokens: Tokens,
        base_url: str,
        templates: dict[str, str],
        *,
        url: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(appid, tokens, base_url, page=url, timeout_s=timeout_s)
        self._templates = dict(templates)

    async def send(self, message: Outgoing) -> str:
        if message.template not in self._templates:
            raise SendError(
                "local.no_template", f"未配置公众号模板：{message.template}", temporary=False
            )
        return await super().send(message)

    def _call(self, token: str, message: Outgoing) -> dict[str, Any]:
        return self._client(token).message.send_template(
            message.recipient,
            self._templates[message.template],
            dict(message.wechat_data),
            url=self._page or None,
        )
