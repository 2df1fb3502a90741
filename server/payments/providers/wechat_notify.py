"""WeChat Pay v3 notifications, verified on the raw body with `cryptography`.

Not with the SDK's `callback()`: it verifies a decoded `str` rather than the raw bytes,
silently tries to download certificates for an unknown serial, has no timestamp window and
collapses every failure into `None`. We need the raw bytes, a fixed key id, a 5-minute
window, the `WECHATPAY/SIGNTEST/` probes refused and a typed reason for each rejection.

Order of checks (cheap first, fail closed):
  configured? → headers present → SIGNTEST probe → serial is our key id → timestamp within
  the window → RSA signature over "timestamp\\nnonce\\nbody\\n" → AES-GCM decrypt → event type
  → mchid (and appid for payments) are ours → amounts are integer fen.
A correctly signed notification whose number or amount no platform could send raises
`OutOfRange` (the inbox quarantines it and answers "handled").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from server.payments.providers.base import (
    Channel,
    NotificationKind,
    NotificationRejected,
    RefundStatus,
    RejectReason,
    TradeStatus,
    VerifiedNotification,
    check_fen,
    check_number,
)
from server.payments.providers.crypto import (
    CryptoFailure,
    aes_gcm_decrypt,
    load_public_key,
    verify_sha256_rsa,
)


class WechatNotifyKeys(Protocol):
    """What verifying a notification needs of the merchant settings (`WechatPayConfig`)."""

    @property
    def appid(self) -> str: ...
    @property
    def mchid(self) -> str: ...
    @property
    def apiv3_key(self) -> str: ...
    @property
    def platform_public_key(self) -> str: ...
    @property
    def platform_public_key_id(self) -> str: ...
    @property
    def timestamp_window_s(self) -> int: ...
    @property
    def verifiable(self) -> bool: ...


SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
OUT_TRADE_NO_MAX = 32  # WeChat's out_trade_no is 6-32 characters

TRADE_STATES = {
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

    def __init__(self, config: WechatNotifyKeys) -> None:
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
            state = TRADE_STATES.get(str(resource.get("trade_state")), TradeStatus.UNKNOWN)
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
                amount_fen=_fen(amount.get("refund"), "amount.refund", out_trade_no),
                status=_REFUND_EVENTS[event].value,
                transaction_id=str(resource.get("transaction_id", "")),
                raw=raw,
                notification_id=str(envelope.get("id", "")),
            )
        raise NotificationRejected(RejectReason.UNSUPPORTED_EVENT, str(event))
