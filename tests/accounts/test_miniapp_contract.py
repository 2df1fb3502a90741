"""The mini-program's request module against the real app (miniapp/test/contract.test.js):
jest runs the module over Node's HTTP against create_app on loopback, with the fake WeChat
API, the sandbox SMS sender and the payment sandbox behind it; a small control server lets
the JS side act as WeChat, the phone and the payer (codes, the SMS, paying the order)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from server.accounts.sandbox import FakeWechat
from server.accounts.service.sms import SandboxSmsSender
from server.core.httpd import Handler, HttpServer, Request, Response
from tests.factories import create_account
from tests.payments.service_fixtures import PayApp, drain, pay_app_fixture  # noqa: F401

MINIAPP = Path(__file__).resolve().parents[2] / "miniapp"
PHONE = "13912345678"


def control_handler(pay: PayApp, seed: dict[str, object]) -> Handler:
    """GET /seed, POST /wechat/code, GET /sms/last?phone=, POST /pay {order_no}."""
    wechat: FakeWechat = pay.app.ctx.wechat_sandbox
    sms: SandboxSmsSender = pay.app.ctx.sms_sender

    def answer(body: object, status: int = 200) -> Response:
        return Response(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    async def handle(request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/seed"):
            return answer(seed)
        if route == ("POST", "/wechat/code"):
            return answer({"code": wechat.new_code("o-miniapp")})  # one WeChat user throughout
        if route == ("GET", "/sms/last"):
            code = sms.last_code(request.query.get("phone", ""))
            return answer({"code": code}) if code else answer({"error": "no code"}, 404)
        if route == ("POST", "/pay"):
            pay.sandbox.wechat.pay(json.loads(request.body)["order_no"])
            await drain(pay)  # the signed notification has been posted and answered
            return answer({"paid": True})
        return answer({"error": "no such control"}, 404)

    return handle


async def test_request_module_against_the_live_server(pay_app: PayApp) -> None:
    npx = shutil.which("npx")
    if npx is None or not (MINIAPP / "node_modules").is_dir():
        pytest.skip("needs Node and miniapp/node_modules (./run test runs npm ci first)")
    account = await create_account(number="A-0101", phone=PHONE)
    seed = {"site_id": account.site_id, "account_number": "A-0101", "phone": PHONE}
    control = HttpServer(control_handler(pay_app, seed))
    control_url = await control.start()
    try:
        env = {
            **os.environ,
            "SHUIDIAN_CONTRACT_API": pay_app.url,
            "SHUIDIAN_CONTRACT_CONTROL": control_url,
            "CI": "true",
        }
        jest = await asyncio.create_subprocess_exec(
            npx, "--no-install", "jest", "--ci", "test/contract.test.js",
            cwd=MINIAPP, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(jest.communicate(), 600)
        except TimeoutError:
            jest.kill()
            raise
    finally:
        await control.close()
    text = out.decode("utf-8", "replace")
    assert jest.returncode == 0, text
    assert "1 passed" in text and "skipped" not in text, text
