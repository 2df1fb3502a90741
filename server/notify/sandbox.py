"""Local fakes of the messaging platforms, for tests and the embedded demo: Alibaba Cloud SMS,
Tencent Cloud SMS and WeChat on real loopback HTTP servers (server.core.httpd), SMTP on
aiosmtpd. Each checks what the platform checks (the request's signature, the access_token,
the phone number), answers with the platform's own error codes, and can be made slow
(`delay_s`), failing (`faults`: codes answered one per request, then normal again; `fault`:
every request) or down (`close()`: connection refused).

    async with NotifySandbox() as fakes:
        senders = fakes.senders()          # clients pointed at the fakes
        fakes.aliyun.faults.append("isv.BUSINESS_LIMIT_CONTROL")
        fakes.aliyun.sent                  # what arrived: [(phone, template, params)]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiosmtpd.smtp import SMTP, Envelope, Session

from server.core.httpd import HttpServer, Request, Response
from server.notify.providers import aliyun, tencent
from server.notify.providers.base import Sender
from server.notify.providers.email import SmtpMail
from server.notify.providers.wechat import Tokens, WechatSubscribe
from server.notify.templates import TEMPLATES

PHONE = re.compile(r"^(\+86)?1[3-9]\d{9}$")
KEY_ID, KEY_SECRET = "sandbox-key", "sandbox-secret"
APPID, APP_SECRET = "wx-notify-sandbox", "sandbox-app-secret"
SDK_APP_ID = "1400000000"
_ALIYUN_MSG = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.BUSINESS_LIMIT_CONTROL": "业务限流",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "isv.SMS_TEMPLATE_ILLEGAL": "模板不合法",
    "isp.SYSTEM_ERROR": "系统错误",
}


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        status, json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json"}
    )


@dataclass
class _Fake:
    """What every HTTP fake shares: faults, delay, the log of what arrived."""

    fault: str | None = None
    faults: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    sent: list[tuple[str, str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = HttpServer(self._serve)

    @property
    def base_url(self) -> str:
        return self._server.base_url + "/"

    async def start(self) -> None:
        await self._server.start()

    async def close(self) -> None:
        await self._server.close()

    def _next_fault(self) -> str | None:
        return self.faults.pop(0) if self.faults else self.fault

    async def _serve(self, request: Request) -> Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await self.handle(request)

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError


@dataclass
class FakeAliyunSms(_Fake):
    async def handle(self, request: Request) -> Response:
        params = dict(parse_qsl(request.body.decode()))
        given = params.pop("Signature", "")
        if params.get("AccessKeyId") != KEY_ID:
            return self._error("InvalidAccessKeyId.NotFound", 404)
        if given != aliyun.signature(KEY_SECRET, params):
            return self._error("SignatureDoesNotMatch", 400)
        if params.get("Action") != "SendSms" or params.get("Version") != aliyun.VERSION:
            return self._error("InvalidAction.NotFound", 404)
        fault = self._next_fault()
        if fault == "500":
            return Response(500, b"Internal Server Error")
        if fault:
            return self._error(fault)
        if not PHONE.match(params.get("PhoneNumbers", "")):
            return self._error("isv.MOBILE_NUMBER_ILLEGAL")
        self.sent.append(
            (params["PhoneNumbers"], params["TemplateCode"], json.loads(params["TemplateParam"]))
        )
        return _json(
            {
                "Code": "OK",
                "Message": "OK",
                "BizId": f"{secrets.randbelow(10**18)}^0",
                "RequestId": secrets.token_hex(8),
            }
        )

    def _error(self, code: str, status: int = 200) -> Response:
        return _json(
            {
                "Code": code,
                "Message": _ALIYUN_MSG.get(code, code),
                "RequestId": secrets.token_hex(8),
            },
            status,
        )


@dataclass
class FakeTencentSms(_Fake):
    secret_id: str = KEY_ID
    secret_key: str = KEY_SECRET

    async def handle(self, request: Request) -> Response:
        stamp = int(request.headers.get("x-tc-timestamp", "0"))
        host = request.headers.get("host", "")
        want = tencent.authorization(self.secret_id, self.secret_key, host, request.body, stamp)
        if request.headers.get("authorization") != want:
            return self._error("AuthFailure.SignatureFailure")
        fault = self._next_fault()
        if fault == "500":
            return Response(502, b"Bad Gateway")
        if fault and not fault.startswith(("InvalidParameterValue.", "LimitExceeded.Phone")):
            return self._error(fault)
        body = json.loads(request.body)
        phone = body["PhoneNumberSet"][0]
        code = fault or (
            "Ok" if PHONE.match(phone) else "InvalidParameterValue.IncorrectPhoneNumber"
        )
        if code == "Ok":
            self.sent.append((phone, body["TemplateId"], body["TemplateParamSet"]))
        status = {
            "SerialNo": secrets.token_hex(10),
            "PhoneNumber": phone,
            "Fee": 1,
            "Code": code,
            "Message": "send success" if code == "Ok" else code,
        }
        return _json({"Response": {"SendStatusSet": [status], "RequestId": secrets.token_hex(8)}})

    def _error(self, code: str) -> Response:
        error = {"Code": code, "Message": code}
        return _json({"Response": {"Error": error, "RequestId": secrets.token_hex(8)}})


@dataclass
class FakeWechatApi(_Fake):
    """`/cgi-bin/token` and `/cgi-bin/message/subscribe/send`; a token lives until the next
    one is fetched (as a new access_token replaces the old), `tokens_issued` counts fetches."""

    openids: set[str] | None = None  # None: any openid starting with "o" is known
    tokens_issued: int = 0
    _token: str = ""

    async def handle(self, request: Request) -> Response:
        if request.path == "/cgi-bin/token":
            if request.query.get("appid") != APPID or request.query.get("secret") != APP_SECRET:
                return _json({"errcode": 40125, "errmsg": "invalid appsecret"})
            self.tokens_issued += 1
            self._token = secrets.token_hex(16)
            return _json({"access_token": self._token, "expires_in": 7200})
        if request.path != "/cgi-bin/message/subscribe/send":
            return Response(404, b"not found")
        if not self._token or request.query.get("access_token") != self._token:
            return _json(
                {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            )
        fault = self._next_fault()
        if fault == "500":
            return Response(503, b"Service Unavailable")
        if fault:
            return _json({"errcode": int(fault), "errmsg": "fault"})
        body = json.loads(request.body)
        openid = body.get("touser", "")
        known = openid.startswith("o") if self.openids is None else openid in self.openids
        if not known:
            return _json({"errcode": 40003, "errmsg": "invalid openid"})
        self.sent.append((openid, body.get("template_id", ""), body.get("data", {})))
        return _json({"errcode": 0, "errmsg": "ok", "msgid": secrets.randbelow(10**12)})

    def expire_token(self) -> None:
        self._token = secrets.token_hex(16)  # the one callers hold is no longer valid


class FakeSmtp:
    """aiosmtpd on loopback: accepts mail to any address but `refused` (550) ones."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.refused: set[str] = set()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for to in envelope.rcpt_tos:
            self.sent.append((str(envelope.mail_from), to, bytes(envelope.content or b"")))
        return "250 Message accepted for delivery"


def demo_sms_templates() -> dict[str, str]:
    """Template codes the fakes accept: SMS_<sha1 of our key>[:8], stable across runs."""
    return {key: "SMS_" + hashlib.sha1(key.encode()).hexdigest()[:8] for key in TEMPLATES}


class NotifySandbox:
    """Every fake, started together; `senders()` gives clients pointed at them."""

    def __init__(self) -> None:
        self.aliyun = FakeAliyunSms()
        self.tencent = FakeTencentSms()
        self.wechat = FakeWechatApi()
        self.smtp = FakeSmtp()

    async def start(self) -> NotifySandbox:
        for fake in (self.aliyun, self.tencent, self.wechat, self.smtp):
            await fake.start()
        return self

    async def close(self) -> None:
        for fake in (self.aliyun, self.tencent, self.wechat, self.smtp):
            await fake.close()

    async def __aenter__(self) -> NotifySandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def senders(self, sms: str = "aliyun", timeout_s: float = 5.0) -> dict[str, Sender]:
        """By channel ("sms", "email", "wechat"): clients of the fakes."""
        templates = demo_sms_templates()
        if sms == "aliyun":
            sms_client: Sender = aliyun.AliyunSms(
                KEY_ID,
                KEY_SECRET,
                "水电",
                templates,
                endpoint=self.aliyun.base_url,
                timeout_s=timeout_s,
            )
        else:
            sms_client = tencent.TencentSms(
                KEY_ID,
                KEY_SECRET,
                SDK_APP_ID,
                "水电",
                templates,
                endpoint=self.tencent.base_url,
                timeout_s=timeout_s,
            )
        tokens = Tokens(APPID, APP_SECRET, self.wechat.base_url)
        return {
            "sms": sms_client,
            "email": SmtpMail(
                "127.0.0.1",
                self.smtp.port,
                "水电 <noreply@sandbox>",
                tls="none",
                timeout_s=timeout_s,
            ),
            "wechat": WechatSubscribe(APPID, tokens, self.wechat.base_url, timeout_s=timeout_s),
        }
