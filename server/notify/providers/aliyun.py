"""Alibaba Cloud SMS `SendSms` and `QuerySendDetails` (dysmsapi, version 2017-05-25) and voice
notification `SingleCallByTts` (dyvmsapi, version 2017-05-25) over their RPC API, signed as
the RPC signature spec says (SignatureVersion 1.0, HMAC-SHA1):

    canonical  = "&".join(pct(k) + "=" + pct(v) for k, v in sorted(params))
    to_sign    = "POST" + "&" + pct("/") + "&" + pct(canonical)
    Signature  = base64(HMAC-SHA1(AccessKeySecret + "&", to_sign))

where pct is RFC 3986 percent-encoding (space as %20, `*` as %2A, `~` kept). The answer is
JSON: `Code` "OK" with a `BizId` (SMS) or `CallId` (voice), or an error code (`isv.*`,
`Throttling.*`). A sent SMS's fate comes from QuerySendDetails (phone, BizId, day):
`SendStatus` 1 waiting, 2 failed (with `ErrCode`), 3 delivered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from server.notify.providers.base import Outgoing, SendError, unreachable

VERSION = "2017-05-25"
_SHANGHAI = ZoneInfo("Asia/Shanghai")
# Codes retrying cannot fix: the number, the template, the signature, the account's money.
PERMANENT = {
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.INVALID_PARAMETERS",
    "isv.AMOUNT_NOT_ENOUGH",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.DAY_LIMIT_CONTROL",
    "InvalidAccessKeyId.NotFound",
    "SignatureDoesNotMatch",
    "isv.ACCOUNT_ABNORMAL",
    "isv.ACCOUNT_NOT_EXISTS",
    # voice (语音服务错误码)
    "isv.TTS_TEMPLATE_ILLEGAL",
    "isv.DISPLAY_NUMBER_ILLEGAL",
    "isv.OUT_OF_SERVICE",
    "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.PRODUCT_UNSUBSCRIBE",
    "isv.PARAM_NOT_SUPPORT_URL",
    "isp.RAM_PERMISSION_DENY",
}
VOICE_VERSION = "2017-05-25"


def pct(text: str) -> str:
    return quote(text, safe="~")


def signature(secret: str, params: Mapping[str, str], method: str = "POST") -> str:
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{pct('/')}&{pct(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def is_temporary(code: str) -> bool:
    """Rate limits (`isv.BUSINESS_LIMIT_CONTROL`, `Throttling.*`), `isp.*` (their side) and
    anything unknown are retried; the known permanent codes are not."""
    return code not in PERMANENT


class AliyunSms:
    name = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        templates: Mapping[str, str],
        *,
        endpoint: str = "https://dysmsapi.aliyuncs.com/",
        timeout_s: float = 10.0,
    ) -> None:
        self._key_id = access_key_id
        self._secret = access_key_secret
        self._sign = sign_name
        self._templates = dict(templates)
        self._endpoint = endpoint
        self._http = httpx.AsyncClient(timeout=timeout_s)

    def request_params(self, message: Outgoing, *, now: datetime, nonce: str) -> dict[str, str]:
        code = self._templates.get(message.template)
        if code is None:
            raise SendError(
                "local.no_template", f"未配置阿里云短信模板：{message.template}", temporary=False
            )
        params = {
            "AccessKeyId": self._key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": message.recipient,
            "RegionId": "cn-hangzhou",
            "SignName": self._sign,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "TemplateCode": code,
            "TemplateParam": json.dumps(dict(message.params), ensure_ascii=False),
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
        }
        params["Signature"] = signature(self._secret, params)
        return params

    async def send(self, message: Outgoing) -> str:
        params = self.request_params(message, now=datetime.now(UTC), nonce=secrets.token_hex(16))
        body = await _call(self._http, self._endpoint, params)
        return str(body.get("BizId", ""))

    async def receipt(self, phone: str, biz_id: str, sent_at: datetime) -> Receipt | None:
        """The provider's report on one sent message; None while it waits for one."""
        params = {
            "AccessKeyId": self._key_id, "Action": "QuerySendDetails", "BizId": biz_id,
            "CurrentPage": "1", "Format": "JSON", "PageSize": "10", "PhoneNumber": phone,
            "RegionId": "cn-hangzhou", "SendDate": sent_at.astimezone(_SHANGHAI).strftime("%Y%m%d"),
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": secrets.token_hex(16),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": VERSION,
        }  # fmt: skip
        params["Signature"] = signature(self._secret, params)
        body = await _call(self._http, self._endpoint, params)
        details = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        for d in details:
            status = int(d.get("SendStatus", 1))
            if status == 3:
                return Receipt(True, str(d.get("ErrCode", "DELIVERED")))
            if status == 2:
                return Receipt(False, str(d.get("ErrCode", "")))
        return None

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the provider reports of a sent message: delivered, or failed with its code."""

    delivered: bool
    code: str


async def _call(http: httpx.AsyncClient, endpoint: str, params: Mapping[str, str]) -> dict:
    """POST a signed RPC request; the JSON answer when `Code` is OK, else SendError."""
    try:
        response = await http.post(endpoint, data=params)
    except httpx.HTTPError as exc:
        raise unreachable("aliyun", exc) from None
    try:
        body = response.json()
    except ValueError:
        raise SendError(
            f"http.{response.status_code}", response.text[:200], temporary=True
        ) from None
    code = str(body.get("Code", f"http.{response.status_code}"))
    if code == "OK":
        return body
    raise SendError(code, str(body.get("Message", "")), temporary=is_temporary(code))


class AliyunVoice:
    """语音通知: `SingleCallByTts` with an approved TTS template per key; every template takes
    one variable, `text`, the message's rendered text (so an organisation's override is what
    is spoken). Its answer's `CallId` is the provider id."""

    name = "aliyun-voice"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        called_show_number: str,
        templates: Mapping[str, str],
        *,
        endpoint: str = "https://dyvmsapi.aliyuncs.com/",
        play_times: int = 2,
        timeout_s: float = 10.0,
    ) -> None:
        self._key_id, self._secret = access_key_id, access_key_secret
        self._show, self._templates = called_show_number, dict(templates)
        self._endpoint, self._play_times = endpoint, play_times
        self._http = httpx.AsyncClient(timeout=timeout_s)

    def request_params(self, message: Outgoing, *, now: datetime, nonce: str) -> dict[str, str]:
        code = self._templates.get(message.template)
        if code is None:
            raise SendError(
                "local.no_template", f"未配置阿里云语音模板：{message.template}", temporary=False
            )
        params = {
            "AccessKeyId": self._key_id, "Action": "SingleCallByTts",
            "CalledNumber": message.recipient, "CalledShowNumber": self._show, "Format": "JSON",
            "OutId": message.out_id, "PlayTimes": str(self._play_times), "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce, "SignatureVersion": "1.0",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "TtsCode": code,
            "TtsParam": json.dumps({"text": message.text}, ensure_ascii=False),
            "Version": VOICE_VERSION,
        }  # fmt: skip
        params["Signature"] = signature(self._secret, params)
        return params

    async def send(self, message: Outgoing) -> str:
        params = self.request_params(message, now=datetime.now(UTC), nonce=secrets.token_hex(16))
        body = await _call(self._http, self._endpoint, params)
        return str(body.get("CallId", ""))

    async def aclose(self) -> None:
        await self._http.aclose()
