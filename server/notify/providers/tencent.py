"""Tencent Cloud SMS `SendSms` (version 2021-01-11), signed with TC3-HMAC-SHA256:

    canonical  = "POST\\n/\\n\\ncontent-type:…\\nhost:…\\n\\ncontent-type;host\\n" + sha256(body)
    to_sign    = TC3-HMAC-SHA256 \\n timestamp \\n date/sms/tc3_request \\n sha256(canonical)
    key        = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")
    Authorization: TC3-HMAC-SHA256 Credential=SecretId/date/sms/tc3_request,
                   SignedHeaders=content-type;host, Signature=hex(HMAC(key, to_sign))

A request-level failure is `Response.Error.Code`; each number's own outcome is in
`Response.SendStatusSet[i].Code` ("Ok", or e.g. InvalidParameterValue.IncorrectPhoneNumber).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from server.notify.providers.base import Outgoing, SendError, unreachable

VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
_TEMPORARY_PREFIXES = ("LimitExceeded.", "InternalError", "RequestLimitExceeded", "http.")


def is_temporary(code: str) -> bool:
    """Frequency and daily limits and their side's errors are retried; parameters, templates,
    signatures, authorisation and an empty SMS package are not."""
    return code.startswith(_TEMPORARY_PREFIXES)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def authorization(secret_id: str, secret_key: str, host: str, body: bytes, timestamp: int) -> str:
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{CONTENT_TYPE}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{SERVICE}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), SERVICE), "tc3_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={sig}"
    )


class TencentSms:
    name = "tencent"

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        templates: Mapping[str, str],
        *,
        region: str = "ap-guangzhou",
        endpoint: str = "https://sms.tencentcloudapi.com/",
        timeout_s: float = 10.0,
    ) -> None:
        self._id, self._key = secret_id, secret_key
        self._app, self._sign, self._region = sdk_app_id, sign_name, region
        self._templates = dict(templates)
        self._endpoint = endpoint
        self._host = urlsplit(endpoint).netloc
        self._http = httpx.AsyncClient(timeout=timeout_s)

    def _body(self, message: Outgoing) -> bytes:
        template_id = self._templates.get(message.template)
        if template_id is None:
            raise SendError(
                "local.no_template", f"未配置腾讯云短信模板：{message.template}", temporary=False
            )
        phone = (
            message.recipient if message.recipient.startswith("+") else f"+86{message.recipient}"
        )
        body = {
            "PhoneNumberSet": [phone],
            "SmsSdkAppId": self._app,
            "SignName": self._sign,
            "TemplateId": template_id,
            "TemplateParamSet": list(message.params.values()),
        }
        return json.dumps(body, ensure_ascii=False).encode()

    async def _post(self, action: str, body: bytes) -> dict:
        """A signed call; its `Response`, or SendError for a request-level error."""
        stamp = int(datetime.now(UTC).timestamp())
        headers = {
            "Authorization": authorization(self._id, self._key, self._host, body, stamp),
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": action,
            "X-TC-Timestamp": str(stamp),
            "X-TC-Version": VERSION,
            "X-TC-Region": self._region,
        }
        try:
            response = await self._http.post(self._endpoint, content=body, headers=headers)
            answer = response.json().get("Response", {})
        except httpx.HTTPError as exc:
            raise unreachable("tencent", exc) from None
        except ValueError:
            raise SendError(
                f"http.{response.status_code}", response.text[:200], temporary=True
            ) from None
        error = answer.get("Error")
        if error:
            code = str(error.get("Code", ""))
            raise SendError(code, str(error.get("Message", "")), temporary=is_temporary(code))
        return answer

    async def send(self, message: Outgoing) -> str:
        answer = await self._post("SendSms", self._body(message))
        status = (answer.get("SendStatusSet") or [{}])[0]
        code = str(status.get("Code", "http.empty"))
        if code == "Ok":
            return str(status.get("SerialNo", ""))
        raise SendError(code, str(status.get("Message", "")), temporary=is_temporary(code))

    async def pull_receipts(self, limit: int = 100) -> list[tuple[str, bool, str]]:
        """`PullSmsSendStatus`: the reports not pulled before, as (SerialNo, delivered, code);
        each report is handed out once by Tencent Cloud."""
        body = json.dumps({"SmsSdkAppId": self._app, "Limit": limit}).encode()
        answer = await self._post("PullSmsSendStatus", body)
        return [
            (
                str(r.get("SerialNo", "")),
                r.get("ReportStatus") == "SUCCESS",
                str(r.get("Description") or r.get("ReportStatus") or ""),
            )
            for r in answer.get("PullSmsSendStatusSet") or []
        ]

    async def aclose(self) -> None:
        await self._http.aclose()
