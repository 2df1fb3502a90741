"""Local fakes of the messaging platforms, for tests and the embedded demo: Alibaba Cloud SMS
(with QuerySendDetails receipts) and voice, Tencent Cloud SMS (with PullSmsSendStatus), WeChat
(the mini-program's subscribe messages, the official account's template messages) on real
loopback HTTP servers (server.core.httpd), SMTP on
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
from server.notify.providers.wechat import Tokens, WechatSubscribe, WechatTemplate
from server.notify.templates import TEMPLATES

PHONE = re.compile(r"^(\+86)?1[3-9]\d{9}$")
KEY_ID, KEY_SECRET = "sandbox-key", "sandbox-secret"
APPID, APP_SECRET = "wx-notify-sandbox", "sandbox-app-secret"
OFFICIAL_APPID, OFFICIAL_SECRET = "wx-mp-sandbox", "sandbox-mp-secret"
VOICE_SHOW_NUMBER = "4001112222"
SDK_APP_ID = "1400000000"
_ALIYUN_MSG = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.BUSINESS_LIMIT_CONTROL": "业务限流",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "isv.SMS_TEMPLATE_ILLEGAL": "模板不合法",
    "isp.SYSTEM_ERROR": "系统错误",
    "isv.TTS_TEMPLATE_ILLEGAL": "TTS模板不合法",
    "isv.DISPLAY_NUMBER_ILLEGAL": "号显不合法",
    "isv.OUT_OF_SERVICE": "业务停机",
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
    """dysmsapi: SendSms and QuerySendDetails. A sent message is reported delivered unless its
    phone is in `undelivered` (SendStatus 2 with that ErrCode) or `pending` (SendStatus 1)."""

    undelivered: dict[str, str] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    reports: dict[str, tuple[str, str]] = field(default_factory=dict)  # BizId → (phone, day)
    queries: int = 0

    async def handle(self, request: Request) -> Response:
        params = dict(parse_qsl(request.body.decode()))
        refused = _aliyun_refused(params, "SendSms", "QuerySendDetails")
        if refused is not None:
            return refused
        fault = self._next_fault()
        if fault == "500":
            return Response(500, b"Internal Server Error")
        if fault:
            return _aliyun_error(fault)
        if params["Action"] == "QuerySendDetails":
            return self._query(params)
        if not PHONE.match(params.get("PhoneNumbers", "")):
            return _aliyun_error("isv.MOBILE_NUMBER_ILLEGAL")
        self.sent.append(
            (params["PhoneNumbers"], params["TemplateCode"], json.loads(params["TemplateParam"]))
        )
        biz_id = f"{secrets.randbelow(10**18)}^0"
        self.reports[biz_id] = (params["PhoneNumbers"], params["Timestamp"])
        return _json(
            {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": secrets.token_hex(8)}
        )

    def _query(self, params: dict[str, str]) -> Response:
        self.queries += 1
        phone = params.get("PhoneNumber", "")
        known = self.reports.get(params.get("BizId", ""))
        details = []
        if known is not None and known[0] == phone:
            status, code = 3, "DELIVERED"
            if phone in self.pending:
                status, code = 1, ""
            elif phone in self.undelivered:
                status, code = 2, self.undelivered[phone]
            details.append(
                {"PhoneNum": phone, "SendStatus": status, "ErrCode": code,
                 "SendDate": known[1], "ReceiveDate": known[1] if status == 3 else ""}
            )  # fmt: skip
        return _json(
            {"Code": "OK", "Message": "OK", "TotalCount": len(details),
             "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
             "RequestId": secrets.token_hex(8)}
        )  # fmt: skip


@dataclass
class FakeAliyunVoice(_Fake):
    """dyvmsapi SingleCallByTts: checks the signature, the shown number, the TTS template
    (TTS_…) and the number called; `calls` is what it would have called."""

    async def handle(self, request: Request) -> Response:
        params = dict(parse_qsl(request.body.decode()))
        refused = _aliyun_refused(params, "SingleCallByTts")
        if refused is not None:
            return refused
        fault = self._next_fault()
        if fault == "500":
            return Response(500, b"Internal Server Error")
        if fault:
            return _aliyun_error(fault)
        if params.get("CalledShowNumber") != VOICE_SHOW_NUMBER:
            return _aliyun_error("isv.DISPLAY_NUMBER_ILLEGAL")
        if not params.get("TtsCode", "").startswith("TTS_"):
            return _aliyun_error("isv.TTS_TEMPLATE_ILLEGAL")
        if not PHONE.match(params.get("CalledNumber", "")):
            return _aliyun_error("isv.MOBILE_NUMBER_ILLEGAL")
        tts = json.loads(params.get("TtsParam") or "{}")
        self.sent.append((params["CalledNumber"], params["TtsCode"], tts))
        return _json(
            {"Code": "OK", "Message": "OK", "CallId": f"{secrets.randbelow(10**12)}^1",
             "RequestId": secrets.token_hex(8)}
        )  # fmt: skip


def _aliyun_refused(params: dict[str, str], *actions: str) -> Response | None:
    """What Alibaba Cloud checks before anything: the key, the signature, action and version."""
    given = params.pop("Signature", "")
    if params.get("AccessKeyId") != KEY_ID:
        return _aliyun_error("InvalidAccessKeyId.NotFound", 404)
    if given != aliyun.signature(KEY_SECRET, params):
        return _aliyun_error("SignatureDoesNotMatch", 400)
    if params.get("Action") not in actions or params.get("Version") != aliyun.VERSION:
        return _aliyun_error("InvalidAction.NotFound", 404)
    return None


def _aliyun_error(code: str, status: int = 200) -> Response:
    return _json(
        {"Code": code, "Message": _ALIYUN_MSG.get(code, code), "RequestId": secrets.token_hex(8)},
        status,
    )


@dataclass
class FakeTencentSms(_Fake):
    secret_id: str = KEY_ID
    secret_key: str = KEY_SECRET
    undelivered: dict[str, str] = field(default_factory=dict)  # phone → report description
    _unpulled: list[tuple[str, str]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        stamp = int(request.headers.get("x-tc-timestamp", "0"))
        host = request.headers.get("host", "")
        want = tencent.authorization(self.secret_id, self.secret_key, host, request.body, stamp)
        if request.headers.get("authorization") != want:
            return self._error("AuthFailure.SignatureFailure")
        if request.headers.get("x-tc-action") == "PullSmsSendStatus":
            return self._pull(json.loads(request.body))
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
        serial = secrets.token_hex(10)
        if code == "Ok":
            self.sent.append((phone, body["TemplateId"], body["TemplateParamSet"]))
            self._unpulled.append((serial, phone))
        status = {
            "SerialNo": serial,
            "PhoneNumber": phone,
            "Fee": 1,
            "Code": code,
            "Message": "send success" if code == "Ok" else code,
        }
        return _json({"Response": {"SendStatusSet": [status], "RequestId": secrets.token_hex(8)}})

    def _pull(self, body: dict[str, Any]) -> Response:
        """PullSmsSendStatus: each report once, at most `Limit`; `undelivered` phones FAIL."""
        limit = int(body.get("Limit", 100))
        taken, self._unpulled = self._unpulled[:limit], self._unpulled[limit:]
        reports = [
            {"SerialNo": serial, "PhoneNumber": phone, "CountryCode": "86",
             "SubscriberNumber": phone[-11:], "UserReceiveTime": "2026-12-05 10:00:00",
             "ReportStatus": "FAIL" if phone in self.undelivered else "SUCCESS",
             "Description": self.undelivered.get(phone, "DELIVRD"), "SessionContext": ""}
            for serial, phone in taken
        ]  # fmt: skip
        return _json(
            {"Response": {"PullSmsSendStatusSet": reports, "RequestId": secrets.token_hex(8)}}
        )

    def _error(self, code: str) -> Response:
        error = {"Code": code, "Message": code}
        return _json({"Response": {"Error": error, "RequestId": secrets.token_hex(8)}})


@dataclass
class FakeWechatApi(_Fake):
    """`/cgi-bin/token`, `/cgi-bin/message/subscribe/send` (mini-program) and
    `/cgi-bin/message/template/send` (official account); a token lives until the next one is
    fetched (as a new access_token replaces the old), `tokens_issued` counts fetches."""

    appid: str = APPID
    secret: str = APP_SECRET
    openids: set[str] | None = None  # None: any openid starting with "o" is known
    tokens_issued: int = 0
    _token: str = ""

    async def handle(self, request: Request) -> Response:
        if request.path == "/cgi-bin/token":
            if (
                request.query.get("appid") != self.appid
                or request.query.get("secret") != self.secret
            ):
                return _json({"errcode": 40125, "errmsg": "invalid appsecret"})
            self.tokens_issued += 1
            self._token = secrets.token_hex(16)
            return _json({"access_token": self._token, "expires_in": 7200})
        sends = ("/cgi-bin/message/subscribe/send", "/cgi-bin/message/template/send")
        if request.path not in sends:
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
        if not body.get("template_id"):
            return _json({"errcode": 40037, "errmsg": "invalid template_id"})
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


def demo_voice_templates() -> dict[str, str]:
    """TTS template codes the voice fake accepts, for the templates that call."""
    return {
        key: "TTS_" + hashlib.sha1(key.encode()).hexdigest()[:8]
        for key, t in TEMPLATES.items()
        if t.voice
    }


def demo_official_templates() -> dict[str, str]:
    """Official-account template ids of the demo (any non-empty id passes the fake)."""
    return {key: "mp-" + hashlib.sha1(key.encode()).hexdigest()[:12] for key in TEMPLATES}


class NotifySandbox:
    """Every fake, started together; `senders()` gives clients pointed at them."""

    def __init__(self) -> None:
        self.aliyun = FakeAliyunSms()
        self.tencent = FakeTencentSms()
        self.wechat = FakeWechatApi()
        self.official = FakeWechatApi(appid=OFFICIAL_APPID, secret=OFFICIAL_SECRET)
        self.voice = FakeAliyunVoice()
        self.smtp = FakeSmtp()

    def _fakes(self) -> tuple[Any, ...]:
        return (self.aliyun, self.tencent, self.wechat, self.official, self.voice, self.smtp)

    async def start(self) -> NotifySandbox:
        for fake in self._fakes():
            await fake.start()
        return self

    async def close(self) -> None:
        for fake in self._fakes():
            await fake.close()

    async def __aenter__(self) -> NotifySandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def senders(self, sms: str = "aliyun", timeout_s: float = 5.0) -> dict[str, Sender]:
        """By channel ("sms", "email", "wechat", "voice", "official"): clients of the fakes."""
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
            "voice": aliyun.AliyunVoice(
                KEY_ID, KEY_SECRET, VOICE_SHOW_NUMBER, demo_voice_templates(),
                endpoint=self.voice.base_url, timeout_s=timeout_s,
            ),
            "official": WechatTemplate(
                OFFICIAL_APPID,
                Tokens(OFFICIAL_APPID, OFFICIAL_SECRET, self.official.base_url),
                self.official.base_url,
                demo_official_templates(),
                timeout_s=timeout_s,
            ),
        }  # fmt: skip
