"""Alipay notifications (form POST, RSA2), verified with the SDK's `verify_with_rsa`.

Signed over the parameters without `sign` and `sign_type`, sorted by name and joined as
`k=v&k=v`, with **Alipay's** public key; then app_id and seller_id must be ours. A signed
notification whose order number or amount no platform could send raises `OutOfRange`
(quarantined by the inbox, answered `success`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl

import rsa
from alipay.aop.api.util.SignatureUtils import verify_with_rsa

from server.core.money import FEN_PER_YUAN, parse_yuan
from server.payments.providers.base import (
    MAX_NOTIFIED_FEN,
    Channel,
    NotificationKind,
    NotificationRejected,
    OutOfRange,
    RefundStatus,
    RejectReason,
    TradeStatus,
    VerifiedNotification,
    check_number,
)


class AlipayNotifyKeys(Protocol):
    """What verifying a notification needs of the merchant settings (`AlipayConfig`)."""

    @property
    def app_id(self) -> str: ...
    @property
    def seller_id(self) -> str: ...
    @property
    def alipay_public_key(self) -> str: ...
    @property
    def verifiable(self) -> bool: ...


TRADE_STATES = {
    "WAIT_BUYER_PAY": TradeStatus.NOTPAY,
    "TRADE_SUCCESS": TradeStatus.SUCCESS,
    "TRADE_FINISHED": TradeStatus.SUCCESS,
    "TRADE_CLOSED": TradeStatus.CLOSED,
}


_MAX_YUAN = Decimal(MAX_NOTIFIED_FEN) / FEN_PER_YUAN


def _fen(text: Any, what: str, number: str) -> int:
    """A yuan amount as fen; one beyond any payment (`OutOfRange`) is told apart from one that
    is not an amount at all (MALFORMED), before parse_yuan's 28-digit context refuses both."""
    raw = str(text)
    try:
        value = Decimal(raw.strip())
    except ArithmeticError as exc:
        raise NotificationRejected(RejectReason.MALFORMED, f"{what}={raw[:40]!r}") from exc
    if value.is_finite() and value > _MAX_YUAN:  # compared, not multiplied: 1e999999 overflows
        raise OutOfRange(f"{what} above {MAX_NOTIFIED_FEN} fen", number=number, amount=raw)
    try:
        return parse_yuan(raw)
    except (ValueError, ArithmeticError) as exc:
        raise NotificationRejected(RejectReason.MALFORMED, f"{what}={raw[:40]!r}") from exc


def signed_content(params: Mapping[str, str]) -> str:
    """Notification sign content: without sign and sign_type, sorted by name, `k=v&…`."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type"))


class AlipayNotificationVerifier:
    def __init__(self, config: AlipayNotifyKeys) -> None:
        self._config = config

    def _check_signature(self, content: str, sign: str) -> None:
        try:
            ok = verify_with_rsa(self._config.alipay_public_key, content.encode(), sign)
        except (rsa.VerificationError, ValueError, TypeError) as exc:
            raise NotificationRejected(RejectReason.BAD_SIGNATURE) from exc
        if not ok:
            raise NotificationRejected(RejectReason.BAD_SIGNATURE)

    def verify(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> VerifiedNotification:
        cfg = self._config
        if not cfg.verifiable:
            raise NotificationRejected(RejectReason.NOT_CONFIGURED, "no Alipay public key")
        params = self._parse(raw_body)
        sign = params.get("sign", "")
        if not sign:
            raise NotificationRejected(RejectReason.MISSING_HEADERS, "sign")
        if params.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected(RejectReason.BAD_SIGNATURE, "sign_type")
        self._check_signature(signed_content(params), sign)
        if params.get("app_id") != cfg.app_id:
            raise NotificationRejected(RejectReason.WRONG_MERCHANT, "app_id")
        if params.get("seller_id") != cfg.seller_id:
            raise NotificationRejected(RejectReason.WRONG_MERCHANT, "seller_id")
        return self._interpret(params)

    @staticmethod
    def _parse(raw_body: bytes) -> dict[str, str]:
        try:
            text = raw_body.decode("ascii")  # form bodies are percent-encoded ASCII
            charset = dict(parse_qsl(text)).get("charset", "utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset)
        except (UnicodeDecodeError, ValueError, LookupError) as exc:
            raise NotificationRejected(RejectReason.MALFORMED, "not a form body") from exc
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected(RejectReason.MALFORMED, "repeated parameter")
        return params

    @staticmethod
    def _interpret(params: dict[str, str]) -> VerifiedNotification:
        out_trade_no = params.get("out_trade_no", "")
        if not out_trade_no:
            raise NotificationRejected(RejectReason.MALFORMED, "out_trade_no")
        check_number(out_trade_no, "out_trade_no")
        raw_status = params.get("trade_status", "")
        status = TRADE_STATES.get(raw_status, TradeStatus.UNKNOWN)
        common = {
            "channel": Channel.ALIPAY,
            "out_trade_no": out_trade_no,
            "transaction_id": params.get("trade_no", ""),
            "raw": dict(params),
            "notification_id": params.get("notify_id", ""),
        }
        out_biz_no = params.get("out_biz_no", "")
        if out_biz_no and params.get("refund_fee"):
            check_number(out_biz_no, "out_biz_no")
            # A refund shows up as a trade_status_sync with out_biz_no (= our out_request_no);
            # refund_fee is the trade's cumulative refunded amount.
            return VerifiedNotification(
                kind=NotificationKind.REFUND,
                external_id=out_biz_no,
                out_refund_no=out_biz_no,
                amount_fen=_fen(params["refund_fee"], "refund_fee", out_trade_no),
                status=RefundStatus.SUCCESS.value,
                **common,
            )
        return VerifiedNotification(
            kind=NotificationKind.PAYMENT,
            external_id=out_trade_no,
            out_refund_no="",
            amount_fen=_fen(params.get("total_amount", ""), "total_amount", out_trade_no),
            status=status.value,
            **common,
        )
