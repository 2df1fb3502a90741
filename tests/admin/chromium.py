"""Debian's Chromium for the admin's browser tests (headless, driven by Playwright; no
browser download): one launch, one watched page, one place for the artefacts. Screenshots
go to data/test-artefacts/admin/ (or $SHUIDIAN_TEST_ARTEFACTS) for a person to look at."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTEFACTS = Path(os.environ.get("SHUIDIAN_TEST_ARTEFACTS", "data/test-artefacts")) / "admin"
LAPTOP = {"width": 1280, "height": 900}

# Browser tests run once, in the PostgreSQL run, where ./run test has installed Chromium.
browser_only = [
    pytest.mark.postgres,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="./run test installs chromium"),
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def watched_page(browser: Browser, *, failed_loads: bool = True) -> tuple[Page, list[str]]:
    """A laptop-sized page in Chinese and the list its script errors, console errors and
    (with `failed_loads`) answers of 400 and above are collected in: a test ends with
    `assert errors == []`."""
    page = await browser.new_page(viewport=LAPTOP, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    if failed_loads:
        page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    return page, errors
