"""`shuidian report` in its own process: the monthly report of the seeded November as the
admin page exports it, opened with openpyxl; a wrong month or file is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from admin.report_pages import EXPORTS, export
from server.cli import REPORTS
from server.core.settings import Settings
from server.places.models import Site
from server.reports.periods import Month
from server.tariffs import LOCAL_TZ
from tests.accounts.test_tenant_qr_cli import shuidian
from tests.reports.seeded import seed_november


async def test_report_monthly_to_xlsx(
    db: None, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_november(monkeypatch)
    out = tmp_path / "november.xlsx"
    done = await shuidian(settings, "report", "monthly", "--site", "南山测试园", "--month",
                          "2026-11", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "月度综合报表 2026-11: 3 rows" in done.stdout
    rows = list(load_workbook(out).active.iter_rows(values_only=True))
    by_number = {r[4]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_number["A101"]["期末余额(元)"] == 231 and by_number["A102"]["期末余额(元)"] == 185.5
    park_sites = [(await Site.get(name="南山测试园")).id]
    for name in REPORTS:  # every report the command knows, in-process: each gives its sheets
        title, sheets = await export(name, park_sites, Month(2026, 11), LOCAL_TZ)
        assert title.startswith(EXPORTS[name]) and all(s.columns for s in sheets), name
    bad = await shuidian(settings, "report", "ranking", "--site", "1", "--month", "2026-13",
                         "--out", str(out))  # fmt: skip
    assert bad.returncode == 2 and "--month" in bad.stderr
