"""The CLI: a wrong setting ends with one line naming it, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _shuidian(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHUIDIAN_DB_URL", "postgres://postgres@127.0.0.1:1/nowhere"),
        ("SHUIDIAN_DB_URL", "mysql://root@127.0.0.1/x"),
        ("SHUIDIAN_TIMEZONE", "Mars/Olympus"),
        ("SHUIDIAN_PORT", "not-a-number"),
    ],
)
def test_demo_with_a_bad_setting_stops_with_one_line(
    variable: str, value: str, tmp_path: Path
) -> None:
    result = _shuidian("demo", env={variable: value}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_migrate_then_seed_registers_the_sample_park(tmp_path: Path) -> None:
    env = {"SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/s.sqlite3", "SHUIDIAN_DEMO_METERS": "130"}
    assert _shuidian("migrate", env=env, cwd=tmp_path).returncode == 0
    first = _shuidian("seed", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = _shuidian("seed", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert first.stdout.split(":", 1)[1] == again.stdout.split(":", 1)[1]  # idempotent
    assert "meters" in first.stdout


def test_usage_backfill_runs_on_a_migrated_database(tmp_path: Path) -> None:
    env = {"SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/u.sqlite3"}
    assert _shuidian("migrate", env=env, cwd=tmp_path).returncode == 0
    result = _shuidian("usage", "backfill", "--meters-per-batch", "10", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "daily usage rebuilt for 0 meters" in result.stdout


def test_serve_answers_healthz_with_its_own_database_connection(tmp_path: Path) -> None:
    """`shuidian serve` connects in a start-up listener; requests run in other tasks."""
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/serve.sqlite3",
        "SHUIDIAN_PORT": str(port),
        "SHUIDIAN_MQTT_URL": "mqtt://127.0.0.1:1883",
    }
    assert _shuidian("migrate", env=env, cwd=tmp_path).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    body = json.load(r)
                    break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "server did not answer"
        assert body["checks"]["database"] == {"ok": True, "detail": "sqlite"}
        assert body["status"] == "healthy"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    "args",
    [("ledger", "check"), ("createadmin", "--username", "a", "--password", "x" * 12),
     ("worker", "payments"), ("serve",)],
)  # fmt: skip
def test_a_reader_without_a_database_says_which_and_creates_nothing(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    """`ledger check` after `./run demo` used to open data/shuidian.sqlite3, print a traceback
    and leave an empty file behind."""
    result = _shuidian(*args, env={}, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SHUIDIAN_DB_URL" in lines[0] and "data/shuidian.sqlite3" in lines[0]
    assert "data/demo.sqlite3" in lines[0]  # where the demo's database is
    assert list(tmp_path.iterdir()) == []  # no file, no data folder


def test_a_reader_of_an_empty_sqlite_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty.sqlite3").touch()
    env = {"SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/empty.sqlite3"}
    result = _shuidian("ledger", "check", env=env, cwd=tmp_path)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert "SHUIDIAN_DB_URL" in line and "never migrated" in line


@pytest.mark.postgres
def test_a_reader_of_a_postgres_database_without_tables_says_so(tmp_path: Path) -> None:
    import asyncio

    from tests.conftest import PG_ADMIN_URL, _pg_admin

    name = f"shuidian_empty_{os.getpid()}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        env = {"SHUIDIAN_DB_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"}
        result = _shuidian("ledger", "check", env=env, cwd=tmp_path)
        assert result.returncode != 0
        (line,) = result.stderr.strip().splitlines()
        assert "SHUIDIAN_DB_URL" in line and "never migrated" in line
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_ledger_check_of_a_migrated_database_runs(tmp_path: Path) -> None:
    env = {"SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/m.sqlite3"}
    assert _shuidian("migrate", env=env, cwd=tmp_path).returncode == 0
    result = _shuidian("ledger", "check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_tariffs_levy_capacity_runs_and_refuses_a_month_not_ended(tmp_path: Path) -> None:
    env = {"SHUIDIAN_DB_URL": f"sqlite://{tmp_path}/t.sqlite3"}
    assert _shuidian("migrate", env=env, cwd=tmp_path).returncode == 0
    done = _shuidian("tariffs", "levy-capacity", "--month", "2026-01", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2026-01 基本电费：本次征收 0 户 ¥0.00" in done.stdout
    future = _shuidian("tariffs", "levy-capacity", "--month", "2999-01", env=env, cwd=tmp_path)
    assert (
        future.returncode == 1
        and future.stderr.strip() == "shuidian: 该月尚未结束，不能征收基本电费"
    )
