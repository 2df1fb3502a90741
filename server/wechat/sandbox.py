"""The two sides of WeChat the chatbot talks to, for tests, the demo and `shuidian wechat
say`, on real loopback HTTP:

- `WechatServer` plays WeChat's server calling us: it writes a follower's message or event
  as WeChat does (XML; in 安全模式 AES-encrypted with `msg_signature`), signs the request
  with the account's token, posts it to our endpoint and reads the passive reply back
  (decrypting and checking its signature as WeChat would).
- `FakeOfficialApi` plays api.weixin.qq.com for the official account: the notifier's WeChat
  fake (server.notify.sandbox.FakeWechatApi: access_token issued and checked, faults,
  delay) taught the official account's calls — `message/custom/send`, `menu/create`,
  `user/info` — each refused (40001) without the current access_token.

    async with FakeOfficialApi(appid, secret) as api:            # follow-ups land in api.sent
        server = WechatServer("http://127.0.0.1:8000/wechat/official", settings)
        reply = await server.say("o-alice", "余额")              # the reply's text
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import httpx
import xmltodict
from wechatpy.crypto import WeChatCrypto

from server.core.httpd import Request, Response
from server.notify.sandbox import FakeWechatApi
from server.wechat.config import OfficialSettings

_ids = itertools.count(int(time.time() * 1000))
DEMO_FOLLOWER, DEMO_UNIONID = "oa-demo-", "u-demo-"


def _json(body: dict[str, Any]) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode()
    return Response(200, data, {"Content-Type": "application/json"})


@dataclass
class FakeOfficialApi(FakeWechatApi):
    """api.weixin.qq.com for one official account. `sent` (inherited) holds the
    customer-service messages as (openid, "text", content); `menus` the menus created;
    `unionids` answers user/info (an openid not in it has no unionid), and the demo's
    followers `oa-demo-<name>` are the demo tenants: unionid `u-demo-<name>` (server/seed.py
    gives the mini-program identities `o-demo-<name>` the same)."""

    appid: str = ""
    secret: str = ""
    unionids: dict[str, str] = field(default_factory=dict)
    menus: list[dict[str, Any]] = field(default_factory=list)

    async def __aenter__(self) -> FakeOfficialApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def handle(self, request: Request) -> Response:
        if request.path == "/cgi-bin/token":
            q = request.query
            if q.get("appid") != self.appid or q.get("secret") != self.secret:
                return _json({"errcode": 40125, "errmsg": "invalid appsecret"})
            self.tokens_issued += 1
            self._token = secrets.token_hex(16)
            return _json({"access_token": self._token, "expires_in": 7200})
        if request.path not in ("/cgi-bin/message/custom/send", "/cgi-bin/menu/create",
                                "/cgi-bin/user/info"):  # fmt: skip
            return await super().handle(request)
        if not self._token or request.query.get("access_token") != self._token:
            return _json({"errcode": 40001, "errmsg": "invalid credential"})
        fault = self._next_fault()
        if fault == "500":
            return Response(503, b"Service Unavailable")
        if fault:
            return _json({"errcode": int(fault), "errmsg": "fault"})
        if request.path == "/cgi-bin/user/info":
            openid = request.query.get("openid", "")
            info: dict[str, Any] = {"subscribe": 1, "openid": openid}
            if openid in self.unionids:
                info["unionid"] = self.unionids[openid]
            elif openid.startswith(DEMO_FOLLOWER):
                info["unionid"] = DEMO_UNIONID + openid.removeprefix(DEMO_FOLLOWER)
            return _json(info)
        body = json.loads(request.body)
        if request.path == "/cgi-bin/menu/create":
            if not isinstance(body.get("button"), list) or not 1 <= len(body["button"]) <= 3:
                return _json({"errcode": 40016, "errmsg": "invalid button size"})
            self.menus.append(body)
            return _json({"errcode": 0, "errmsg": "ok"})
        if body.get("msgtype") != "text" or not body.get("touser"):
            return _json({"errcode": 40008, "errmsg": "invalid message type"})
        self.sent.append((body["touser"], "text", body["text"]["content"]))
        return _json({"errcode": 0, "errmsg": "ok"})


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@dataclass
class Delivery:
    """What our endpoint answered: the HTTP status, the raw body, the reply's text ("" for
    "success" or a refusal) and whether the reply came encrypted."""

    status: int
    body: str
    text: str = ""
    encrypted: bool = False


class WechatServer:
    """WeChat's server, posting to our endpoint `url` for the account `settings` names."""

    def __init__(self, url: str, settings: OfficialSettings, *, account: str = "gh_sandbox"):
        self.url, self.settings, self.account = url, settings, account
        self.token = settings.token
        key = settings.aes_key()
        self.crypto = WeChatCrypto(settings.token, key, settings.appid) if key else None

    def query(self, *, timestamp: int | None = None, token: str | None = None) -> dict[str, str]:
        """A signed query string (a wrong `token` forges it)."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = str(secrets.randbelow(10**10))
        return {"signature": _sign(token or self.token, stamp, nonce), "timestamp": stamp,
                "nonce": nonce}  # fmt: skip

    async def verify_url(self, echostr: str = "", **kw: Any) -> httpx.Response:
        params = {**self.query(**kw), "echostr": echostr or secrets.token_hex(8)}
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.get(self.url, params=params)

    def text_xml(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return self._xml(openid, "text", Content=content, MsgId=msg_id or next(_ids))

    def event_xml(
        self, openid: str, event: str, key: str = "", scan: str = "", *, at: int | None = None
    ) -> str:
        """An event; WeChat tells events apart by sender and CreateTime (`at`, default now)."""
        extra: dict[str, Any] = {"Event": event, "CreateTime": at or int(time.time())}
        if key:
            extra["EventKey"] = key
        if scan:
            extra["ScanCodeInfo"] = (
                f"<ScanType>qrcode</ScanType><ScanResult>{escape(scan)}</ScanResult>"
            )
        return self._xml(openid, "event", **extra)

    def _xml(self, openid: str, kind: str, **fields: Any) -> str:
        stamp = fields.pop("CreateTime", int(time.time()))
        nodes = [f"<ToUserName><![CDATA[{self.account}]]></ToUserName>",
                 f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
                 f"<CreateTime>{stamp}</CreateTime>",
                 f"<MsgType><![CDATA[{kind}]]></MsgType>"]  # fmt: skip
        for name, value in fields.items():
            raw = name == "ScanCodeInfo" or isinstance(value, int)
            nodes.append(f"<{name}>{value if raw else f'<![CDATA[{value}]]>'}</{name}>")
        return "<xml>" + "".join(nodes) + "</xml>"

    def envelope(self, xml: str, *, encrypted: bool, **kw: Any) -> tuple[dict[str, str], bytes]:
        """The query and body WeChat would post for `xml` (plain or 安全模式)."""
        query = {**self.query(**kw), "openid": "from-xml"}
        if not encrypted:
            return query, xml.encode()
        assert self.crypto is not None, "no EncodingAESKey: encrypted mode is not possible"
        sealed = self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
        sealed = xmltodict.parse(sealed)["xml"]
        body = (f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
                f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>")  # fmt: skip
        query.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
        return query, body.encode()

    async def post(self, xml: str, *, encrypted: bool = True, **kw: Any) -> Delivery:
        query, body = self.envelope(xml, encrypted=encrypted, **kw)
        return await self.post_raw(query, body)

    async def post_raw(self, query: dict[str, str], body: bytes) -> Delivery:
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                self.url, params=query, content=body, headers={"Content-Type": "text/xml"}
            )
        return self.read(answer.status_code, answer.text)

    def read(self, status: int, body: str) -> Delivery:
        """The reply's text, decrypted (its msg_signature checked) when it is encrypted."""
        if status != 200 or not body.startswith("<xml>"):
            return Delivery(status, body)
        fields = xmltodict.parse(body)["xml"]
        if "Encrypt" in fields:
            assert self.crypto is not None
            plain = self.crypto.decrypt_message(
                body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
            )
            return Delivery(status, body, str(xmltodict.parse(plain)["xml"]["Content"]), True)
        return Delivery(status, body, str(fields.get("Content") or ""))

    async def say(self, openid: str, content: str, *, encrypted: bool = True) -> str:
        """A follower writes `content`; the chatbot's reply text."""
        return (await self.post(self.text_xml(openid, content), encrypted=encrypted)).text
