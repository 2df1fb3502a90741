"""What a worker is doing, for `shuidian status`: each collector and controller process
rewrites a small JSON file in `SHUIDIAN_DATA_DIR/status/` after every pass (atomically: a
temporary file renamed over the old one) — its last round, when it last passed, the buses
it holds. A file not rewritten for a while is a worker that is stuck or gone.

One host's processes share the data directory; on several hosts run `shuidian status` on
each (the events in the logs say the same for a log collector).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def status_dir(data_dir: Path) -> Path:
    return data_dir / "status"


@dataclass
class StatusFile:
    """One worker process's status file; `write(**fields)` replaces its content."""

    path: Path
    role: str
    name: str

    @classmethod
    def for_worker(cls, data_dir: Path, role: str, name: str = "") -> StatusFile:
        label = f"{role}-{name}" if name else role
        return cls(status_dir(data_dir) / f"{label}@{socket.gethostname()}.json", role, label)

    def write(self, **fields: Any) -> None:
        record = {"worker": self.name, "role": self.role, "pid": os.getpid(),
                  "host": socket.gethostname(), "updated_at": time.time(), **fields}  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, default=str))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def read_all(data_dir: Path) -> list[dict[str, Any]]:
    """Every worker's last status, by name."""
    out = []
    for path in sorted(status_dir(data_dir).glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # being replaced right now: the next look has it
            continue
    return out
