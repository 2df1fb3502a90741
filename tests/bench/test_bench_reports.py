"""bench/reports.py kept runnable: the whole run with tiny numbers (50 meters, 40 days of
daily usage, 2 days of books). No timed assertions: only that both reports and the raw
queries ran, and the monthly report covered every account."""

import os
import subprocess
import sys

import pytest


@pytest.mark.postgres
def test_bench_reports_runs_with_tiny_numbers():
    env = {**os.environ}
    if "SHUIDIAN_TEST_PG" in env:
        env["SHUIDIAN_BENCH_PG"] = env["SHUIDIAN_TEST_PG"]
    argv = ["--rooms", "50", "--usage-days", "40", "--days", "2", "--repeat", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.reports", *argv],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "monthly report rows: 50;" in done.stdout, done.stdout
    for label in ("monthly_report (every account)", "compare_report (site, YoY)",
                  "raw SQL: two years of daily usage per month"):  # fmt: skip
        assert label in done.stdout, done.stdout
