"""Alipay (open platform, RSA2) behind `PaymentProvider`.

Design
------
`alipay-sdk-python` builds and signs every request (its model/request classes and
`DefaultAlipayClient`). The SDK is synchronous and its RSA is pure Python, so signing runs in
`asyncio.to_thread`, off the event loop. Its own HTTP transport cannot reach a gateway on a
non-default port (`WebUtils.get_http_connection` always connects to port 80/443 and fails
with a TypeError when the URL has a port), so we post the signed parameters with httpx; the
gateway URL is configurable, which is how tests and the demo reach the local sandbox.

Responses are verified with the SDK's `verify_with_rsa` (SHA256withRSA, Alipay's public
key): a response `{"<method>_response": {...}, "sign": "..."}` is signed over the exact JSON
text of the `_response` object, which we cut out of the raw answer, byte for byte.
Notifications are verified by `AlipayNotificationVerifier` (alipay_notify.py). The platform
wants exactly `success` as the answer to a notification.

Keys: the app private key must be PKCS#1 (what the SDK's `rsa` library loads).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import rsa
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayDataDataserviceBillDownloadurlQueryModel import (
    AlipayDataDataserviceBillDownloadurlQueryModel,
)
from alipay.aop.api.domain.AlipayTradeCloseModel import AlipayTradeCloseModel
from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import (
    AlipayTradeFastpayRefundQueryModel,
)
from alipay.aop.api.domain.AlipayTradePrecreateModel import AlipayTradePrecreateModel
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel
from alipay.aop.api.domain.AlipayTradeWapPayModel import AlipayTradeWapPayModel
from alipay.aop.api.request.AlipayDataDataserviceBillDownloadurlQueryRequest import (
    AlipayDataDataserviceBillDownloadurlQueryRequest,
)
from alipay.aop.api.request.AlipayTradeCloseRequest import AlipayTradeCloseRequest
from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import (
    AlipayTradeFastpayRefundQueryRequest,
)
from alipay.aop.api.request.AlipayTradePrecreateRequest import AlipayTradePrecreateRequest
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest
from alipay.aop.api.request.AlipayTradeWapPayRequest import AlipayTradeWapPayRequest
from alipay.aop.api.util.SignatureUtils import verify_with_rsa

from server.core.money import parse_yuan, yuan
from server.payments.providers import bills
from server.payments.providers.alipay_notify import TRADE_STATES, AlipayNotificationVerifier
from server.payments.providers.base import (
    AlipayOrder,
    BillRow,
    Channel,
    OrderNotFound,
    OrderState,
    ProviderError,
    RefundState,
    RefundStatus,
    TradeStatus,
    VerifiedNotification,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
SUCCESS_ANSWER = "success"  # the exact body Alipay expects after a notification

_NOT_FOUND = {"ACQ.TRADE_NOT_EXIST"}
_RETRYABLE = {"ACQ.SYSTEM_ERROR", "ISP.UNKNOW-ERROR", "aop.ACQ.SYSTEM_ERROR"}


@dataclass(frozen=True, slots=True)
class AlipayConfig:
    app_id: str
    app_private_key: str  # PKCS#1 PEM (or bare base64 body)
    alipay_public_key: str  # Alipay's public key, not ours
    seller_id: str  # the merchant PID, 2088…
    gateway_url: str = DEFAULT_GATEWAY
    timeout_s: float = 10.0

    @property
    def verifiable(self) -> bool:
        return bool(self.alipay_public_key and self.app_id and self.seller_id)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def extract_signed_response(text: str, method: str) -> tuple[str, dict[str, Any], str]:
    """Cut `"<method>_response": {...}` out of the raw answer: (exact json text, dict, sign)."""
    key = f'"{method.replace(".", "_")}_response"'
    at = text.find(key)
    if at < 0:
        raise ProviderError(f"{method}: unexpected answer {text[:200]!r}", code="MALFORMED")
    start = text.index(":", at + len(key)) + 1
    while text[start] in " \t\r\n":
        start += 1
    try:
        obj, end = json.JSONDecoder().raw_decode(text, start)
        sign = json.loads(text).get("sign", "")
    except ValueError as exc:
        raise ProviderError(f"{method}: answer is not JSON", code="MALFORMED") from exc
    return text[start:end], obj, sign


class AlipayProvider:
    """Alipay counter QR (precreate) and mobile-web (wap) orders, queries, refunds, bills."""

    channel = Channel.ALIPAY

    def __init__(self, config: AlipayConfig, http: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._verifier = AlipayNotificationVerifier(config)
        self._http = http or httpx.AsyncClient(timeout=config.timeout_s)
        self._owns_http = http is None
        sdk_config = AlipayClientConfig()
        sdk_config.server_url = config.gateway_url
        sdk_config.app_id = config.app_id
        sdk_config.app_private_key = config.app_private_key
        sdk_config.alipay_public_key = config.alipay_public_key
        sdk_config.sign_type = "RSA2"
        self._sdk = DefaultAlipayClient(sdk_config)

    async def __aenter__(self) -> AlipayProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @property
    def configured(self) -> bool:
        """Keys enough to call the platform (without them every call is NOT_CONFIGURED)."""
        return bool(self._config.verifiable and self._config.app_private_key)

    def _require_config(self) -> None:
        if not self.configured:
            raise ProviderError("Alipay is not configured", code="NOT_CONFIGURED")

    async def _execute(self, request: Any) -> dict[str, Any]:
        """Sign with the SDK (in a thread), post with httpx, verify Alipay's signature."""
        self._require_config()
        method = request.get_params()["method"]
        body = await asyncio.to_thread(self._sdk.sdk_execute, request)
        try:
            response = await self._http.post(
                self._config.gateway_url,
                content=body.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"{method}: {exc!r}", code="NETWORK", retryable=True) from exc
        if response.status_code != 200:
            raise ProviderError(
                f"{method}: HTTP {response.status_code}", code="HTTP", retryable=True
            )
        signed_text, data, sign = extract_signed_response(response.text, method)
        if sign:
            await asyncio.to_thread(self._verify_response, signed_text, sign, method)
        elif data.get("code") == "10000":
            raise ProviderError(f"{method}: unsigned success answer", code="UNSIGNED")
        if data.get("code") != "10000":
            sub = str(data.get("sub_code", data.get("code", "")))
            if sub in _NOT_FOUND:
                raise OrderNotFound(f"{method}: {data.get('sub_msg', '')}", code=sub)
            raise ProviderError(
                f"{method}: {data.get('sub_msg') or data.get('msg')}",
                code=sub,
                retryable=sub in _RETRYABLE or data.get("code") == "20000",
            )
        return data

    def _verify_response(self, signed_text: str, sign: str, method: str) -> None:
        try:
            ok = verify_with_rsa(self._config.alipay_public_key, signed_text.encode(), sign)
        except (rsa.VerificationError, ValueError, TypeError):
            ok = False
        if not ok:
            raise ProviderError(f"{method}: response signature does not verify", code="SIGN")

    async def create_order(
        self,
        out_trade_no: str,
        amount_fen: int,
        description: str,
        payer_openid: str | None,
        expires_at: datetime,
        notify_url: str,
    ) -> AlipayOrder:
        self._require_config()
        expire = expires_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        model = AlipayTradePrecreateModel()
        model.out_trade_no = out_trade_no
        model.total_amount = str(yuan(amount_fen))
        model.subject = description
        model.time_expire = expire
        pre = AlipayTradePrecreateRequest(biz_model=model)
        pre.notify_url = notify_url
        data = await self._execute(pre)
        wap_model = AlipayTradeWapPayModel()
        wap_model.out_trade_no = out_trade_no
        wap_model.total_amount = str(yuan(amount_fen))
        wap_model.subject = description
        wap_model.product_code = "QUICK_WAP_WAY"
        wap_model.time_expire = expire
        wap = AlipayTradeWapPayRequest(biz_model=wap_model)
        wap.notify_url = notify_url
        wap_url = await asyncio.to_thread(self._sdk.page_execute, wap, "GET")
        return AlipayOrder(out_trade_no=out_trade_no, qr_code=data["qr_code"], wap_url=wap_url)

    async def query_order(self, out_trade_no: str) -> OrderState:
        """Note: Alipay knows a precreated trade only once it was scanned (else OrderNotFound)."""
        model = AlipayTradeQueryModel()
        model.out_trade_no = out_trade_no
        data = await self._execute(AlipayTradeQueryRequest(biz_model=model))
        raw = str(data.get("trade_status", ""))
        status = TRADE_STATES.get(raw, TradeStatus.UNKNOWN)
        paid = status is TradeStatus.SUCCESS
        return OrderState(
            channel=Channel.ALIPAY,
            out_trade_no=out_trade_no,
            status=status,
            amount_fen=parse_yuan(data["total_amount"]) if paid else 0,
            total_fen=parse_yuan(data.get("total_amount", "0")),
            transaction_id=str(data.get("trade_no", "")),
            paid_at=_time(data.get("send_pay_date")) if paid else None,
            raw_status=raw,
        )

    async def close_order(self, out_trade_no: str) -> None:
        model = AlipayTradeCloseModel()
        model.out_trade_no = out_trade_no
        await self._execute(AlipayTradeCloseRequest(biz_model=model))

    async def refund(
        self,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> RefundState:
        model = AlipayTradeRefundModel()
        model.out_trade_no = out_trade_no
        model.out_request_no = out_refund_no
        model.refund_amount = str(yuan(refund_fen))
        model.refund_reason = reason
        data = await self._execute(AlipayTradeRefundRequest(biz_model=model))
        # fund_change=Y is success; N or absent means "ask again" (Alipay's own rule).
        done = data.get("fund_change") == "Y"
        return RefundState(
            channel=Channel.ALIPAY,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            refund_id=str(data.get("trade_no", "")),
            refund_fen=refund_fen,
            status=RefundStatus.SUCCESS if done else RefundStatus.PROCESSING,
            raw_status=str(data.get("fund_change", "")),
        )

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundState:
        model = AlipayTradeFastpayRefundQueryModel()
        model.out_trade_no = out_trade_no
        model.out_request_no = out_refund_no
        data = await self._execute(AlipayTradeFastpayRefundQueryRequest(biz_model=model))
        if not data.get("refund_amount"):
            raise OrderNotFound(f"refund {out_refund_no} unknown", code="REFUND_NOT_EXIST")
        raw = str(data.get("refund_status", ""))
        return RefundState(
            channel=Channel.ALIPAY,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            refund_id=str(data.get("trade_no", "")),
            refund_fen=parse_yuan(data["refund_amount"]),
            status=RefundStatus.SUCCESS
            if raw in ("", "REFUND_SUCCESS")
            else RefundStatus.PROCESSING,
            raw_status=raw,
        )

    def verify_notification(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> VerifiedNotification:
        return self._verifier.verify(headers, raw_body, now)

    async def download_bill(self, bill_date: date) -> list[BillRow]:
        model = AlipayDataDataserviceBillDownloadurlQueryModel()
        model.bill_type = "trade"
        model.bill_date = bill_date.isoformat()
        data = await self._execute(
            AlipayDataDataserviceBillDownloadurlQueryRequest(biz_model=model)
        )
        try:
            response = await self._http.get(data["bill_download_url"])
        except httpx.HTTPError as exc:
            raise ProviderError(f"bill download: {exc!r}", code="NETWORK", retryable=True) from exc
        if response.status_code != 200:
            raise ProviderError(f"bill download: HTTP {response.status_code}", retryable=True)
        return bills.parse_alipay_bill(response.content)
