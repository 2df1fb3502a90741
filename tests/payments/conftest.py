"""Fixtures for the payment tests: sandbox keys (once), fake platforms, our notify endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.payments.providers.alipay import AlipayProvider
from server.payments.providers.base import NotificationRejected, RejectReason, VerifiedNotification
from server.payments.providers.wechat import WechatPayProvider
from server.payments.sandbox import PaymentSandbox, SandboxKeys
from server.payments.sandbox.http import HttpServer, Request, Response

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="session")
def sandbox_keys() -> SandboxKeys:
    return SandboxKeys.generate()


class RecordingSleep:
    """Stands in for asyncio.sleep in the notifier: records the (compressed) waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def recording_sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def sandbox(
    sandbox_keys: SandboxKeys, recording_sleep: RecordingSleep
) -> AsyncIterator[PaymentSandbox]:
    async with PaymentSandbox(sandbox_keys, time_scale=60, sleep=recording_sleep) as sb:
        yield sb


class MerchantEndpoint:
    """Our notify_url for the tests: verifies with the provider, answers like the service."""

    def __init__(self, verify: Callable[[dict[str, str], bytes], VerifiedNotification],
                 ok: Response, fail: Response) -> None:  # fmt: skip
        self.verify = verify
        self.ok, self.fail = ok, fail
        self.fail_next = 0  # answer 500 this many times first
        self.accepted: list[VerifiedNotification] = []
        self.rejected: list[RejectReason] = []
        self.server = HttpServer(self._handle)
        self.url = ""

    async def _handle(self, req: Request) -> Response:
        if self.fail_next > 0:
            self.fail_next -= 1
            return Response(500, b'{"code":"FAIL","message":"busy"}')
        try:
            self.accepted.append(self.verify(req.headers, req.body))
        except NotificationRejected as exc:
            self.rejected.append(exc.reason)
            return self.fail
        return self.ok


@pytest.fixture
async def wechat(sandbox: PaymentSandbox) -> AsyncIterator[WechatPayProvider]:
    async with WechatPayProvider(sandbox.wechat_config()) as provider:
        yield provider


@pytest.fixture
async def alipay(sandbox: PaymentSandbox) -> AsyncIterator[AlipayProvider]:
    async with AlipayProvider(sandbox.alipay_config()) as provider:
        yield provider


@pytest.fixture
async def wechat_endpoint(wechat: WechatPayProvider) -> AsyncIterator[MerchantEndpoint]:
    endpoint = MerchantEndpoint(
        lambda h, b: wechat.verify_notification(h, b, datetime.now(SHANGHAI)),
        Response(204),
        Response(401, b'{"code":"FAIL","message":"verify failed"}'),
    )
    endpoint.url = await endpoint.server.start() + "/notify/wechat"
    yield endpoint
    await endpoint.server.close()


@pytest.fixture
async def alipay_endpoint(alipay: AlipayProvider) -> AsyncIterator[MerchantEndpoint]:
    endpoint = MerchantEndpoint(
        lambda h, b: alipay.verify_notification(h, b, datetime.now(SHANGHAI)),
        Response(200, b"success"),
        Response(200, b"fail"),
    )
    endpoint.url = await endpoint.server.start() + "/notify/alipay"
    yield endpoint
    await endpoint.server.close()


def expires() -> datetime:
    return datetime.now(SHANGHAI) + timedelta(minutes=30)
