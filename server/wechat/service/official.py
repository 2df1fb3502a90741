"""Calls we make to WeChat as the official account: the customer-service message (客服消息,
`message/custom/send`) that carries a reply which missed the 5-second deadline, the
follower's profile (`user/info`, for the unionid) and the menu (`menu/create`).

The access_token comes from the notifier's one shared refresher (server.notify.providers.
wechat.Tokens: in Redis in production, so web workers and the notifier do not invalidate
each other's token); wechatpy's own refresh is off and a refused token (40001/42001) is
refreshed once through `Tokens`. wechatpy is blocking (requests): each call runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from server.notify.providers.wechat import TOKEN_EXPIRED, Tokens


class OfficialApiError(Exception):
    """WeChat refused a call (`errcode`, -1 for no answer)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class OfficialApi:
    def __init__(self, appid: str, tokens: Tokens, base_url: str, timeout_s: float = 5.0) -> None:
        self.appid, self._tokens, self._base, self._timeout = appid, tokens, base_url, timeout_s

    def _client(self, token: str) -> WeChatClient:
        client = WeChatClient(
            self.appid, None, access_token=token, timeout=self._timeout, auto_retry=False
        )
        client.API_BASE_URL = f"{self._base}cgi-bin/"
        return client

    async def _call(self, fn: Callable[[WeChatClient], Any]) -> Any:
        token = await self._tokens.get()
        for attempt in (1, 2):
            try:
                return await asyncio.to_thread(lambda t=token: fn(self._client(t)))
            except WeChatClientException as exc:
                code = int(exc.errcode) if exc.errcode is not None else -1
                if code in TOKEN_EXPIRED and attempt == 1:
                    token = await self._tokens.get(stale=token)
                    continue
                raise OfficialApiError(code, str(exc.errmsg or exc)[:200]) from None
            except requests.RequestException as exc:
                raise OfficialApiError(-1, str(exc)[:200]) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    async def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message (allowed within 48 h of the follower's message)."""
        await self._call(lambda c: c.message.send_text(openid, text))

    async def unionid(self, openid: str) -> str | None:
        """The follower's unionid, when the account is bound to an open-platform account."""
        info = await self._call(lambda c: c.user.get(openid))
        return str(info["unionid"]) if info.get("unionid") else None

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self._call(lambda c: c.menu.create(menu))
