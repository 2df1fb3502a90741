"""Logging: one format for every process; library chatter kept at WARNING.

Workers report what they did as *events*: one line per round, one per state change
(`log_event(log, "bus_down", "…", bus=key)`). The fields ride on the record (`event`,
`fields`), so tests read them from caplog and `SHUIDIAN_LOG_FORMAT=json` prints them as one
JSON object per line for a log collector; the text format prints the message alone.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

NOISY = (
    "tortoise",
    "aiosqlite",
    "asyncpg",
    "amqtt",
    "transitions",
    "pymodbus",
    "httpx",
    "sanic.access",
)


def log_event(
    logger: logging.Logger,
    event: str,
    message: str,
    *args: object,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """Log `message % args` with the event's name and fields attached to the record."""
    logger.log(level, message, *args, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, event and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event:
            out["event"] = event
            out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
            )
        )
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
