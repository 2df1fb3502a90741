"""Settings: one pydantic-settings class, `SHUIDIAN_*` environment variables over an optional
TOML file (`SHUIDIAN_CONFIG`, default ./shuidian.toml). Every default works in embedded mode.

Secrets (payment keys, SMS keys) come from the environment or from files outside the repo,
named by *_file settings; they are never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from server.core.errors import ConfigError

DEFAULT_CONFIG_FILE = "shuidian.toml"


class Settings(BaseSettings):
    """All of Shuidian's configuration. Field `x` is set by `SHUIDIAN_X` or `x = …` in TOML."""

    model_config = SettingsConfigDict(env_prefix="SHUIDIAN_", extra="forbid")

    mode: Literal["embedded", "production"] = "embedded"
    data_dir: Path = Path("data")
    # Database: sqlite://PATH (embedded) or postgres://user:pass@host:port/db (production).
    db_url: str = "sqlite://data/shuidian.sqlite3"
    db_pool_max: int = 20
    # Redis: empty means in-process queue and cache (embedded mode only).
    redis_url: str = ""
    # MQTT broker: empty means an in-process broker (embedded mode); else mqtt://host:port.
    mqtt_url: str = ""
    embedded_mqtt_port: int = 18830
    # The collector's MQTT session is persistent (the broker keeps gateway messages while it
    # is down) under a fixed client id: this one, or shuidian-collector-<host name>[-<name>].
    mqtt_client_id: str = ""
    # This worker process's name among others of its kind (two collectors on one host need
    # two names: each has its own MQTT session).
    worker_name: str = ""

    host: str = "127.0.0.1"
    port: int = 8000
    web_workers: int = 1
    public_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Shanghai"
    secret_key: str = Field(default="", repr=False)
    log_level: str = "INFO"
    # "json": one JSON object per line (time, level, logger, message, event and its fields).
    log_format: Literal["text", "json"] = "text"

    # Live values (meter_live: U, I, P, PF) are collected every Nth round: polled buses read
    # them with extra frames (a DL/T 645 meter: four more), so not every round by default;
    # gateways send them in their data messages, recorded from every Nth round of each.
    live_every_poll_rounds: int = Field(default=4, ge=1)
    live_every_gateway_rounds: int = Field(default=1, ge=1)
    # The collector bills readings left `pending` (a crash between ingest and billing, a
    # controller killed after a 点抄) every this many seconds, those stored at least that long
    # ago; `shuidian ledger check` lists readings pending longer than `pending_alert_s`.
    pending_sweep_s: float = Field(default=60.0, gt=0)
    pending_alert_s: float = Field(default=900.0, gt=0)
    # A polled meter's answer is awaited this long per request (collector and controller);
    # a slow RS-485 line behind a serial server may need more.
    meter_timeout_s: float = Field(default=1.0, gt=0)

    # --- What the web server tells the outside (health details, notification size) ------
    # /healthz answers its status alone; the details (database kind, broker address, errors)
    # go to loopback callers and to callers sending this token as `X-Health-Token`.
    health_token: str = Field(default="", repr=False)
    # Behind a reverse proxy on the same host every caller is loopback: set this to false.
    health_details_for_loopback: bool = True
    # The MQTT broker is probed (a real CONNECT) at most this often per web worker.
    health_mqtt_interval_s: float = Field(default=15.0, ge=0)
    # A payment notification is a few KB; a larger body is refused (413), nothing stored.
    notify_max_body_bytes: int = Field(default=65_536, ge=4_096)

    # Simulator used by `shuidian demo`.
    demo_meters: int = 240
    # 1.0 = real time; faster, the workers stamp polled readings with the park's clock
    # (`sim_clock`), as meters stamp theirs.
    demo_speed: float = 1.0
    demo_poll_interval_s: int = 60
    # Trials against a sped-up `shuidian simulate`: the line it prints (START/EPOCH/SPEED).
    # Polled readings are then stamped with the simulator's clock, as meters stamp theirs.
    sim_clock: str = ""

    @field_validator("db_url")
    @classmethod
    def _known_db(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://")):
            raise ValueError("must start with sqlite:// or postgres://")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("SHUIDIAN_CONFIG", DEFAULT_CONFIG_FILE)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
        return (init_settings, env_settings, toml)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a bad value raises ConfigError naming the setting in one line."""
    try:
        return Settings(**overrides)
    except Exception as exc:  # pydantic.ValidationError or a TOML parse error
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors():
            name = ".".join(str(p) for p in err.get("loc", ())) or "?"
            parts.append(f"SHUIDIAN_{name.upper()}: {err.get('msg')}")
        return "invalid setting " + "; ".join(parts)
    return f"invalid configuration: {exc}"
