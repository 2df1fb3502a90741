"""A tenant recharges through the payment sandbox over real HTTP: the order is opened,
the sandbox "pays" and posts its signed notification to our notify endpoint, the wallet is
credited and the detail shows it. Refusals: amount, channel, closed account, platform down,
no merchant keys; orders of other tenants are 404."""

from __future__ import annotations

import dataclasses

from server.accounts.models import AccountStatus
from server.payments.config import PaymentSettings
from server.payments.providers.base import Channel
from server.payments.providers.crypto import load_public_key, verify_sha256_rsa
from server.payments.providers.wechat import WechatPayProvider
from tests.accounts.tenant_fixtures import tenant_of
from tests.factories import create_account, create_site
from tests.payments.service_fixtures import PayApp, drain, pay_app_fixture  # noqa: F401


async def test_wechat_recharge_ends_in_a_credited_wallet(pay_app: PayApp) -> None:
    account = await create_account()
    tenant = await tenant_of(pay_app, account)
    options = await tenant.get(f"/api/v1/accounts/{account.id}/recharge/options")
    assert options.json() == {
        "choices_fen": [5_000, 10_000, 20_000, 50_000, 100_000], "min_fen": 1_000,
        "max_fen": 1_000_000, "channels": ["wechat"],
    }  # fmt: skip
    answer = await tenant.post(
        f"/api/v1/accounts/{account.id}/recharge", json={"amount_fen": 10_000, "channel": "wechat"}
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["status"] == "created" and created["amount_fen"] == 10_000
    pay = created["pay"]
    assert set(pay) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert pay["package"].startswith("prepay_id=") and pay["signType"] == "RSA"
    signed = "".join(f"{pay[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package"))
    merchant = load_public_key(pay_app.sandbox.keys.merchant_public_key)
    verify_sha256_rsa(merchant, signed.encode(), pay["paySign"])  # raises if not signed
    order_no = created["order_no"]
    status = await tenant.get(f"/api/v1/orders/{order_no}")
    assert status.json()["status"] == "created" and status.json()["paid_at"] is None

    pay_app.sandbox.wechat.pay(order_no)  # the payer pays; the notification goes out
    await drain(pay_app)

    status = (await tenant.get(f"/api/v1/orders/{order_no}")).json()
    assert status["status"] == "paid" and status["paid_at"] is not None
    assert status["account_id"] == account.id and status["channel"] == "wechat"
    detail = (await tenant.get(f"/api/v1/accounts/{account.id}")).json()
    assert detail["balance_fen"] == 10_000 and detail["available_fen"] == 10_000
    records = (await tenant.get(f"/api/v1/accounts/{account.id}/records")).json()["items"]
    assert [(r["type"], r["title"], r["amount_fen"]) for r in records] == [
        ("recharge", "微信充值", 10_000)
    ]


async def test_alipay_where_the_site_enables_it(pay_app: PayApp) -> None:
    site = await create_site(alipay_enabled=True, recharge_choices_fen=[2_000, 3_000])
    account = await create_account(site=site)
    tenant = await tenant_of(pay_app, account)
    options = (await tenant.get(f"/api/v1/accounts/{account.id}/recharge/options")).json()
    assert options["channels"] == ["wechat", "alipay"] and options["choices_fen"] == [2_000, 3_000]
    answer = await tenant.post(
        f"/api/v1/accounts/{account.id}/recharge", json={"amount_fen": 2_000, "channel": "alipay"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["channel"] == "alipay" and answer.json()["pay"]["pay_url"]


async def test_recharge_refusals(pay_app: PayApp) -> None:
    account = await create_account()
    tenant = await tenant_of(pay_app, account)
    path = f"/api/v1/accounts/{account.id}/recharge"
    for body, field in [
        ({"amount_fen": 999}, "amount_fen"),  # under the site's ¥10
        ({"amount_fen": 1_000_001}, "amount_fen"),
        ({"amount_fen": "lots"}, "amount_fen"),
        ({"amount_fen": 5_000, "channel": "alipay"}, "channel"),  # not enabled on this site
        ({"amount_fen": 5_000, "channel": "cash"}, "channel"),
    ]:
        answer = await tenant.post(path, json=body)
        assert answer.status_code == 422, body
        assert answer.json()["detail"]["field"] == field, body

    wechat = pay_app.payments.providers[Channel.WECHAT]
    down = dataclasses.replace(pay_app.sandbox.wechat_config(), base_url="http://127.0.0.1:9")
    unconfigured = PaymentSettings().wechat_config()
    try:
        async with WechatPayProvider(down) as provider:
            pay_app.payments.providers[Channel.WECHAT] = provider
            answer = await tenant.post(path, json={"amount_fen": 5_000})
            assert answer.status_code == 502 and answer.json()["error"] == "platform_unavailable"
        pay_app.payments.providers[Channel.WECHAT] = WechatPayProvider(unconfigured)
        answer = await tenant.post(path, json={"amount_fen": 5_000})
        assert answer.status_code == 503, answer.text
        assert answer.json()["message"] == "在线充值暂未开通，请联系物业缴费"
    finally:
        pay_app.payments.providers[Channel.WECHAT] = wechat

    account.status = AccountStatus.CLOSED
    await account.save(update_fields=["status"])
    answer = await tenant.post(path, json={"amount_fen": 5_000})
    assert answer.status_code == 409 and answer.json()["error"] == "account_closed"


async def test_an_order_of_another_tenant_is_404(pay_app: PayApp) -> None:
    mine, theirs = await create_account(), await create_account()
    me, them = await tenant_of(pay_app, mine), await tenant_of(pay_app, theirs)
    answer = await them.post(f"/api/v1/accounts/{theirs.id}/recharge", json={"amount_fen": 5_000})
    order_no = answer.json()["order_no"]
    assert (await them.get(f"/api/v1/orders/{order_no}")).status_code == 200
    stranger = await me.get(f"/api/v1/orders/{order_no}")
    assert stranger.status_code == 404  # exactly as an order that does not exist
    assert stranger.json() == {"error": "not_found", "message": "订单不存在",
                               "detail": {"order_no": order_no}}  # fmt: skip
    assert (await me.get("/api/v1/orders/R20260101nosuchorder")).status_code == 404
