"""bench/api.py kept runnable: the whole run with tiny numbers (a few tenants, one-second
phases) against `shuidian serve` and the bare handler, and its parsers. No timed assertions:
only that every phase answered and nothing failed."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from bench.api import parse_hey, wrk_script

HEY_OUTPUT = """
Summary:
  Total:\t2.0051 secs
  Slowest:\t0.0650 secs
  Requests/sec:\t498.7

Latency distribution:
  10% in 0.0011 secs
  50% in 0.0023 secs
  99% in 0.0412 secs

Status code distribution:
  [200]\t990 responses
  [404]\t5 responses

Error distribution:
  [3]\tGet "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused
"""


def test_parse_hey_reads_percentiles_codes_and_errors():
    load = parse_hey(HEY_OUTPUT)
    assert load.requests == 998
    assert load.errors == 8  # the 404s and the refused connections
    assert load.seconds == pytest.approx(2.0051)
    assert load.p50_ms == pytest.approx(2.3)
    assert load.p99_ms == pytest.approx(41.2)
    assert parse_hey(HEY_OUTPUT.replace("  99% in 0.0412 secs\n", "")).p99_ms == pytest.approx(65)


def test_wrk_script_cycles_through_every_tenant():
    script = wrk_script([("/api/v1/accounts/1", "tok-a"), ("/api/v1/accounts/2", "tok-b")])
    assert '{"/api/v1/accounts/1","tok-a"},{"/api/v1/accounts/2","tok-b"}' in script
    assert '"Bearer " .. t[2]' in script
    assert "i % #targets + 1" in script


@pytest.mark.postgres
@pytest.mark.skipif(
    not (shutil.which("wrk") and shutil.which("hey") and shutil.which("redis-server")),
    reason="needs wrk, hey and redis-server (./run test installs wrk and hey)",
)
def test_bench_api_runs_with_tiny_numbers():
    env = {**os.environ}
    if "SHUIDIAN_TEST_PG" in env:
        env["SHUIDIAN_BENCH_PG"] = env["SHUIDIAN_TEST_PG"]
    argv = ["--tenants", "3", "--days", "2", "--seconds", "1",
            "--connections", "4", "--rate", "20", "--hey-workers", "2"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.api", *argv],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (ours|bare Sanic) \|(.*)$",
                                                        done.stdout, re.M)}  # fmt: skip
    assert set(rows) == {"ours", "bare Sanic"}, done.stdout
    for cells in rows.values():
        rate, _, errors, _, hey_rate, _, _, hey_errors = [c.strip() for c in cells.split("|")[:8]]
        assert float(rate.replace(",", "")) > 0 and float(hey_rate.replace(",", "")) > 0
        assert errors == "0" and hey_errors == "0"
    assert "ours ÷ bare" in done.stdout and "load average" in done.stdout
