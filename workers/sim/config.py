"""The simulator's options, shared by `shuidian simulate` and `shuidian seed` (which
registers the meters of a simulator started with the same options). Light on imports: the
command line builds its parser from it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass
class SimConfig:
    meters: int = 2000
    speed: float = 60.0
    seed: int = 1
    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    host: str = "127.0.0.1"
    dlt645_port: int = 8645
    modbus_port: int = 5020  # first of consecutive ports
    modbus_rtu_port: int = 5120  # first of consecutive ports, one per ADF400L box
    cjt188_port: int = 8188
    mqtt_url: str | None = "mqtt://127.0.0.1:1883"
    mqtt_prefix: str = ""
    gateway_size: int = 50
    gateway_period: float = 15.0  # real seconds between realtime readings
    tick: float = 1.0  # real seconds between park advances


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SimConfig()
    p.add_argument("--meters", type=int, default=d.meters)
    p.add_argument("--speed", type=float, default=d.speed, help="simulated seconds per second")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--start", type=datetime.fromisoformat, default=None, help="ISO 8601")
    p.add_argument("--host", default=d.host)
    p.add_argument("--dlt645-port", type=int, default=d.dlt645_port)
    p.add_argument("--modbus-port", type=int, default=d.modbus_port)
    p.add_argument("--modbus-rtu-port", type=int, default=d.modbus_rtu_port)
    p.add_argument("--cjt188-port", type=int, default=d.cjt188_port)
    p.add_argument("--mqtt-url", default=d.mqtt_url, help="'' to run without gateways")
    p.add_argument("--mqtt-prefix", default=d.mqtt_prefix)
    p.add_argument("--gateway-size", type=int, default=d.gateway_size)
    p.add_argument("--gateway-period", type=float, default=d.gateway_period)
    p.add_argument("--tick", type=float, default=d.tick)


def config_from(ns: argparse.Namespace) -> SimConfig:
    """The SimConfig of parsed `add_arguments` options (other attributes are ignored)."""
    names = SimConfig.__dataclass_fields__.keys() - {"start"}
    cfg = SimConfig(**{k: v for k, v in vars(ns).items() if k in names})
    start = getattr(ns, "start", None)
    if start is not None:
        cfg.start = start if start.tzinfo else start.replace(tzinfo=UTC)
    return cfg
