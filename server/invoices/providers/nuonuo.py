"""Nuonuo open platform (诺诺开放平台, 诺税通 saas) client: `requestBillingNew` to ask for a
数电 invoice (blue or red) and `queryInvoiceResult` for its fate.

Every call is a POST to `…/open/v1/services?senid=&nonce=&timestamp=&appkey=` with the JSON
body and these headers: `method` (the API name), `accessToken` (from `/accessToken`,
client_credentials, valid 24 h, and the platform counts how often it is fetched: kept until
it expires or is refused), `userTax` (the seller's tax id: one app serves every
organisation) and `X-Nuonuo-Sign`:

    X-Nuonuo-Sign = base64(HMAC-SHA1(appSecret,
        "a=services&l=v1&p=open&k={appKey}&i={senid}&n={nonce}&t={timestamp}&f={body}"))

over the body exactly as sent. The answer is `{"code", "describe", "result"}`; `E0000` is
success. Issuing is asynchronous: `requestBillingNew` answers with a serial number, and
`queryInvoiceResult` (at most 50 orders a call) reports `status` 20/21 (开票中, 签章中),
2 (开票完成: numbers and the PDF/OFD links) or 22/24 (开票失败, 签章失败, with
`failCause`).

Error codes: `070101`, `070304`, `070305`, `070307` (the app's credentials are wrong) and
`070306` (token fetch limit) are not retried; `070302` (token refused) fetches a new token
once; `070301` (signature) is a bug of ours, not retried. `E9106` (orderNo used before)
means an earlier submit went through whose answer we lost: the order is polled. `E9999`
(busy), HTTP 5xx and unreachable are temporary; other `E…` business codes (the buyer's tax
id, a line, the blue invoice of a red one) fail the invoice with that code. Codes other
than E0000, E9106, E9500 and the credential ones above are our model of the platform
(its published list is behind the developer login): the fake answers them the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from server.core.money import yuan
from server.invoices.providers.base import (
    BillingOrder,
    IssueResult,
    Outcome,
    PlatformError,
)

BILLING = "nuonuo.OpeMplatform.requestBillingNew"
QUERY = "nuonuo.OpeMplatform.queryInvoiceResult"
SUCCESS = "E0000"
ORDER_NO_USED = "E9106"
NOT_FOUND = "E9500"
BUSY = "E9999"
BAD_SIGNATURE = "070301"
TOKEN_REFUSED = "070302"
CREDENTIALS = {"070101", "070304", "070305", "070306", "070307"}
QUERY_MAX = 50
PENDING_STATUSES = {"20", "21"}  # 开票中, 开票成功签章中
ISSUED_STATUSES = {"2"}  # 开票完成
FAILED_STATUSES = {"22", "24"}  # 开票失败, 开票成功签章失败
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def sign(app_secret: str, app_key: str, senid: str, nonce: str, timestamp: str, body: str) -> str:
    message = f"a=services&l=v1&p=open&k={app_key}&i={senid}&n={nonce}&t={timestamp}&f={body}"
    digest = hmac.new(app_secret.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def is_temporary(code: str) -> bool:
    return code == BUSY or code == TOKEN_REFUSED or code.startswith("http.5")


def order_body(order: BillingOrder) -> dict[str, Any]:
    """`requestBillingNew`'s `order`: amounts in yuan with two places, tax-inclusive lines."""
    detail = []
    for line in order.lines:
        detail.append(
            {
                "goodsName": line.name, "goodsCode": line.tax_code, "withTaxFlag": "1",
                "taxRate": str(line.tax_rate.normalize()), "unit": line.unit,
                "taxIncludedAmount": str(yuan(line.amount_fen)),
                "taxExcludedAmount": str(yuan(line.amount_fen - line.tax_fen)),
                "tax": str(yuan(line.tax_fen)), "invoiceLineProperty": "0",
            }
        )  # fmt: skip
    bank = " ".join(p for p in (order.buyer_bank, order.buyer_bank_account) if p)
    body: dict[str, Any] = {
        "orderNo": order.order_no, "invoiceDate": _local(order.issued_on),
        "salerTaxNum": order.seller_tax_id, "salerTel": order.seller_phone,
        "salerAddress": order.seller_address, "clerk": order.clerk,
        "buyerName": order.buyer_name, "buyerTaxNum": order.buyer_tax_id,
        "buyerTel": order.buyer_phone, "buyerAddress": order.buyer_address,
        "buyerAccount": bank, "buyerPhone": order.mobile, "email": order.email,
        "pushMode": "-1",  # we deliver the links ourselves (server/notify)
        "invoiceType": "2" if order.red else "1",
        "invoiceLine": "bs" if order.special else "pc",  # 数电专票 / 数电普票
        "invoiceDetail": detail,
    }  # fmt: skip
    if order.red:
        body |= {"invoiceCode": order.blue_invoice_code, "invoiceNum": order.blue_invoice_no,
                 "redReason": order.reason or "销货退回"}  # fmt: skip
    return body


def _local(at: datetime) -> str:
    return at.astimezone(_SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def parse_result(item: dict[str, Any]) -> IssueResult:
    """One `queryInvoiceResult` entry."""
    status = str(item.get("status", ""))
    if status in ISSUED_STATUSES:
        outcome = Outcome.ISSUED
    elif status in FAILED_STATUSES:
        outcome = Outcome.FAILED
    else:
        outcome = Outcome.PENDING
    issued_at = None
    stamp = item.get("invoiceTime")
    if outcome is Outcome.ISSUED and stamp:
        issued_at = datetime.fromtimestamp(int(stamp) / 1000, UTC)
    message = str(item.get("failCause") or item.get("statusMsg") or "")
    return IssueResult(
        order_no=str(item.get("orderNo", "")), outcome=outcome,
        serial=str(item.get("serialNo", "")), code=status, message=message[:300],
        invoice_code=str(item.get("invoiceCode") or ""),
        invoice_no=str(item.get("invoiceNo") or ""),
        pdf_url=str(item.get("pdfUrl") or ""), ofd_url=str(item.get("ofdUrl") or ""),
        issued_at=issued_at,
    )  # fmt: skip


class NuonuoClient:
    name = "nuonuo"

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        endpoint: str = "https://sdk.nuonuo.com/open/v1/services",
        token_url: str = "https://open.nuonuo.com/accessToken",
        timeout_s: float = 15.0,
    ) -> None:
        self._key, self._secret = app_key, app_secret
        self._endpoint, self._token_url = endpoint, token_url
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._token = ""
        self._token_until = 0.0
        self.tokens_fetched = 0

    async def submit(self, order: BillingOrder) -> str:
        try:
            result = await self.call(BILLING, order.seller_tax_id, {"order": order_body(order)})
        except PlatformError as exc:
            if exc.code == ORDER_NO_USED:
                return ""  # accepted before; its result is asked by order number
            raise
        return str((result or {}).get("invoiceSerialNum", ""))

    async def results(self, seller_tax_id: str, order_nos: Sequence[str]) -> list[IssueResult]:
        out: list[IssueResult] = []
        for start in range(0, len(order_nos), QUERY_MAX):
            chunk = list(order_nos[start : start + QUERY_MAX])
            try:
                result = await self.call(
                    QUERY, seller_tax_id, {"orderNos": chunk, "isOfferInvoiceDetail": "0"}
                )
            except PlatformError as exc:
                if exc.code == NOT_FOUND:
                    continue
                raise
            out += [parse_result(item) for item in result or []]
        return out

    async def call(self, method: str, user_tax: str, payload: dict[str, Any]) -> Any:
        """One signed call; its `result`, or PlatformError. A refused token is fetched anew
        and the call made once more."""
        try:
            return await self._call(method, user_tax, payload)
        except PlatformError as exc:
            if exc.code != TOKEN_REFUSED:
                raise
            self._token = ""
            return await self._call(method, user_tax, payload)

    async def _call(self, method: str, user_tax: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        senid, nonce = secrets.token_hex(16), str(10_000_000 + secrets.randbelow(90_000_000))
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "X-Nuonuo-Sign": sign(self._secret, self._key, senid, nonce, stamp, body),
            "accessToken": await self._access_token(),
            "userTax": user_tax,
            "method": method,
        }
        params = {"senid": senid, "nonce": nonce, "timestamp": stamp, "appkey": self._key}
        answer = await self._post(self._endpoint, params=params, content=body.encode(),
                                  headers=headers)  # fmt: skip
        code = str(answer.get("code", ""))
        if code == SUCCESS:
            return answer.get("result")
        message = str(answer.get("describe", ""))[:300]
        raise PlatformError(code, message, temporary=is_temporary(code))

    async def _access_token(self) -> str:
        if self._token and time.monotonic() < self._token_until:
            return self._token
        answer = await self._post(
            self._token_url,
            data={"client_id": self._key, "client_secret": self._secret,
                  "grant_type": "client_credentials"},
        )  # fmt: skip
        token = str(answer.get("access_token", ""))
        if not token:
            code = str(answer.get("error", "token")) or "token"
            raise PlatformError(
                f"token.{code}", str(answer.get("error_description", ""))[:300], temporary=False
            )
        self.tokens_fetched += 1
        # Renewed an hour before it ends, so a token never expires between fetch and use.
        life = max(60.0, float(answer.get("expires_in", 86400)) - 3600)
        self._token, self._token_until = token, time.monotonic() + life
        return token

    async def _post(self, url: str, **kw: Any) -> dict[str, Any]:
        try:
            response = await self._http.post(url, **kw)
        except httpx.HTTPError as exc:
            raise PlatformError(
                "nuonuo.unreachable", f"{type(exc).__name__}: {exc}"[:300], temporary=True
            ) from None
        if response.status_code >= 500:
            raise PlatformError(f"http.{response.status_code}", response.text[:200], temporary=True)
        try:
            answer = response.json()
        except ValueError:
            raise PlatformError(
                f"http.{response.status_code}", response.text[:200], temporary=False
            ) from None
        return answer if isinstance(answer, dict) else {}

    async def aclose(self) -> None:
        await self._http.aclose()
