"""A fake Alipay open-platform gateway (precreate, wap pay page, query, close, refund, bill).

Requests must carry the app's RSA2 signature (sorted parameters without `sign`); answers
are `{"<method>_response": {...}, "sign": "..."}` signed with the fake Alipay key over the
exact inner JSON. Notifications are form POSTs signed over the sorted parameters without
`sign`/`sign_type`, resent on Alipay's schedule until the merchant answers exactly
`success`. As on the real platform, a precreated (QR) trade exists for queries only once
the payer has scanned it (`scan`, the wap page, or `pay`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from server.core.money import parse_yuan, yuan
from server.payments.providers.crypto import (
    CryptoFailure,
    load_private_key,
    load_public_key,
    new_rsa_key,
    sign_sha256_rsa,
    verify_sha256_rsa,
)
from server.payments.sandbox.billfiles import alipay_bill_zip
from server.payments.sandbox.http import (
    ALIPAY_RESEND_S,
    HttpServer,
    Notifier,
    Request,
    Response,
    alipay_accepts,
)
from server.payments.sandbox.keys import SandboxKeys

SHANGHAI = ZoneInfo("Asia/Shanghai")
GATEWAY_PATH = "/gateway.do"
_FMT = "%Y-%m-%d %H:%M:%S"


class AlipayFault(StrEnum):
    BAD_SIGNATURE = "bad_signature"
    WRONG_APP = "wrong_app"
    AMOUNT_MISMATCH = "amount_mismatch"


@dataclass
class FakeTrade:
    out_trade_no: str
    amount_fen: int
    subject: str
    notify_url: str
    scanned: bool = False
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = ""
    paid_at: datetime | None = None
    refunded_fen: int = 0


@dataclass
class FakeAlipayRefund:
    out_request_no: str
    out_trade_no: str
    refund_fen: int
    at: datetime


class FakeAlipay:
    def __init__(
        self,
        keys: SandboxKeys,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
    ) -> None:
        self.keys = keys
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.trades: dict[str, FakeTrade] = {}
        self.refunds: dict[tuple[str, str], FakeAlipayRefund] = {}
        self.extra_bill_lines: list[dict[str, str]] = []
        self._bills: dict[str, bytes] = {}
        self._key = load_private_key(keys.alipay_private_key)
        self._app_public = load_public_key(keys.alipay_app_public_key)
        self._server = HttpServer(self._handle)
        self.base_url = ""

    @property
    def gateway_url(self) -> str:
        return self.base_url + GATEWAY_PATH

    async def start(self) -> str:
        self.base_url = await self._server.start()
        return self.gateway_url

    async def close(self) -> None:
        await self._server.close()
        await self.notifier.close()

    # ---- HTTP -------------------------------------------------------------------------
    async def _handle(self, req: Request) -> Response:
        if req.path.startswith("/sandbox/bill"):
            content = self._bills.get(req.query.get("token", ""))
            return Response(200, content) if content else Response(404, b"")
        if req.path.startswith("/sandbox/pay/"):
            return self._pay_page(req.path.rsplit("/", 1)[-1], req.method == "POST")
        if req.path != GATEWAY_PATH:
            return Response(404, b"")
        params = dict(req.query)
        if req.body:
            params.update(parse_qsl(req.body.decode(params.get("charset", "utf-8"))))
        method = params.get("method", "")
        if not self._app_signed(params):
            return self._answer(
                method,
                {
                    "code": "40002",
                    "msg": "Invalid Arguments",
                    "sub_code": "isv.invalid-signature",
                    "sub_msg": "验签出错",
                },
            )
        if method == "alipay.trade.wap.pay":
            biz = json.loads(params.get("biz_content", "{}"))
            trade = self._create(biz, params.get("notify_url", ""))
            return self._pay_page(trade.out_trade_no, False)
        handler = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }.get(method)
        if handler is None:
            return self._answer(
                method,
                {"code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-method"},
            )
        biz = json.loads(params.get("biz_content", "{}"))
        return self._answer(method, handler(biz, params))

    def _app_signed(self, params: dict[str, str]) -> bool:
        if params.get("app_id") != self.keys.alipay_app_id or params.get("sign_type") != "RSA2":
            return False
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
        try:
            verify_sha256_rsa(self._app_public, content.encode(), params.get("sign", ""))
        except CryptoFailure:
            return False
        return True

    def _answer(self, method: str, data: dict[str, Any]) -> Response:
        inner = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        sign = sign_sha256_rsa(self._key, inner.encode())
        key = method.replace(".", "_") + "_response" if method else "error_response"
        text = f'{{"{key}":{inner},"sign":"{sign}"}}'
        return Response(200, text.encode(), {"Content-Type": "text/html;charset=utf-8"})

    @staticmethod
    def _ok(**fields: Any) -> dict[str, Any]:
        return {"code": "10000", "msg": "Success", **fields}

    @staticmethod
    def _fail(sub_code: str, sub_msg: str) -> dict[str, Any]:
        return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}

    def _create(self, biz: dict[str, Any], notify_url: str) -> FakeTrade:
        no = str(biz["out_trade_no"])
        trade = self.trades.get(no)
        if trade is None:
            trade = FakeTrade(
                no, parse_yuan(str(biz["total_amount"])), biz.get("subject", ""), notify_url
            )
            self.trades[no] = trade
        return trade

    def _visible(self, biz: dict[str, Any]) -> FakeTrade | None:
        trade = self.trades.get(str(biz.get("out_trade_no", "")))
        return trade if trade is not None and trade.scanned else None

    def _precreate(self, biz: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        no = str(biz.get("out_trade_no", ""))
        existing = self.trades.get(no)
        if existing and existing.amount_fen != parse_yuan(str(biz.get("total_amount", "0"))):
            return self._fail("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        if existing and existing.status != "WAIT_BUYER_PAY":
            return self._fail("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        trade = self._create(biz, params.get("notify_url", ""))
        return self._ok(
            out_trade_no=no, qr_code=f"{self.base_url}/sandbox/pay/{trade.out_trade_no}"
        )

    def trade_json(self, trade: FakeTrade) -> dict[str, Any]:
        data = self._ok(
            out_trade_no=trade.out_trade_no,
            trade_status=trade.status,
            total_amount=str(yuan(trade.amount_fen)),
            buyer_logon_id="159****5620",
        )
        if trade.trade_no:
            data["trade_no"] = trade.trade_no
        if trade.paid_at:
            data["send_pay_date"] = trade.paid_at.strftime(_FMT)
            data["receipt_amount"] = data["buyer_pay_amount"] = str(yuan(trade.amount_fen))
        return data

    def _query(self, biz: dict[str, Any], _params: dict[str, str]) -> dict[str, Any]:
        trade = self._visible(biz)
        return self.trade_json(trade) if trade else self._fail("ACQ.TRADE_NOT_EXIST", "交易不存在")

    def _close(self, biz: dict[str, Any], _params: dict[str, str]) -> dict[str, Any]:
        trade = self._visible(biz)
        if trade is None:
            return self._fail("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.status != "WAIT_BUYER_PAY":
            return self._fail("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = "TRADE_CLOSED"
        return self._ok(out_trade_no=trade.out_trade_no, trade_no=trade.trade_no)

    def _refund(self, biz: dict[str, Any], _params: dict[str, str]) -> dict[str, Any]:
        trade = self._visible(biz)
        if trade is None:
            return self._fail("ACQ.TRADE_NOT_EXIST", "交易不存在")
        req_no = str(biz.get("out_request_no") or trade.out_trade_no)
        amount = parse_yuan(str(biz.get("refund_amount", "0")))
        key = (trade.out_trade_no, req_no)
        if key in self.refunds:  # same out_request_no: refunded once, answer again
            if self.refunds[key].refund_fen != amount:
                return self._fail("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额与原请求不一致")
            return self._refund_ok(trade, "N")
        if trade.status not in ("TRADE_SUCCESS",) or amount <= 0:
            return self._fail("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.refunded_fen + amount > trade.amount_fen:
            return self._fail("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        trade.refunded_fen += amount
        self.refunds[key] = FakeAlipayRefund(req_no, trade.out_trade_no, amount, self.clock())
        if trade.refunded_fen == trade.amount_fen:
            trade.status = "TRADE_CLOSED"
        self.notify_refund(trade.out_trade_no, req_no)
        return self._refund_ok(trade, "Y")

    def _refund_ok(self, trade: FakeTrade, fund_change: str) -> dict[str, Any]:
        return self._ok(
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            buyer_logon_id="159****5620",
            fund_change=fund_change,
            refund_fee=str(yuan(trade.refunded_fen)),
        )

    def _refund_query(self, biz: dict[str, Any], _params: dict[str, str]) -> dict[str, Any]:
        trade = self._visible(biz)
        if trade is None:
            return self._fail("ACQ.TRADE_NOT_EXIST", "交易不存在")
        refund = self.refunds.get((trade.out_trade_no, str(biz.get("out_request_no", ""))))
        if refund is None:  # Alipay answers success with no refund fields
            return self._ok(out_trade_no=trade.out_trade_no, trade_no=trade.trade_no)
        return self._ok(
            out_trade_no=trade.out_trade_no,
            trade_no=trade.trade_no,
            out_request_no=refund.out_request_no,
            refund_status="REFUND_SUCCESS",
            refund_amount=str(yuan(refund.refund_fen)),
            total_amount=str(yuan(trade.amount_fen)),
        )

    # ---- payer and notifications --------------------------------------------------------
    def scan(self, out_trade_no: str) -> None:
        self.trades[out_trade_no].scanned = True

    def _pay_page(self, out_trade_no: str, confirm: bool) -> Response:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            return Response(
                404, "交易不存在".encode(), {"Content-Type": "text/plain; charset=utf-8"}
            )
        trade.scanned = True
        if confirm and trade.status == "WAIT_BUYER_PAY":
            self.pay(out_trade_no)
        html = (
            f"<html><meta charset='utf-8'><body><h1>支付宝（沙箱）</h1><p>{trade.subject}"
            f" ¥{yuan(trade.amount_fen)} — {trade.status}</p>"
            f"<form method='post' action='/sandbox/pay/{out_trade_no}'>"
            "<button>确认付款</button></form></body></html>"
        )
        return Response(200, html.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def pay(
        self, out_trade_no: str, *, fault: AlipayFault | None = None, copies: int = 1
    ) -> list[int]:
        trade = self.trades[out_trade_no]
        trade.scanned = True
        if trade.status == "WAIT_BUYER_PAY":
            trade.status = "TRADE_SUCCESS"
            trade.trade_no = self.clock().strftime("%Y%m%d") + "22001" + secrets.token_hex(6)
            trade.paid_at = self.clock().replace(microsecond=0)
        return self.notify_payment(out_trade_no, fault=fault, copies=copies)

    def _base_params(self, trade: FakeTrade) -> dict[str, str]:
        now = self.clock().strftime(_FMT)
        paid = trade.paid_at.strftime(_FMT) if trade.paid_at else now
        amount = str(yuan(trade.amount_fen))
        return {
            "notify_time": now,
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "app_id": self.keys.alipay_app_id,
            "auth_app_id": self.keys.alipay_app_id,
            "seller_id": self.keys.alipay_seller_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": amount,
            "receipt_amount": amount,
            "buyer_pay_amount": amount,
            "invoice_amount": amount,
            "subject": trade.subject,
            "gmt_create": paid,
            "gmt_payment": paid,
            "buyer_id": "2088102177846880",
            "buyer_logon_id": "159****5620",
        }

    def notify_payment(
        self, out_trade_no: str, *, fault: AlipayFault | None = None, copies: int = 1
    ) -> list[int]:
        trade = self.trades[out_trade_no]
        params = self._base_params(trade)
        params["trade_status"] = "TRADE_SUCCESS"
        if fault is AlipayFault.AMOUNT_MISMATCH:
            params["total_amount"] = str(yuan(trade.amount_fen + 1))
        return self._notify(trade.notify_url, params, fault, copies)

    def notify_trade_status(self, out_trade_no: str, trade_status: str) -> list[int]:
        """A notification for a status that asks nothing of us (e.g. TRADE_CLOSED)."""
        params = {**self._base_params(self.trades[out_trade_no]), "trade_status": trade_status}
        return self._notify(self.trades[out_trade_no].notify_url, params, None, 1)

    def notify_refund(self, out_trade_no: str, out_request_no: str, copies: int = 1) -> list[int]:
        trade = self.trades[out_trade_no]
        refund = self.refunds[(out_trade_no, out_request_no)]
        params = self._base_params(trade)
        params.update(
            out_biz_no=out_request_no,
            refund_fee=str(yuan(trade.refunded_fen)),
            gmt_refund=refund.at.strftime(_FMT) + ".000",
        )
        return self._notify(trade.notify_url, params, None, copies)

    def _notify(
        self, url: str, params: dict[str, str], fault: AlipayFault | None, copies: int
    ) -> list[int]:
        if fault is AlipayFault.WRONG_APP:
            params["app_id"] = "2021000000000000"
        content = "&".join(
            f"{k}={v}" for k, v in sorted(params.items()) if k not in ("sign", "sign_type")
        )
        key = new_rsa_key() if fault is AlipayFault.BAD_SIGNATURE else self._key
        params["sign"] = sign_sha256_rsa(key, content.encode())
        body = urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        schedule = (
            () if fault in (AlipayFault.BAD_SIGNATURE, AlipayFault.WRONG_APP) else ALIPAY_RESEND_S
        )
        return [
            self.notifier.send(url, lambda: (headers, body), alipay_accepts, schedule)
            for _ in range(copies)
        ]

    # ---- bill -----------------------------------------------------------------------------
    def _bill_url(self, biz: dict[str, Any], _params: dict[str, str]) -> dict[str, Any]:
        try:
            day = date.fromisoformat(str(biz.get("bill_date", "")))
        except ValueError:
            return self._fail("isv.invalid-bill-date", "账单日期格式不正确")
        token = secrets.token_urlsafe(16)
        self._bills[token] = self.bill_zip(day)
        return self._ok(bill_download_url=f"{self.base_url}/sandbox/bill?token={token}")

    def bill_zip(self, day: date) -> bytes:
        rows: list[dict[str, str]] = []
        for t in self.trades.values():
            if t.paid_at and t.paid_at.date() == day:
                rows.append(self._bill_row(t, "交易", t.paid_at, t.amount_fen, ""))
        for r in self.refunds.values():
            if r.at.date() == day:
                trade = self.trades[r.out_trade_no]
                rows.append(self._bill_row(trade, "退款", r.at, -r.refund_fen, r.out_request_no))
        rows += self.extra_bill_lines
        account = self.keys.alipay_seller_id + "0156"
        return alipay_bill_zip(account, day, rows, self.clock())

    @staticmethod
    def _bill_row(
        trade: FakeTrade, kind: str, at: datetime, fen: int, request_no: str
    ) -> dict[str, str]:
        amount = ("-" if fen < 0 else "") + str(yuan(abs(fen)))
        return {
            "支付宝交易号": trade.trade_no,
            "商户订单号": trade.out_trade_no,
            "业务类型": kind,
            "商品名称": trade.subject,
            "创建时间": at.strftime(_FMT),
            "完成时间": at.strftime(_FMT),
            "对方账户": "159****5620",
            "订单金额（元）": amount,
            "商家实收（元）": amount,
            "退款批次号/请求号": request_no,
            "服务费（元）": "0.00",
        }
