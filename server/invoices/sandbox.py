"""A local fake of the Nuonuo open platform, for tests and the embedded demo, on a real
loopback HTTP server (server.core.httpd). It checks what the platform checks — the app key,
the `X-Nuonuo-Sign` signature over the body as sent, the timestamp, the access token, the
method — answers with the platform's codes, and issues asynchronously:

- `pending_polls`: how many `queryInvoiceResult` calls see an order "20" (开票中) before
  its result (driven by the test, never by the clock);
- `fail_orders`: order number → failCause, answered as status 22 (开票失败);
- `faults`: codes answered one per services request, then normal again ("500": HTTP 500);
  `fault`: every request; `down()` / `up()`: connection refused, then back on the same port;
- a buyer's tax id failing GB 32100 is refused at submit (E9101), a red invoice must name an
  issued blue one of this seller (E9120), reverse it whole (E9121) and only once (E9122);
  an order number used before is E9106.

    async with NuonuoSandbox() as fake:
        client = fake.client()
        fake.pending_polls = 2
        fake.issued           # order numbers issued, in order
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from server.core.httpd import HttpServer, Request, Response
from server.invoices.providers import nuonuo
from server.invoices.taxid import InvalidTaxId, check_tax_id

APP_KEY, APP_SECRET = "nuonuo-sandbox-key", "nuonuo-sandbox-secret"
MAX_SKEW_S = 600
_DESCRIBE = {
    nuonuo.SUCCESS: "调用成功",
    nuonuo.ORDER_NO_USED: "订单编号不能重复",
    nuonuo.NOT_FOUND: "发票不存在",
    nuonuo.BUSY: "系统繁忙，请稍后再试",
    nuonuo.BAD_SIGNATURE: "签名验证失败",
    nuonuo.TOKEN_REFUSED: "accessToken无效或已过期",
    "070101": "获取app密钥失败或appkey无效",
    "E9101": "购方税号格式不正确",
    "E9102": "开票明细金额或税额不正确",
    "E9120": "对应蓝字发票不存在",
    "E9121": "红字发票金额与蓝字发票不符",
    "E9122": "蓝字发票已冲红",
}


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        status, json.dumps(body, ensure_ascii=False).encode(), {"Content-Type": "application/json"}
    )


def _answer(code: str, result: Any = None) -> Response:
    return _json({"code": code, "describe": _DESCRIBE.get(code, code), "result": result})


def _fen(text: str) -> int:
    return int(Decimal(text) * 100)


@dataclass
class _Order:
    body: dict[str, Any]
    serial: str
    polls_left: int
    fail: str = ""
    status: str = "20"
    invoice_no: str = ""
    issued_ms: int = 0
    reversed: bool = False


@dataclass
class FakeNuonuo:
    app_key: str = APP_KEY
    app_secret: str = APP_SECRET
    pending_polls: int = 1
    fail_orders: dict[str, str] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    fault: str | None = None
    issued: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # methods, as they arrived
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self._server = HttpServer(self._serve)
        self._orders: dict[str, _Order] = {}
        self._tokens: set[str] = set()
        self._port = 0

    @property
    def base_url(self) -> str:
        return self._server.base_url

    async def start(self) -> FakeNuonuo:
        await self._server.start(port=self._port)
        self._port = int(self._server.base_url.rsplit(":", 1)[1])
        return self

    async def close(self) -> None:
        await self._server.close()

    down = close

    async def up(self) -> None:
        await self.start()

    async def __aenter__(self) -> FakeNuonuo:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def client(self, timeout_s: float = 5.0) -> nuonuo.NuonuoClient:
        return nuonuo.NuonuoClient(
            self.app_key, self.app_secret, endpoint=f"{self.base_url}/open/v1/services",
            token_url=f"{self.base_url}/accessToken", timeout_s=timeout_s,
        )  # fmt: skip

    def revoke_tokens(self) -> None:
        """Every token handed out is refused from now on (070302)."""
        self._tokens.clear()

    def order(self, order_no: str) -> dict[str, Any]:
        """The `order` body as it arrived."""
        return self._orders[order_no].body

    async def _serve(self, request: Request) -> Response:
        if request.path == "/accessToken":
            return self._token(dict(parse_qsl(request.body.decode())))
        if request.path.startswith("/fp/"):
            pdf = b"%PDF-1.4\n% sandbox invoice\n"
            return Response(200, pdf, {"Content-Type": "application/pdf"})
        if request.path != "/open/v1/services":
            return Response(404, b"not found")
        refused = self._refused(request)
        if refused is not None:
            return refused
        method = request.headers.get("method", "")
        self.calls.append(method)
        fault = self.faults.pop(0) if self.faults else self.fault
        if fault == "500":
            return Response(500, b"Internal Server Error")
        if fault:
            return _answer(fault)
        payload = json.loads(request.body)
        if method == nuonuo.BILLING:
            return self._billing(payload.get("order") or {}, request.headers.get("usertax", ""))
        if method == nuonuo.QUERY:
            return self._query(payload, request.headers.get("usertax", ""))
        return _answer("070201")

    def _token(self, form: dict[str, str]) -> Response:
        if (
            form.get("client_id") != self.app_key
            or form.get("client_secret") != self.app_secret
            or form.get("grant_type") != "client_credentials"
        ):
            return _json({"error": "invalid_client", "error_description": "应用不存在或密钥错误"})
        token = secrets.token_hex(16)
        self._tokens.add(token)
        self.tokens_issued += 1
        return _json({"access_token": token, "expires_in": 86400})

    def _refused(self, request: Request) -> Response | None:
        q = request.query
        if q.get("appkey") != self.app_key:
            return _answer("070101")
        want = nuonuo.sign(
            self.app_secret, self.app_key, q.get("senid", ""), q.get("nonce", ""),
            q.get("timestamp", ""), request.body.decode("utf-8"),
        )  # fmt: skip
        if request.headers.get("x-nuonuo-sign") != want:
            return _answer(nuonuo.BAD_SIGNATURE)
        if abs(time.time() - int(q.get("timestamp") or 0)) > MAX_SKEW_S:
            return _answer(nuonuo.BAD_SIGNATURE)
        if request.headers.get("accesstoken") not in self._tokens:
            return _answer(nuonuo.TOKEN_REFUSED)
        return None

    def _billing(self, order: dict[str, Any], user_tax: str) -> Response:
        order_no = str(order.get("orderNo", ""))
        if not order_no or order_no in self._orders:
            return _answer(nuonuo.ORDER_NO_USED)
        buyer_tax = str(order.get("buyerTaxNum") or "")
        if buyer_tax:
            try:
                check_tax_id(buyer_tax)
            except InvalidTaxId:
                return _answer("E9101")
        lines = order.get("invoiceDetail") or []
        for line in lines:
            gross, net = _fen(line["taxIncludedAmount"]), _fen(line["taxExcludedAmount"])
            if gross - net != _fen(line["tax"]) or len(str(line.get("goodsCode", ""))) != 19:
                return _answer("E9102")
        if order.get("invoiceType") == "2":
            refused = self._red(order, user_tax, lines)
            if refused is not None:
                return refused
        serial = f"{time.strftime('%y%m%d%H%M%S')}{secrets.randbelow(10**8):08d}"
        self._orders[order_no] = _Order(
            dict(order, salerTaxNum=user_tax or order.get("salerTaxNum", "")), serial,
            self.pending_polls, self.fail_orders.get(order_no, ""),
        )  # fmt: skip
        return _answer(nuonuo.SUCCESS, {"invoiceSerialNum": serial})

    def _red(self, order: dict[str, Any], user_tax: str, lines: list[dict]) -> Response | None:
        blue = next(
            (o for o in self._orders.values()
             if o.invoice_no and o.invoice_no == order.get("invoiceNum")
             and o.body.get("salerTaxNum") == user_tax and o.body.get("invoiceType") == "1"),
            None,
        )  # fmt: skip
        if blue is None:
            return _answer("E9120")
        if blue.reversed:
            return _answer("E9122")
        blue_total = sum(_fen(x["taxIncludedAmount"]) for x in blue.body["invoiceDetail"])
        if sum(_fen(x["taxIncludedAmount"]) for x in lines) != -blue_total:
            return _answer("E9121")
        blue.reversed = True
        return None

    def _query(self, payload: dict[str, Any], user_tax: str) -> Response:
        found = []
        for order_no in payload.get("orderNos") or []:
            order = self._orders.get(order_no)
            if order is None or order.body.get("salerTaxNum") != user_tax:
                continue
            self._advance(order_no, order)
            found.append(self._entry(order_no, order))
        if not found:
            return _answer(nuonuo.NOT_FOUND)
        return _answer(nuonuo.SUCCESS, found)

    def _advance(self, order_no: str, order: _Order) -> None:
        if order.status != "20":
            return
        if order.polls_left > 0:
            order.polls_left -= 1
            return
        if order.fail:
            order.status = "22"
            return
        order.status = "2"
        order.invoice_no = f"{time.strftime('%y')}44{secrets.randbelow(10**16):016d}"
        order.issued_ms = int(time.time() * 1000)
        self.issued.append(order_no)

    def _entry(self, order_no: str, order: _Order) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "orderNo": order_no, "serialNo": order.serial, "status": order.status,
            "statusMsg": {"20": "开票中", "2": "开票完成", "22": "开票失败"}[order.status],
            "failCause": order.fail if order.status == "22" else "",
            "invoiceCode": "", "invoiceNo": order.invoice_no,
        }  # fmt: skip
        if order.status == "2":
            entry |= {
                "invoiceTime": order.issued_ms,
                "pdfUrl": f"{self.base_url}/fp/{order.serial}.pdf",
                "ofdUrl": f"{self.base_url}/fp/{order.serial}.ofd",
            }
        return entry


NuonuoSandbox = FakeNuonuo
