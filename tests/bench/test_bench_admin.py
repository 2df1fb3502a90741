"""bench/admin.py kept runnable: the whole run with tiny numbers (a few rooms, a few requests
a page) against `shuidian serve` and the bare handler. No timed assertions: only that every
page answered (or is reported as not on this tree) and the dashboard counted the park."""

import os
import re
import shutil
import subprocess
import sys

import pytest


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_bench_admin_runs_with_tiny_numbers():
    env = {**os.environ}
    if "SHUIDIAN_TEST_PG" in env:
        env["SHUIDIAN_BENCH_PG"] = env["SHUIDIAN_TEST_PG"]
    argv = ["--rooms", "120", "--days", "2", "--usage-days", "2", "--requests", "3",
            "--workers", "1"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.admin", *argv],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = dict(re.findall(r"^\| (/admin/\S*|bare Sanic) \| ([^|]+) \|", done.stdout, re.M))
    assert rows["/admin/"].strip() == "200" and rows["/admin/figures"].strip() == "200"
    assert rows["bare Sanic"].strip() == "200"
    for path in ("/admin/rooms", "/admin/meters"):
        assert rows[path].strip() in {"200", "not on this tree"}, done.stdout
    # 120 meters, every 50th offline; accounts 33, 66, 99 in alarm; 100 in arrears
    assert "在线表计 118" in done.stdout and "离线表计 2" in done.stdout, done.stdout
    assert "告警账户 3" in done.stdout and "欠费账户 1" in done.stdout, done.stdout
    assert "goal p95 < 200 ms" in done.stdout and "load average" in done.stdout
