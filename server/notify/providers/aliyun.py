"""Alibaba Cloud SMS `SendSms` (dysmsapi, version 2017-05-25) over its RPC API, signed as the
RPC signature spec says (SignatureVersion 1.0, HMAC-SHA1):

    canonical  = "&".join(pct(k) + "=" + pct(v) for k, v in sorted(params))
    to_sign    = "POST" + "&" + pct("/") + "&" + pct(canonical)
    Signature  = base64(HMAC-SHA1(AccessKeySecret + "&", to_sign))

where pct is RFC 3986 percent-encoding (space as %20, `*` as %2A, `~` kept). The answer is
JSON: `Code` "OK" with a `BizId`, or an error code (`isv.*`, `Throttling.*`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from server.notify.providers.base import Outgoing, SendError, unreachable

VERSION = "2017-05-25"
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
}


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
        try:
            response = await self._http.post(self._endpoint, data=params)
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
            return str(body.get("BizId", ""))
        raise SendError(code, str(body.get("Message", "")), temporary=is_temporary(code))

    async def aclose(self) -> None:
        await self._http.aclose()
