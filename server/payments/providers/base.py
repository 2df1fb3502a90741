"""The one interface every payment channel implements, and what it returns.

Design
------
A `PaymentProvider` wraps one platform (WeChat Pay API v3, Alipay) behind the same async
calls: create an order, query it, close it, refund, query a refund, verify a notification,
download the daily trade bill. Everything it returns is a frozen dataclass with money in int
fen and statuses normalised to our `StrEnum`s, so the payment service above never sees a
platform's JSON.

Two error families, never a silent `None`:
- `NotificationRejected(reason)`: an incoming notification failed verification (signature,
  serial, timestamp window, probe, decryption, wrong merchant). The caller answers the
  platform with an error and believes nothing in it.
- `ProviderError`: an outgoing call failed (network, HTTP error, bad response signature,
  business error code). `retryable` says whether the same call may simply be repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Channel(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"


class TradeStatus(StrEnum):
    """Normalised state of a payment order on the platform."""

    SUCCESS = "SUCCESS"  # paid
    NOTPAY = "NOTPAY"  # created, not (yet) paid
    CLOSED = "CLOSED"  # closed or expired unpaid
    REFUND = "REFUND"  # paid, then (partly) refunded
    UNKNOWN = "UNKNOWN"  # anything else (USERPAYING, PAYERROR…): ask again later


class RefundStatus(StrEnum):
    PROCESSING = "PROCESSING"  # accepted, outcome comes later
    SUCCESS = "SUCCESS"
    ABNORMAL = "ABNORMAL"  # money could not reach the payer; needs a person
    CLOSED = "CLOSED"


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class BillRowType(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class RejectReason(StrEnum):
    NOT_CONFIGURED = "not_configured"  # no key: fail closed
    MISSING_HEADERS = "missing_headers"
    UNKNOWN_SERIAL = "unknown_serial"
    SIGNTEST_PROBE = "signtest_probe"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    DECRYPT_FAILED = "decrypt_failed"
    WRONG_MERCHANT = "wrong_merchant"  # appid / mchid / app_id / seller_id not ours
    UNSUPPORTED_EVENT = "unsupported_event"
    OUT_OF_RANGE = "out_of_range"  # signed, but a number no platform can send: quarantined


class NotificationRejected(Exception):
    """A notification failed verification; nothing in it may be believed (fail closed)."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


# Neither platform can pay more in one transaction: WeChat's amount.total is a 32-bit fen
# count, Alipay's total_amount is at most 100,000,000.00 yuan. Anything above is not a payment.
MAX_NOTIFIED_FEN = 10_000_000_000
# The longest order / refund number either platform accepts (Alipay: 64; WeChat: 32 / 64).
MAX_NUMBER_LENGTH = 64


class OutOfRange(NotificationRejected):
    """Correctly signed, but an amount or a number in it lies beyond what the platform allows,
    so it cannot describe one of our orders. Not an attack to refuse (a resend would say the
    same, forever): the inbox quarantines it for a person and answers "handled".

    `number` is the order number (or the number that is too long), `amount` the amount as the
    platform wrote it; both cut to a length that fits our columns."""

    def __init__(self, what: str, *, number: str, amount: str) -> None:
        super().__init__(RejectReason.OUT_OF_RANGE, what)
        self.number = number[:MAX_NUMBER_LENGTH]
        self.number_length = len(number)
        self.amount = amount[:40]


def check_number(value: str, what: str, limit: int = MAX_NUMBER_LENGTH, amount: str = "") -> str:
    """A signed order / refund number longer than the platform allows: `OutOfRange`."""
    if len(value) > limit:
        raise OutOfRange(f"{what} has {len(value)} characters", number=value, amount=amount)
    return value


def check_fen(value: int, what: str, number: str) -> int:
    """A signed amount beyond what one payment can be: `OutOfRange`."""
    if value > MAX_NOTIFIED_FEN:
        # str() refuses ints of more than 4,300 digits; such an amount is named by its size.
        text = str(value) if value.bit_length() < 1_000 else f"about 2**{value.bit_length()}"
        raise OutOfRange(f"{what} above {MAX_NOTIFIED_FEN} fen", number=number, amount=text)
    return value


class ProviderError(Exception):
    """An outgoing call to the platform failed. `code` is the platform's error code if any."""

    def __init__(self, message: str, *, code: str = "", retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.retryable = retryable


class OrderNotFound(ProviderError):
    """The platform does not know this out_trade_no / out_refund_no."""


@dataclass(frozen=True, slots=True)
class WechatPayParams:
    """What the mini-program passes to `wx.requestPayment` (field names as WeChat spells them)."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str
    signType: str
    paySign: str

    def as_dict(self) -> dict[str, str]:
        return {
            "appId": self.appId,
            "timeStamp": self.timeStamp,
            "nonceStr": self.nonceStr,
            "package": self.package,
            "signType": self.signType,
            "paySign": self.paySign,
        }


@dataclass(frozen=True, slots=True)
class WechatJsapiOrder:
    out_trade_no: str
    prepay_id: str
    pay_params: WechatPayParams
    channel: Channel = Channel.WECHAT


@dataclass(frozen=True, slots=True)
class AlipayOrder:
    """Alipay: a QR code for the counter (precreate) and a mobile-web (wap) pay URL."""

    out_trade_no: str
    qr_code: str
    wap_url: str
    channel: Channel = Channel.ALIPAY


CreatedOrder = WechatJsapiOrder | AlipayOrder


@dataclass(frozen=True, slots=True)
class OrderState:
    """Answer to a query: `amount_fen` is what the payer paid (0 while unpaid)."""

    channel: Channel
    out_trade_no: str
    status: TradeStatus
    amount_fen: int
    total_fen: int
    transaction_id: str
    paid_at: datetime | None
    raw_status: str


@dataclass(frozen=True, slots=True)
class RefundState:
    channel: Channel
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    refund_fen: int
    status: RefundStatus
    raw_status: str


@dataclass(frozen=True, slots=True)
class VerifiedNotification:
    """A notification whose signature, freshness and merchant were checked.

    `external_id` is the key the inbox deduplicates on: for payments the out_trade_no, for
    refunds the out_refund_no (a platform resends the same event under new notification ids).
    `status` is a `TradeStatus` value for payments and a `RefundStatus` value for refunds.
    The amount must still be compared with the order by the service.
    """

    channel: Channel
    kind: NotificationKind
    external_id: str
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    status: str
    transaction_id: str
    raw: Mapping[str, Any] = field(hash=False, compare=False)
    notification_id: str = ""


@dataclass(frozen=True, slots=True)
class BillRow:
    """One line of a platform's daily trade bill, amounts in fen (refunds positive)."""

    channel: Channel
    type: BillRowType
    out_trade_no: str
    out_refund_no: str
    transaction_id: str
    amount_fen: int
    status: str
    time: datetime


@runtime_checkable
class PaymentProvider(Protocol):
    """One payment platform. All calls are async; none blocks the event loop."""

    channel: Channel

    @property
    def configured(self) -> bool: ...

    async def create_order(
        self,
        out_trade_no: str,
        amount_fen: int,
        description: str,
        payer_openid: str | None,
        expires_at: datetime,
        notify_url: str,
    ) -> CreatedOrder: ...

    async def query_order(self, out_trade_no: str) -> OrderState: ...

    async def close_order(self, out_trade_no: str) -> None: ...

    async def refund(
        self,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
    ) -> RefundState: ...

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundState: ...

    def verify_notification(
        self, headers: Mapping[str, str], raw_body: bytes, now: datetime
    ) -> VerifiedNotification: ...

    async def download_bill(self, bill_date: date) -> list[BillRow]: ...

    async def aclose(self) -> None: ...
