"""bench/batch.py kept runnable: the whole run with tiny numbers (64 meters on 4 buses, the
simulator in its subprocess, a database of its own). No timed assertions: only that the
round read every meter, both batches ended with every meter terminal, and both rates print."""

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.postgres
def test_bench_batch_runs_with_tiny_numbers():
    env = {**os.environ}
    if "SHUIDIAN_TEST_PG" in env:
        env["SHUIDIAN_BENCH_PG"] = env["SHUIDIAN_TEST_PG"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch", "--meters", "64", "--per-bus", "16"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^round +64 .*'read': 64, 'missed': 0", out, re.M), out
    for phase in ("trip", "close"):
        assert re.search(rf"^{phase} +64 ", out, re.M), out
    assert re.search(r"collection round [\d,]+ reads/s; batch commands [\d,]+/s", out), out
    assert "every meter terminal: yes" in out and "load average" in out, out
