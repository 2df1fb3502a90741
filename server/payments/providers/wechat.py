"""WeChat Pay API v3 (JSAPI / mini-program) behind `PaymentProvider`.

Design
------
Outgoing calls go through `wechatpayv3.AsyncWeChatPay` in platform-public-key mode: the
platform key and its id are configured, so nothing is fetched at start-up and every response
is verified against that key by the SDK. The SDK has no base-URL option; we set its
`_core._gate_way` once after construction so tests and the demo reach the local sandbox.

Incoming notifications are verified here with `cryptography`, not with the SDK's
`callback()`: the SDK verifies a decoded `str` rather than the raw bytes, silently tries to
download certificates for an unknown serial, has no timestamp window and collapses every
failure into `None`. We need the raw bytes, a fixed key id, a 5-minute window, the
`WECHATPAY/SIGNTEST/` probes refused and a typed reason for each rejection.

Order of checks (cheap first, fail closed):
  configured? → headers present → SIGNTEST probe → serial is our key id → timestamp within
  the window → RSA signature over "timestamp\\nnonce\\nbody\\n" → AES-GCM decrypt → event type
  → mchid (and appid for payments) are ours → amounts are integer fen.
A correctly signed notification whose number or amount no platform could send raises
`OutOfRange` (the inbox quarantines it and answers "handled").
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
    NotificationKind,
    NotificationRejected,
    OrderNotFound,
    OrderState,
    ProviderError,
    RefundState,
    RefundStatus,
    RejectReason,
    TradeStatus,
    VerifiedNotification,
    WechatJsapiOrder,
    WechatPayParams,
    check_fen,
    check_number,
)
from server.payments.providers.crypto import (
    CryptoFailure,
    aes_gcm_decrypt,
    load_public_key,
    verify_sha256_rsa,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
OUT_TRADE_NO_MAX = 32  # WeChat's out_trade_no is 6-32 characters

_TRADE_STATES = {
    "SUCCESS": TradeStatus.SUCCESS,
    "NOTPAY": TradeStatus.NOTPAY,
    "CLOSED": TradeStatus.CLOSED,
    "REVOKED": TradeStatus.CLOSED,
    "REFUND": TradeStatus.REFUND,
}
_REFUND_EVENTS = {
    "REFUND.SUCCESS": RefundStatus.SUCCESS,
    "REFUND.ABNORMAL": RefundStatus.ABNORMAL,
    "REFUND.CLOSED": RefundStatus.CLOSED,
}


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


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower(), "")
    return value.strip()


# Unix seconds have 10 digits until the year 2286; more is not a time (and int() refuses
# strings of more than 4,300 digits, float() overflows past ~309).
_MAX_TIMESTAMP_DIGITS = 12
_ASCII_DIGITS = frozenset("0123456789")


def _seconds(timestamp: str) -> int:
    """`Wechatpay-Timestamp` as Unix seconds; anything but a few ASCII digits is stale."""
    if not 0 < len(timestamp) <= _MAX_TIMESTAMP_DIGITS or not set(timestamp) <= _ASCII_DIGITS:
        raise NotificationRejected(RejectReason.STALE_TIMESTAMP, "not a Unix time")
    return int(timestamp)


def _fen(value: Any, what: str, number: str) -> int:
    # bool is an int in Python; a float or a string amount is not fen.
    if type(value) is not int or value < 0:
        raise NotificationRejected(RejectReason.MALFORMED, f"{what} is not integer fen")
    return check_fen(value, what, number)


class WechatNotificationVerifier:
    """Verifies WeChat Pay v3 notifications on the raw body. Usable without the SDK client."""

    def __init__(self, config: WechatPayConfig) -> None:
        self._config = config
        self._public_key = (
            load_public_key(config.platform_public_key) if config.verifiable else None
        )

    def verify(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> VerifiedNotification:
        if self._public_key is None:
            raise NotificationRejected(RejectReason.NOT_CONFIGURED, "no platform key / APIv3 key")
        cfg = self._config
        serial = _header(headers, "Wechatpay-Serial")
        signature = _header(headers, "Wechatpay-Signature")
        timestamp = _header(headers, "Wechatpay-Timestamp")
        nonce = _header(headers, "Wechatpay-Nonce")
        if not (serial and signature and timestamp and nonce):
            raise NotificationRejected(RejectReason.MISSING_HEADERS)
        if signature.startswith(SIGNTEST_PREFIX):
            raise NotificationRejected(RejectReason.SIGNTEST_PROBE)
        if serial != cfg.platform_public_key_id:
            raise NotificationRejected(RejectReason.UNKNOWN_SERIAL, serial)
        sig_type = _header(headers, "Wechatpay-Signature-Type")
        if sig_type and sig_type != SIGNATURE_TYPE:
            raise NotificationRejected(RejectReason.BAD_SIGNATURE, f"type {sig_type}")
        if abs(int(now.timestamp()) - _seconds(timestamp)) > cfg.timestamp_window_s:
            raise NotificationRejected(RejectReason.STALE_TIMESTAMP, timestamp[:20])
        message = f"{timestamp}\n{nonce}\n".encode() + raw_body + b"\n"
        try:
            verify_sha256_rsa(self._public_key, message, signature)
        except CryptoFailure as exc:
            raise NotificationRejected(RejectReason.BAD_SIGNATURE) from exc
        envelope, resource = self._open(raw_body)
        return self._interpret(envelope, resource)

    def _open(self, raw_body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            envelope = json.loads(raw_body)
            enc = envelope["resource"]
            if enc.get("algorithm") != "AEAD_AES_256_GCM":
                raise NotificationRejected(RejectReason.MALFORMED, "algorithm")
            plain = aes_gcm_decrypt(
                self._config.apiv3_key,
                enc["nonce"],
                enc["ciphertext"],
                enc.get("associated_data") or "",
            )
            resource = json.loads(plain)
        except CryptoFailure as exc:
            raise NotificationRejected(RejectReason.DECRYPT_FAILED) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NotificationRejected(RejectReason.MALFORMED, str(exc)) from exc
        if not isinstance(envelope, dict) or not isinstance(resource, dict):
            raise NotificationRejected(RejectReason.MALFORMED, "not an object")
        return envelope, resource

    def _interpret(
        self, envelope: dict[str, Any], resource: dict[str, Any]
    ) -> VerifiedNotification:
        cfg = self._config
        event = envelope.get("event_type", "")
        if resource.get("mchid") != cfg.mchid:
            raise NotificationRejected(RejectReason.WRONG_MERCHANT, "mchid")
        amount = resource.get("amount")
        if not isinstance(amount, dict):
            raise NotificationRejected(RejectReason.MALFORMED, "amount")
        out_trade_no = str(resource.get("out_trade_no", ""))
        if not out_trade_no:
            raise NotificationRejected(RejectReason.MALFORMED, "out_trade_no")
        check_number(out_trade_no, "out_trade_no", OUT_TRADE_NO_MAX)
        raw = {"envelope": envelope, "resource": resource}
        if event == "TRANSACTION.SUCCESS":
            if resource.get("appid") != cfg.appid:
                raise NotificationRejected(RejectReason.WRONG_MERCHANT, "appid")
            state = _TRADE_STATES.get(str(resource.get("trade_state")), TradeStatus.UNKNOWN)
            return VerifiedNotification(
                channel=Channel.WECHAT,
                kind=NotificationKind.PAYMENT,
                external_id=out_trade_no,
                out_trade_no=out_trade_no,
                out_refund_no="",
                amount_fen=_fen(amount.get("total"), "amount.total", out_trade_no),
                status=state.value,
                transaction_id=str(resource.get("transaction_id", "")),
                raw=raw,
                notification_id=str(envelope.get("id", "")),
            )
        if event in _REFUND_EVENTS:
            out_refund_no = str(resource.get("out_refund_no", ""))
            if not out_refund_no:
                raise NotificationRejected(RejectReason.MALFORMED, "out_refund_no")
            check_number(out_refund_no, "out_refund_no")
            return VerifiedNotification(
                channel=Channel.WECHAT,
                kind=NotificationKind.REFUND,
                external_id=out_refund_no,
                out_trade_no=out_trade_no,
                out_refund_no=out_refund_no,
                amount_fen=_fen(amount.get("refund"), "amount.refund", out_refund_no),
                status=_REFUND_EVENTS[event].value,
                transaction_id=str(resource.get("transaction_id", "")),
                raw=raw,
                notification_id=str(envelope.get("id", "")),
            )
        raise NotificationRejected(RejectReason.UNSUPPORTED_EVENT, str(event))


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
        status = _TRADE_STATES.get(raw_state, TradeStatus.UNKNOWN)
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
