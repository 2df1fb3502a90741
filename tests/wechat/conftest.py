"""The chatbot over our real app: create_app on an ephemeral port with a configured official
account (token, EncodingAESKey) whose WeChat API is the local fake (server.wechat.sandbox
FakeOfficialApi, built on the notifier's WeChat fake), and `WechatServer` signing and
posting what followers write as WeChat's server does. One app per test module."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sanic import Sanic

from server.core.app import create_app
from server.core.settings import Settings
from server.wechat.config import OfficialSettings
from server.wechat.sandbox import FakeOfficialApi, WechatServer
from server.wechat.service.inbox import Inbox
from tests.listening import listening

_names = itertools.count(1)
APPID, SECRET = "wx-official-test", "official-test-secret"
TOKEN = "test-token-123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters


@dataclass
class Bot:
    app: Sanic
    url: str
    api: FakeOfficialApi
    wechat: WechatServer

    @property
    def inbox(self) -> Inbox:
        return self.app.ctx.wechat_inbox


@pytest.fixture(scope="module")
async def chatbot(settings: Settings, _connected: None) -> AsyncIterator[Bot]:
    async with FakeOfficialApi(appid=APPID, secret=SECRET) as api:
        Sanic.test_mode = True
        app = create_app(settings, name=f"wechattest{next(_names)}", manage_db=False)
        official = OfficialSettings(
            appid=APPID, secret=SECRET, token=TOKEN, encoding_aes_key=AES_KEY,
            api_base_url=api.base_url, encryption="compatible",
        )  # fmt: skip
        app.ctx.wechat_settings = official
        async with listening(app) as url:
            wechat = WechatServer(url + "/wechat/official", official)
            yield Bot(app, url, api, wechat)
