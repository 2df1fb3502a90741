"""The admin panel over the real app: create_app on an ephemeral port, staff sessions and
sign-in counters in Redis (PostgreSQL run) or memory (SQLite run, embedded mode), their
clock a `FakeClock` the tests move forward instead of waiting. `Browser` is an httpx client
that keeps cookies, as a browser does."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from sanic import Sanic

from server.core.app import create_app
from server.core.settings import Settings
from server.places.models import Organisation, Site
from server.staff.config import StaffSettings
from server.staff.models import AdminUser, StaffRole
from server.staff.service.signin import staff_door
from server.staff.service.users import create_admin
from tests.conftest import TEST_DB
from tests.listening import listening

PASSWORD = "correct-horse-42"
_names = itertools.count(1)


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class AdminApp:
    app: Sanic
    url: str
    clock: FakeClock

    def browser(self) -> Browser:
        return Browser(base_url=self.url, timeout=30, follow_redirects=False)


class Browser(httpx.AsyncClient):
    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        form = await self.get("/admin/login")
        return await self.post(
            "/admin/login",
            data={"username": username, "password": password, "csrf_token": csrf_in(form)},
        )

    async def csrf(self) -> str:
        return csrf_in(await self.get("/admin/password"))


def main_of(page: httpx.Response) -> str:
    """The page's content without the nav bar (which names the signed-in staff member)."""
    return page.text.split("<main", 1)[-1]


def csrf_in(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


@pytest.fixture
async def admin_app(db: None, settings: Settings, redis_url: str) -> AsyncIterator[AdminApp]:
    from redis.asyncio import Redis

    Sanic.test_mode = True
    app = create_app(settings, name=f"admintest{next(_names)}", manage_db=False)
    clock = FakeClock()
    redis = Redis.from_url(redis_url) if TEST_DB != "sqlite" else None
    if redis is not None:
        await redis.flushdb()
    app.ctx.staff_door = staff_door(redis, StaffSettings(), clock=clock)
    try:
        async with listening(app) as url:
            yield AdminApp(app, url, clock)
    finally:
        if redis is not None:
            await redis.flushdb()
            await redis.aclose()


async def create_staff(
    username: str,
    role: StaffRole = StaffRole.ORG_ADMIN,
    organisation: Organisation | None = None,
    sites: list[Site] = (),  # type: ignore[assignment]
) -> AdminUser:
    user = await create_admin(
        username, PASSWORD, role=role, organisation=organisation, actor="system:test"
    )
    if sites:
        await user.sites.add(*sites)
    return user


@asynccontextmanager
async def signed_in(admin_app: AdminApp, username: str) -> AsyncIterator[Browser]:
    """A browser with `username` signed in (the password of `create_staff`)."""
    async with admin_app.browser() as browser:
        assert (await browser.sign_in(username)).status_code == 303, username
        yield browser
