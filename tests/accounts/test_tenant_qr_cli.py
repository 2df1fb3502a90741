"""`shuidian tenant qr` in its own process: the ticket it signs binds through the app (the
embedded key is shared through the data directory)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from server.accounts.models import BindingTicket
from server.core.settings import Settings
from tests.accounts.tenant_fixtures import login, tenant_app_fixture  # noqa: F401  (fixture)
from tests.factories import create_account, create_site
from tests.payments.service_fixtures import PayApp

ROOT = Path(__file__).resolve().parents[2]


async def shuidian(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHUIDIAN_DB_URL": settings.db_url,
           "SHUIDIAN_DATA_DIR": str(settings.data_dir)}  # fmt: skip
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "server.cli", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT),
    )  # fmt: skip


async def test_cli_qr_card_binds_as_accountant(
    tenant_app: PayApp, settings: Settings, tmp_path: Path
) -> None:
    site = await create_site(name="星河产业园")
    account = await create_account(site=site, number="A-0101", tenant_name="张记餐饮")
    out = tmp_path / "card.png"
    args = ["--site", "星河产业园", "--account", "A-0101", "--role", "accountant"]
    done = await shuidian(settings, "tenant", "qr", *args, "--hours", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "星河产业园 A-0101 (accountant)" in done.stdout
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width >= 400
    token = done.stdout.split("ticket: ", 1)[1].strip()
    ticket = await BindingTicket.get(account_id=account.id)
    assert ticket.created_by.startswith("cli:")
    tenant = await login(tenant_app)
    bound = await tenant.post("/api/v1/bind/qr", json={"ticket": token})
    assert bound.status_code == 200, bound.text
    assert bound.json()["account"]["role"] == "accountant"


async def test_cli_qr_pdf_by_site_id_and_its_errors(
    db: None, settings: Settings, tmp_path: Path
) -> None:
    account = await create_account()
    pdf = tmp_path / "card.pdf"
    done = await shuidian(settings, "tenant", "qr", "--site", str(account.site_id), "--account",
                          account.number, "--out", str(pdf))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    wrong = await shuidian(settings, "tenant", "qr", "--site", str(account.site_id),
                           "--account", "NO-SUCH", "--out", str(pdf))  # fmt: skip
    assert wrong.returncode == 1 and "户号" in wrong.stderr
    bad_out = await shuidian(settings, "tenant", "qr", "--site", "1", "--account", "x",
                             "--out", str(tmp_path / "card.jpg"))  # fmt: skip
    assert bad_out.returncode == 2 and "--out" in bad_out.stderr
