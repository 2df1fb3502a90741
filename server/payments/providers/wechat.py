"""WeChat Pay API v3 (JSAPI / mini-program) behind `PaymentProvider`.

Design
------
Outgoing calls go through `wechatpayv3.AsyncWeChatPay` in platform-public-key mode: the
platform key and its id are configured, so nothing is fetched at start-up and every response
is verified against that key by the SDK. The SDK has no base-URL option; we set its
`_core._gate_way` once after construction so tests and the demo reach the local sandbox.

Incoming notifications are verified by `WechatNotificationVerifier` (wechat_notify.py), on
the raw bytes and without the SDK.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from wechatpayv3.async_ import AsyncWeChatPay
from wechatpayv3.async_.type import WeChatPayType  # the async package has its own enum

from server.payments.providers import bills
from server.payments.providers.base import (
    BillRow,
    Channel,
    OrderNotFound,
    OrderState,
    ProviderError,
    RefundState,
    RefundStatus,
    TradeStatus,
    VerifiedNotification,
    WechatJsapiOrder,
    WechatPayParams,
)
from server.payments.providers.wechat_notify import TRADE_STATES, WechatNotificationVerifier

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"


@dataclass(frozen=True, slots=True)
class WechatPayConfig:
    """Merchant settings. Secrets come from the environment, never from the repository."""

    appid: str
    mchid: str
    merchant_serial_no: str
    merchant_private_key: str  # PEM
    apiv3_key: str  # 32 ASCII characters
    platform_public_key: str  # PEM, "微信支付公钥"
    platform_public_key_id: str  # "PUB_KEY_ID_…"
    refund_notify_url: str = ""
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 10.0
    timestamp_window_s: int = 300

    @property
    def verifiable(self) -> bool:
        return bool(self.platform_public_key and self.platform_public_key_id and self.apiv3_key)


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class WechatPayProvider:
    """WeChat Pay v3 JSAPI. Use as `async with` or call `aclose()` when done."""

    channel = Channel.WECHAT

    def __init__(self, config: WechatPayConfig) -> None:
        self._config = config
        self._verifier = WechatNotificationVerifier(config)
        self._client: AsyncWeChatPay | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """Keys enough to call the platform (without them every call is NOT_CONFIGURED)."""
        return bool(self._config.verifiable and self._config.merchant_private_key)

    async def __aenter__(self) -> WechatPayProvider:
        await self._sdk()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def _sdk(self) -> AsyncWeChatPay:
        if self._client is not None:
            return self._client
        cfg = self._config
        if not (cfg.verifiable and cfg.merchant_private_key):
            # Without the platform key the SDK would fall back to downloading certificates.
            raise ProviderError("WeChat Pay is not configured", code="NOT_CONFIGURED")
        async with self._lock:
            if self._client is None:
                client = AsyncWeChatPay(
                    wechatpay_type=WeChatPayType.MINIPROG,
                    mchid=cfg.mchid,
                    private_key=cfg.merchant_private_key,
                    cert_serial_no=cfg.merchant_serial_no,
                    appid=cfg.appid,
                    apiv3_key=cfg.apiv3_key,
                    notify_url=cfg.refund_notify_url or None,
                    timeout=cfg.timeout_s,
                    public_key=cfg.platform_public_key,
                    public_key_id=cfg.platform_public_key_id,
                )
                # No public option for the gateway; see the module docstring.
                client._core._gate_way = cfg.base_url.rstrip("/")
                await client.__aenter__()
                self._client = client
        return self._client

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        client = await self._sdk()
        try:
            return await getattr(client, name)(*args, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{name}: {exc!r}", code="NETWORK", retryable=True) from exc
        except Exception as exc:  # the SDK raises bare Exception (e.g. bad response signature)
            raise ProviderError(f"{name}: {exc}", code="SDK") from exc

    @staticmethod
    def _check(code: int, body: Any, what: str) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if isinstance(body, str) and body:
            try:
                data = json.loads(body)
            except ValueError:
                data = {}
        if 200 <= code < 300:
            return data
        err = str(data.get("code", code))
        if code == 404 or err in ("ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"):
            raise OrderNotFound(f"{what}: {data.get('message', '')}", code=err)
        retryable = code >= 500 or code == 429 or err in ("SYSTEM_ERROR", "FREQUENCY_LIMITED")
        raise ProviderError(f"{what}: {data.get('message', body)}", code=err, retryable=retryable)

    async def create_order(
        self,
        out_trade_no: str,
        amount_fen: int,
        description: str,
        payer_openid: str | None,
        expires_at: datetime,
        notify_url: str,
    ) -> WechatJsapiOrder:
        if not payer_openid:
            raise ProviderError("JSAPI orders need the payer's openid", code="PARAM_ERROR")
        code, body = await self._call(
            "pay",
            description=description,
            out_trade_no=out_trade_no,
            amount={"total": amount_fen, "currency": "CNY"},
            payer={"openid": payer_openid},
            time_expire=expires_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            notify_url=notify_url,
            pay_type=WeChatPayType.JSAPI,
        )
        prepay_id = self._check(code, body, "jsapi order").get("prepay_id")
        if not prepay_id:
            raise ProviderError("jsapi order: no prepay_id in the answer", code="SDK")
        return WechatJsapiOrder(
            out_trade_no=out_trade_no,
            prepay_id=prepay_id,
            pay_params=self._pay_params(prepay_id, await self._sdk()),
        )

    def _pay_params(self, prepay_id: str, client: AsyncWeChatPay) -> WechatPayParams:
        """`wx.requestPayment` arguments; paySign is SHA256withRSA over
        "appId\\ntimeStamp\\nnonceStr\\npackage\\n" with the merchant key (SDK `sign`)."""
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        pay_sign = client.sign([self._config.appid, timestamp, nonce, package])
        return WechatPayParams(self._config.appid, timestamp, nonce, package, "RSA", pay_sign)

    async def query_order(self, out_trade_no: str) -> OrderState:
        code, body = await self._call("query", out_trade_no=out_trade_no)
        data = self._check(code, body, "query order")
        raw_state = str(data.get("trade_state", ""))
        amount = data.get("amount") or {}
        status = TRADE_STATES.get(raw_state, TradeStatus.UNKNOWN)
        paid = status in (TradeStatus.SUCCESS, TradeStatus.REFUND)
        return OrderState(
            channel=Channel.WECHAT,
            out_trade_no=out_trade_no,
            status=status,
            amount_fen=int(amount.get("payer_total", amount.get("total", 0))) if paid else 0,
            total_fen=int(amount.get("total", 0)),
            transaction_id=str(data.get("transaction_id", "")),
            paid_at=_parse_time(data.get("success_time")) if paid else None,
            raw_status=raw_state,
        )

    async def close_order(self, out_trade_no: str) -> None:
        code, body = await self._call("close", out_trade_no=out_trade_no)
        self._check(code, body, "close order")

    async def refund(
        self,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> RefundState:
        code, body = await self._call(
            "refund",
            out_refund_no=out_refund_no,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            out_trade_no=out_trade_no,
            reason=reason or None,
            notify_url=self._config.refund_notify_url or None,
        )
        return self._refund_state(out_trade_no, self._check(code, body, "refund"))

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundState:
        code, body = await self._call("query_refund", out_refund_no=out_refund_no)
        return self._refund_state(out_trade_no, self._check(code, body, "query refund"))

    @staticmethod
    def _refund_state(out_trade_no: str, data: dict[str, Any]) -> RefundState:
        raw_status = str(data.get("status", ""))
        try:
            status = RefundStatus(raw_status)
        except ValueError:
            status = RefundStatus.PROCESSING
        return RefundState(
            channel=Channel.WECHAT,
            out_trade_no=str(data.get("out_trade_no", out_trade_no)),
            out_refund_no=str(data.get("out_refund_no", "")),
            refund_id=str(data.get("refund_id", "")),
            refund_fen=int((data.get("amount") or {}).get("refund", 0)),
            status=status,
            raw_status=raw_status,
        )

    def verify_notification(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> VerifiedNotification:
        return self._verifier.verify(headers, raw_body, now)

    async def download_bill(self, bill_date: date) -> list[BillRow]:
        code, body = await self._call("trade_bill", bill_date=bill_date.isoformat())
        meta = self._check(code, body, "trade bill")
        url = meta.get("download_url")
        if not url:
            raise ProviderError("trade bill: no download_url", code="SDK")
        code, content = await self._call("download_bill", url=url)
        if not 200 <= code < 300 or not isinstance(content, bytes):
            raise ProviderError(f"bill download: HTTP {code}", code=str(code), retryable=True)
        return bills.parse_wechat_trade_bill(
            content,
            hash_type=str(meta.get("hash_type", "")),
            hash_value=str(meta.get("hash_value", "")),
        )
