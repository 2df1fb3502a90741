"""A fake WeChat API for tests and the demo: `GET /sns/jscode2session` answered like WeChat,
on a real loopback HTTP server (server.core.httpd).

    async with FakeWechat(appid="wx-test", secret="s") as wechat:
        wechat.add_code("c1", "o-alice", unionid="u-alice")   # one use, like wx.login's
        login = WechatLogin("wx-test", "s", wechat.base_url)
        ...
        wechat.fault = 45011          # every answer is this errcode (or 500: HTTP 500)
        wechat.delay_s = 30           # WeChat hangs: the login times out (502)

Codes `demo-<name>` always answer openid `o-demo-<name>` and may be used again (the demo's
curl lines); any other unknown code answers 40029, a registered code used twice 40163.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field

from server.core.httpd import HttpServer, Request, Response

DEMO_PREFIX = "demo-"
_ERRMSG = {
    40029: "invalid code",
    40163: "code been used",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    40226: "code blocked",
    -1: "system error",
    40125: "invalid appsecret",
    40013: "invalid appid",
}


def demo_openid(code: str) -> str | None:
    """The openid a demo code stands for, or None for any other code."""
    if code.startswith(DEMO_PREFIX) and len(code) > len(DEMO_PREFIX):
        return "o-" + code
    return None


@dataclass
class FakeWechat:
    appid: str = "wx-sandbox"
    secret: str = "sandbox-secret"
    fault: int | None = None  # an errcode every call answers; 500 answers HTTP 500
    delay_s: float = 0.0  # answer this late (a slow or hanging WeChat)
    codes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = HttpServer(self._handle)

    @property
    def base_url(self) -> str:
        return self._server.base_url + "/"

    async def start(self) -> FakeWechat:
        await self._server.start()
        return self

    async def close(self) -> None:
        await self._server.close()

    async def __aenter__(self) -> FakeWechat:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_code(self, code: str, openid: str, *, unionid: str | None = None) -> str:
        self.codes[code] = (openid, unionid)
        return code

    def new_code(self, openid: str, *, unionid: str | None = None) -> str:
        """A fresh one-use code for `openid` (what wx.login gives the mini-program)."""
        return self.add_code(secrets.token_urlsafe(12), openid, unionid=unionid)

    async def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.path != "/sns/jscode2session" or request.method != "GET":
            return Response(404, b"not found")
        if self.fault == 500:
            return Response(500, b"<html>500 Internal Server Error</html>")
        if self.fault is not None:
            return _error(self.fault)
        query = request.query
        if query.get("appid") != self.appid:
            return _error(40013)
        if query.get("secret") != self.secret or query.get("grant_type") != "authorization_code":
            return _error(40125)
        return self._session(query.get("js_code", ""))

    def _session(self, code: str) -> Response:
        openid = demo_openid(code)
        unionid = None
        if openid is None:
            if code not in self.codes:
                return _error(40029)
            if code in self.used:
                return _error(40163)
            self.used.add(code)
            openid, unionid = self.codes[code]
        answer = {"openid": openid, "session_key": secrets.token_urlsafe(16)}
        if unionid:
            answer["unionid"] = unionid
        return _json(answer)


def _error(errcode: int) -> Response:
    return _json({"errcode": errcode, "errmsg": _ERRMSG.get(errcode, "error")})


def _json(body: dict[str, object]) -> Response:
    return Response(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
