"""bench/chatbot.py kept runnable: the whole run with tiny numbers. No timed assertions:
only that every encrypted message got the follower's balance back."""

import os
import subprocess
import sys

import pytest


@pytest.mark.postgres
def test_bench_chatbot_runs_with_tiny_numbers():
    env = {**os.environ}
    if "SHUIDIAN_TEST_PG" in env:
        env["SHUIDIAN_BENCH_PG"] = env["SHUIDIAN_TEST_PG"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.chatbot", "--rate", "20", "--seconds", "1",
         "--followers", "3"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "20 messages" in done.stdout and "p99" in done.stdout
    assert done.stdout.strip().endswith("replies: OK")
