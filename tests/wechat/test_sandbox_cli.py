"""The demo's chatbot: with no SHUIDIAN_WECHAT_* in embedded mode the endpoint is the sandbox
official account (its fake WeChat API started with the app), and `shuidian wechat say`
signs and encrypts a follower's message as WeChat does. The demo's follower
oa-demo-<name> is linked by unionid to the mini-program's demo tenant o-demo-<name>."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sanic import Sanic

from server.accounts.models import TenantApp
from server.cli import main
from server.core.app import create_app
from server.core.settings import Settings
from server.wechat.sandbox import FakeOfficialApi
from tests.factories import bind, create_account, create_identity
from tests.listening import listening


@pytest.fixture(scope="module")
async def demo_url(settings: Settings, _connected: None) -> AsyncIterator[str]:
    assert settings.mode == "embedded"
    Sanic.test_mode = True
    app = create_app(settings, name="wechatsandbox", manage_db=False)
    async with listening(app) as url:
        yield url + "/wechat/official"


async def say(url: str, *args: str) -> int:
    return await asyncio.to_thread(main, ["wechat", "say", *args, "--url", url])


async def test_wechat_say_against_the_sandbox_account(
    db: None, demo_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    account = await create_account(number="Z-0001", balance_fen=30_000)
    mini = await create_identity(app=TenantApp.MINIAPP, openid="o-demo-zz", unionid="u-demo-zz")
    await bind(mini, account)
    assert await say(demo_url, "余额", "--openid", "oa-demo-zz") == 0
    assert "Z-0001" in capsys.readouterr().out  # linked by unionid: no binding needed
    assert await say(demo_url, "--click", "HELP", "--openid", "oa-someone", "--plain") == 0
    assert "余额 — 查看可用余额" in capsys.readouterr().out
    assert await say(demo_url, "余额", "--openid", "oa-someone") == 0
    assert "您还没有绑定户号" in capsys.readouterr().out


async def test_wechat_menu_publishes_menu_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeOfficialApi(appid="wx-oa-menu", secret="menu-secret") as api:
        for name, value in {
            "APPID": "wx-oa-menu",
            "SECRET": "menu-secret",
            "TOKEN": "t",
            "API_BASE_URL": api.base_url,
            "MINIAPP_APPID": "wx-mini",
        }.items():
            monkeypatch.setenv(f"SHUIDIAN_WECHAT_{name}", value)  # fmt: skip
        assert await asyncio.to_thread(main, ["wechat", "menu"]) == 0
        assert "menu published for wx-oa-menu" in capsys.readouterr().out
        assert api.menus[0]["button"][1] == {
            "type": "miniprogram", "name": "充值", "url": "https://mp.weixin.qq.com/",
            "appid": "wx-mini", "pagepath": "pages/recharge/recharge",
        }  # fmt: skip
        api.faults.append("40016")
        assert await asyncio.to_thread(main, ["wechat", "menu"]) == 2
        assert "WeChat refused the menu: 40016" in capsys.readouterr().err
