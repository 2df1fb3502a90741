"""Logging: one format for every process; library chatter kept at WARNING."""

from __future__ import annotations

import logging

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


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
