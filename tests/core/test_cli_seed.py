"""`shuidian seed` registers every meter `shuidian simulate` serves with the same options —
MQTT gateway meters included — without opening the simulator's ports (it may be running)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.core.test_cli import _shuidian


def test_seed_registers_polled_and_gateway_meters_with_the_simulators_options(
    tmp_path: Path,
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()  # a simulator already listening on the DL/T 645 port: seed must not care
    port = taken.getsockname()[1]
    env = {"SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/s.sqlite3"}
    try:
        result = _shuidian(
            "seed", "--meters", "40", "--dlt645-port", str(port), "--gateway-size", "4",
            "--mqtt-url", "mqtt://127.0.0.1:1", "--poll-interval", "60", env=env, cwd=tmp_path,
        )  # fmt: skip
    finally:
        taken.close()
    assert result.returncode == 0, result.stderr
    assert "40 meters" in result.stdout and "polled every 60 s" in result.stdout
    again = _shuidian("seed", "--meters", "40", "--mqtt-url", "mqtt://127.0.0.1:1", env=env,
                      cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "40 meters" in again.stdout  # idempotent
