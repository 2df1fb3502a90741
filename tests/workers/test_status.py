"""`shuidian status`: every collector and controller rewrites a status file after each pass
(last round, buses held and down); the command lists them and exits 1 when one went silent."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tests.core.test_cli import _shuidian
from tests.workers.conftest import Park
from tests.workers.helpers import until
from workers.collector import Collector
from workers.registry import DriverRegistry
from workers.status import StatusFile, read_all


async def test_a_running_collector_reports_its_rounds(park: Park, tmp_path: Path) -> None:
    collector = Collector(DriverRegistry(clock=park.now, timeout=2), clock=park.now)
    collector.status = StatusFile.for_worker(tmp_path, "collector", "t")
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop, tick=0.05))
    try:
        await until(lambda: bool(read_all(tmp_path)) and read_all(tmp_path)[0]["read"] is not None)
    finally:
        stop.set()
        await task
        await collector.registry.close()
    (status,) = read_all(tmp_path)
    assert status["worker"] == "collector-t" and status["read"] == collector.last_round.read  # type: ignore[union-attr]
    assert status["missed"] == 0 and status["buses_down"] == []
    assert len(status["buses_held"]) == len(collector.last_round.buses)  # type: ignore[union-attr]

    result = _shuidian("status", env={"SHUIDIAN_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok    collector-t@")

    path = next((tmp_path / "status").glob("*.json"))
    old = json.loads(path.read_text()) | {"updated_at": time.time() - 3600}
    path.write_text(json.dumps(old))
    result = _shuidian("status", env={"SHUIDIAN_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.startswith("STUCK collector-t@")
