"""A fake WeChat Pay API v3 server (JSAPI orders, query, close, refunds, trade bill).

It checks the merchant's `Authorization` signature on every call, signs every answer with the
platform key (`Wechatpay-*` headers, as the SDK expects), and sends payment and refund
notifications encrypted with the APIv3 key and signed over "timestamp\\nnonce\\nbody\\n",
resent on WeChat's schedule until the merchant answers 200/204. Faults can be injected per
notification: SIGNTEST probe, stale timestamp, bad signature, unknown serial, wrong merchant,
amount mismatch; and `copies=N` sends the same notification N times concurrently.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.core.money import yuan
from server.payments.sandbox.billfiles import wechat_trade_bill
from server.payments.sandbox.http import (
    WECHAT_RESEND_S,
    HttpServer,
    Notifier,
    Request,
    Response,
    wechat_accepts,
)
from server.payments.sandbox.keys import SandboxKeys
from server.payments.sandbox.wechat_signing import FORGED, WechatFault, WechatPlatformSigner

SHANGHAI = ZoneInfo("Asia/Shanghai")
_AUTH = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class FakeOrder:
    out_trade_no: str
    amount_fen: int
    description: str
    openid: str
    notify_url: str
    state: str = "NOTPAY"
    prepay_id: str = ""
    transaction_id: str = ""
    success_time: datetime | None = None
    refunded_fen: int = 0


@dataclass
class FakeRefund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    refund_fen: int
    total_fen: int
    notify_url: str
    status: str = "PROCESSING"
    create_time: datetime = field(default_factory=lambda: datetime.now(SHANGHAI))
    success_time: datetime | None = None


class FakeWechatPay:
    def __init__(
        self,
        keys: SandboxKeys,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
        auto_complete_refunds: bool = True,
    ) -> None:
        self.keys = keys
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.auto_complete_refunds = auto_complete_refunds
        self.orders: dict[str, FakeOrder] = {}
        self.refunds: dict[str, FakeRefund] = {}
        self.corrupt_bill_hash = False
        self.extra_bill_lines: list[dict[str, str]] = []
        self._bills: dict[str, bytes] = {}
        self.signer = WechatPlatformSigner(keys, clock)
        self._server = HttpServer(self._handle)
        self.base_url = ""

    async def start(self) -> str:
        self.base_url = await self._server.start()
        return self.base_url

    async def close(self) -> None:
        await self._server.close()
        await self.notifier.close()

    # ---- HTTP -------------------------------------------------------------------------
    def _signed(self, status: int, data: Any = None) -> Response:
        return self.signer.response(status, data)

    def _error(self, status: int, code: str, message: str) -> Response:
        return self.signer.response(status, {"code": code, "message": message})

    async def _handle(self, req: Request) -> Response:
        if req.path.startswith("/v3/billdownload/"):
            content = self._bills.get(req.query.get("token", ""))
            if content is None:
                return Response(404, b"")
            return Response(200, content, {"Content-Type": "application/octet-stream"})
        if req.path.startswith("/sandbox/pay/"):
            return await self._pay_page(req)
        if not self.signer.authorized(req):
            return self._error(401, "SIGN_ERROR", "签名错误")
        route = self._route(req)
        if route is None:
            return self._error(404, "NOT_FOUND", "no such API")
        return route(req)

    def _route(self, req: Request) -> Callable[[Request], Response] | None:
        p = req.path
        if req.method == "POST" and p == "/v3/pay/transactions/jsapi":
            return self._jsapi
        if req.method == "GET" and p.startswith("/v3/pay/transactions/out-trade-no/"):
            return self._query
        if req.method == "POST" and p.endswith("/close"):
            return self._close
        if req.method == "POST" and p == "/v3/refund/domestic/refunds":
            return self._refund
        if req.method == "GET" and p.startswith("/v3/refund/domestic/refunds/"):
            return self._query_refund
        if req.method == "GET" and p == "/v3/bill/tradebill":
            return self._tradebill
        return None

    def _jsapi(self, req: Request) -> Response:
        body = json.loads(req.body)
        no = str(body.get("out_trade_no", ""))
        total = (body.get("amount") or {}).get("total")
        openid = (body.get("payer") or {}).get("openid", "")
        if (
            body.get("appid") != self.keys.wechat_appid
            or body.get("mchid") != self.keys.wechat_mchid
        ):
            return self._error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if not 6 <= len(no) <= 32 or type(total) is not int or total <= 0 or not openid:
            return self._error(400, "PARAM_ERROR", "参数错误")
        order = self.orders.get(no)
        if order is None:
            order = FakeOrder(no, total, body.get("description", ""), openid, body["notify_url"])
            self.orders[no] = order
        elif order.state == "SUCCESS":
            return self._error(400, "ORDERPAID", "该订单已支付")
        elif order.state == "CLOSED":
            return self._error(400, "ORDER_CLOSED", "订单已关闭")
        elif (order.amount_fen, order.openid) != (total, openid):
            return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
        order.prepay_id = "wx" + secrets.token_hex(16)  # same params again → latest prepay_id
        return self._signed(200, {"prepay_id": order.prepay_id})

    def order_json(self, order: FakeOrder) -> dict[str, Any]:
        data: dict[str, Any] = {
            "appid": self.keys.wechat_appid,
            "mchid": self.keys.wechat_mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": order.state,
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付"}.get(order.state, ""),
            "payer": {"openid": order.openid},
            "amount": {"total": order.amount_fen, "currency": "CNY"},
        }
        if order.transaction_id:
            data["transaction_id"] = order.transaction_id
            data["bank_type"] = "OTHERS"
            data["success_time"] = order.success_time.isoformat(timespec="seconds")  # type: ignore[union-attr]
            data["amount"].update(payer_total=order.amount_fen, payer_currency="CNY")
        return data

    def _query(self, req: Request) -> Response:
        no = req.path.split("/")[-1]
        order = self.orders.get(no)
        if order is None or req.query.get("mchid") != self.keys.wechat_mchid:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._signed(200, self.order_json(order))

    def _close(self, req: Request) -> Response:
        order = self.orders.get(req.path.split("/")[-2])
        if order is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if order.state in ("SUCCESS", "REFUND"):
            return self._error(400, "ORDERPAID", "订单已支付")
        order.state = "CLOSED"
        return self._signed(204)

    def _refund(self, req: Request) -> Response:
        body = json.loads(req.body)
        order = self.orders.get(str(body.get("out_trade_no", "")))
        amount = body.get("amount") or {}
        refund_fen, total_fen = amount.get("refund"), amount.get("total")
        existing = self.refunds.get(str(body.get("out_refund_no", "")))
        if existing is not None:  # same out_refund_no refunds once
            if (existing.refund_fen, existing.total_fen) != (refund_fen, total_fen):
                return self._error(400, "INVALID_REQUEST", "退款单号重复但参数不一致")
            return self._signed(200, self.refund_json(existing))
        if order is None or order.state not in ("SUCCESS", "REFUND"):
            return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在或未支付")
        if total_fen != order.amount_fen or type(refund_fen) is not int or refund_fen <= 0:
            return self._error(400, "PARAM_ERROR", "订单金额或退款金额与之前请求不一致")
        if order.refunded_fen + refund_fen > order.amount_fen:
            return self._error(403, "NOT_ENOUGH", "退款金额超过订单可退金额")
        order.refunded_fen += refund_fen
        order.state = "REFUND"
        refund = FakeRefund(
            body["out_refund_no"],
            order.out_trade_no,
            "50" + secrets.token_hex(14),
            refund_fen,
            total_fen,
            body.get("notify_url") or order.notify_url,
            create_time=self.clock(),
        )
        self.refunds[refund.out_refund_no] = refund
        response = self._signed(200, self.refund_json(refund))
        if self.auto_complete_refunds:
            self.complete_refund(refund.out_refund_no)
        return response

    def refund_json(self, refund: FakeRefund) -> dict[str, Any]:
        order = self.orders[refund.out_trade_no]
        data = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": order.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time.isoformat(timespec="seconds"),
            "status": refund.status,
            "amount": {
                "total": refund.total_fen,
                "refund": refund.refund_fen,
                "payer_total": refund.total_fen,
                "payer_refund": refund.refund_fen,
                "currency": "CNY",
            },
        }
        if refund.success_time:
            data["success_time"] = refund.success_time.isoformat(timespec="seconds")
        return data

    def _query_refund(self, req: Request) -> Response:
        refund = self.refunds.get(req.path.split("/")[-1])
        if refund is None:
            return self._error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return self._signed(200, self.refund_json(refund))

    # ---- what a payer / the platform does ------------------------------------------------
    async def _pay_page(self, req: Request) -> Response:
        no = req.path.rsplit("/", 1)[-1]
        order = self.orders.get(no)
        if order is None:
            return Response(
                404, "订单不存在".encode(), {"Content-Type": "text/plain; charset=utf-8"}
            )
        if req.method == "POST" and order.state == "NOTPAY":
            self.pay(no)
        html = (
            f"<html><meta charset='utf-8'><body><h1>微信支付（沙箱）</h1><p>{order.description}"
            f" ¥{yuan(order.amount_fen)} — {order.state}</p><form method='post'>"
            "<button>确认支付</button></form></body></html>"
        )
        return Response(200, html.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def pay(
        self, out_trade_no: str, *, fault: WechatFault | None = None, copies: int = 1
    ) -> list[int]:
        """The payer pays: the order becomes SUCCESS and the notification goes out."""
        order = self.orders[out_trade_no]
        if order.state == "NOTPAY":
            order.state = "SUCCESS"
            order.transaction_id = "42" + "".join(str(secrets.randbelow(10)) for _ in range(26))
            order.success_time = self.clock().replace(microsecond=0)
        return self.notify_payment(out_trade_no, fault=fault, copies=copies)

    def notify_payment(
        self, out_trade_no: str, *, fault: WechatFault | None = None, copies: int = 1
    ) -> list[int]:
        order = self.orders[out_trade_no]
        resource = {**self.order_json(order), "attach": ""}
        if fault is WechatFault.AMOUNT_MISMATCH:
            resource["amount"] = {**resource["amount"], "total": order.amount_fen + 1}
        return self._notify(
            order.notify_url,
            "TRANSACTION.SUCCESS",
            "支付成功",
            "transaction",
            resource,
            fault,
            copies,
        )

    def complete_refund(self, out_refund_no: str, status: str = "SUCCESS") -> list[int]:
        refund = self.refunds[out_refund_no]
        refund.status = status
        refund.success_time = self.clock().replace(microsecond=0) if status == "SUCCESS" else None
        return self.notify_refund(out_refund_no)

    def notify_refund(
        self, out_refund_no: str, *, fault: WechatFault | None = None, copies: int = 1
    ) -> list[int]:
        refund = self.refunds[out_refund_no]
        order = self.orders[refund.out_trade_no]
        resource = {
            "mchid": self.keys.wechat_mchid,
            "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no,
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total_fen,
                "refund": refund.refund_fen,
                "payer_total": refund.total_fen,
                "payer_refund": refund.refund_fen,
            },
        }
        if refund.success_time:
            resource["success_time"] = refund.success_time.isoformat(timespec="seconds")
        if fault is WechatFault.AMOUNT_MISMATCH:
            resource["amount"]["refund"] = refund.refund_fen + 1
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
        return self._notify(
            refund.notify_url,
            f"REFUND.{refund.status}",
            summary[refund.status],
            "refund",
            resource,
            fault,
            copies,
        )

    def _notify(
        self,
        url: str,
        event: str,
        summary: str,
        original_type: str,
        resource: dict[str, Any],
        fault: WechatFault | None,
        copies: int,
    ) -> list[int]:
        if fault is WechatFault.WRONG_MCHID:
            resource = {**resource, "mchid": "1900000000"}
        body = self.signer.envelope(event, summary, original_type, resource)
        schedule = () if fault in FORGED else WECHAT_RESEND_S
        build = self.signer.builder(body, fault)
        return [self.notifier.send(url, build, wechat_accepts, schedule) for _ in range(copies)]

    # ---- daily trade bill ---------------------------------------------------------------
    def _tradebill(self, req: Request) -> Response:
        try:
            day = date.fromisoformat(req.query.get("bill_date", ""))
        except ValueError:
            return self._error(400, "PARAM_ERROR", "bill_date 格式错误")
        plain = self.trade_bill_csv(day)
        token = secrets.token_urlsafe(16)
        self._bills[token] = gzip.compress(plain)
        digest = hashlib.sha1(plain + (b"x" if self.corrupt_bill_hash else b"")).hexdigest()
        return self._signed(
            200,
            {
                "hash_type": "SHA1",
                "hash_value": digest,
                "download_url": f"{self.base_url}/v3/billdownload/file?token={token}",
            },
        )

    def trade_bill_csv(self, day: date) -> bytes:
        """The ALL trade bill for `day` (Asia/Shanghai), as WeChat formats it."""
        rows: list[dict[str, str]] = []
        for o in self.orders.values():
            if o.success_time and o.success_time.astimezone(SHANGHAI).date() == day:
                rows.append(
                    {
                        **self._bill_common(o, o.success_time),
                        "交易状态": "SUCCESS",
                        "应结订单金额": str(yuan(o.amount_fen)),
                        "订单金额": str(yuan(o.amount_fen)),
                        "手续费": str(yuan(o.amount_fen * 6 // 1000)),
                    }
                )
        for r in self.refunds.values():
            if r.success_time and r.success_time.astimezone(SHANGHAI).date() == day:
                rows.append(
                    {
                        **self._bill_common(self.orders[r.out_trade_no], r.success_time),
                        "交易状态": "REFUND",
                        "微信退款单号": r.refund_id,
                        "商户退款单号": r.out_refund_no,
                        "退款金额": str(yuan(r.refund_fen)),
                        "申请退款金额": str(yuan(r.refund_fen)),
                        "退款类型": "ORIGINAL",
                        "退款状态": "SUCCESS",
                    }
                )
        return wechat_trade_bill(rows + self.extra_bill_lines)

    def _bill_common(self, order: FakeOrder, at: datetime) -> dict[str, str]:
        return {
            "交易时间": at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
            "公众账号ID": self.keys.wechat_appid,
            "商户号": self.keys.wechat_mchid,
            "特约商户号": "0",
            "微信订单号": order.transaction_id,
            "商户订单号": order.out_trade_no,
            "用户标识": order.openid,
            "交易类型": "JSAPI",
            "付款银行": "OTHERS",
            "货币种类": "CNY",
            "商品名称": order.description,
            "费率": "0.60%",
        }
