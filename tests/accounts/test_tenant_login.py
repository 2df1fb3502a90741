"""WeChat login over the real app and the fake WeChat API (real HTTP both ways)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from server.accounts.config import TenantSettings
from server.accounts.models import TenantIdentity
from server.accounts.sandbox import FakeWechat
from server.accounts.service.keys import check_production, secret_key
from server.accounts.service.login import WechatLogin
from server.core.errors import ConfigError
from server.core.settings import Settings
from tests.accounts.tenant_fixtures import tenant_app_fixture  # noqa: F401  (fixture)
from tests.factories import bind, create_account
from tests.payments.service_fixtures import PayApp


def fake(pay: PayApp) -> FakeWechat:
    """The fake WeChat API the app started (embedded mode without an AppID)."""
    return pay.app.ctx.wechat_sandbox


async def post_login(pay: PayApp, code: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=pay.url, timeout=30) as client:
        return await client.post("/api/v1/auth/login", json={"code": code})


async def test_login_issues_a_token_that_opens_me(tenant_app: PayApp) -> None:
    code = fake(tenant_app).new_code("o-alice", unionid="u-alice")
    answer = await post_login(tenant_app, code)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"token", "expires_at", "identity"}
    assert body["expires_at"].endswith("+08:00")
    identity = await TenantIdentity.get(openid="o-alice")
    assert identity.unionid == "u-alice" and identity.last_login_at is not None
    assert body["identity"] == {"id": identity.id, "accounts": 0}
    async with httpx.AsyncClient(base_url=tenant_app.url) as client:
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json() == {"identity_id": identity.id, "nickname": "", "accounts": []}
    # code2Session was asked with the app's id and secret only: no access token fetched or sent
    [call] = [r for r in fake(tenant_app).requests if r.query.get("js_code") == code]
    assert set(call.query) == {"appid", "secret", "js_code", "grant_type"}
    assert all(r.path == "/sns/jscode2session" for r in fake(tenant_app).requests)
    assert "session_key" not in answer.text


async def test_login_again_is_the_same_identity_and_counts_its_accounts(
    tenant_app: PayApp,
) -> None:
    first = await post_login(tenant_app, fake(tenant_app).new_code("o-bob"))
    identity = await TenantIdentity.get(openid="o-bob")
    await bind(identity, await create_account())
    again = await post_login(tenant_app, fake(tenant_app).new_code("o-bob", unionid="u-bob"))
    assert again.json()["identity"] == {"id": identity.id, "accounts": 1}
    assert again.json()["token"] != first.json()["token"]
    assert (await TenantIdentity.get(id=identity.id)).unionid == "u-bob"
    assert await TenantIdentity.filter(openid="o-bob").count() == 1


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        (45011, 429, "wechat_rate_limited"),
        (40226, 403, "wechat_user_blocked"),
        (-1, 502, "wechat_unavailable"),
        (500, 502, "wechat_unavailable"),
    ],
)
async def test_wechat_refusals_map_to_the_contract(
    tenant_app: PayApp, fault: int, status: int, error: str
) -> None:
    fake(tenant_app).fault = fault
    answer = await post_login(tenant_app, fake(tenant_app).new_code("o-carol"))
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.json()["message"]
    assert not await TenantIdentity.filter(openid="o-carol").exists()


async def test_unknown_and_used_codes_are_invalid(tenant_app: PayApp) -> None:
    unknown = await post_login(tenant_app, "never-issued")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "wechat_code_invalid"
    assert unknown.json()["detail"] == {"errcode": "40029"}
    code = fake(tenant_app).new_code("o-dave")
    assert (await post_login(tenant_app, code)).status_code == 200
    used = await post_login(tenant_app, code)
    assert used.status_code == 400
    assert used.json()["detail"] == {"errcode": "40163"}


async def test_wechat_down_is_502(tenant_app: PayApp) -> None:
    down = FakeWechat()
    await down.start()
    base_url = down.base_url
    await down.close()  # nothing listens there any more
    tenant_app.app.ctx.wechat_login = WechatLogin(down.appid, down.secret, base_url)
    answer = await post_login(tenant_app, "demo-zhang")
    assert answer.status_code == 502
    assert answer.json()["error"] == "wechat_unavailable"


async def test_wechat_too_slow_is_502(tenant_app: PayApp) -> None:
    wechat = fake(tenant_app)
    wechat.delay_s = 3
    tenant_app.app.ctx.wechat_login = WechatLogin(
        wechat.appid, wechat.secret, wechat.base_url, timeout_s=0.2
    )
    answer = await post_login(tenant_app, "demo-zhang")
    assert (answer.status_code, answer.json()["error"]) == (502, "wechat_unavailable")


async def test_a_missing_code_is_422(tenant_app: PayApp) -> None:
    async with httpx.AsyncClient(base_url=tenant_app.url) as client:
        answer = await client.post("/api/v1/auth/login", json={})
    assert answer.status_code == 422
    assert answer.json()["detail"] == {"field": "code"}


async def test_logins_run_off_the_event_loop(tenant_app: PayApp) -> None:
    """Several logins at once all succeed: the blocking wechatpy call runs in threads."""
    codes = [fake(tenant_app).new_code(f"o-many-{n}") for n in range(6)]
    answers = await asyncio.gather(*(post_login(tenant_app, c) for c in codes))
    assert [a.status_code for a in answers] == [200] * 6
    assert await TenantIdentity.filter(openid__startswith="o-many-").count() == 6


def test_production_refuses_to_start_without_its_secrets(settings: Settings) -> None:
    production = settings.model_copy(update={"mode": "production", "secret_key": "short"})
    tenant = TenantSettings(miniapp_appid="wx123", miniapp_secret="s")
    with pytest.raises(ConfigError, match="SHUIDIAN_SECRET_KEY"):
        check_production(production, tenant)
    production = production.model_copy(update={"secret_key": "k" * 32})
    with pytest.raises(ConfigError, match="SHUIDIAN_TENANT_MINIAPP_APPID"):
        check_production(production, TenantSettings(miniapp_appid=""))
    with pytest.raises(ConfigError, match="SHUIDIAN_TENANT_MINIAPP_SECRET"):
        check_production(production, TenantSettings(miniapp_appid="wx123", miniapp_secret=""))
    check_production(production, tenant)  # complete: no error
    assert secret_key(production) == b"k" * 32


async def test_production_app_does_not_start_without_an_appid(settings: Settings) -> None:
    from sanic import Sanic

    from server.core.app import create_app

    Sanic.test_mode = True
    app = create_app(
        settings.model_copy(update={"mode": "production", "secret_key": "k" * 40}),
        name="prodrefused", manage_db=False,
    )  # fmt: skip
    server = await app.create_server(host="127.0.0.1", port=0, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    with pytest.raises(ConfigError, match="SHUIDIAN_TENANT_MINIAPP_APPID"):
        await server.before_start()
    await server.close()


def test_embedded_key_is_made_once_and_shared(settings: Settings) -> None:
    embedded = settings.model_copy(update={"secret_key": ""})
    assert secret_key(embedded) == secret_key(embedded)
    assert len(secret_key(embedded)) >= 32


async def test_login_and_logout_with_sessions_in_redis(tenant_app: PayApp, redis: object) -> None:
    from server.accounts.service.sessions import RedisSessionStore

    tenant_app.app.ctx.tenant_sessions = RedisSessionStore(redis, 3600)
    token = (await post_login(tenant_app, "demo-redis")).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=tenant_app.url) as client:
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
