"""Alarm rules and state as stored JSON, to and from the pure `alarms` dataclasses.

Site rules (`MeteringPolicy.alarm`) and an account's override (`AccountAlarmState.override`):

    {"levels": [{"threshold_fen": 5000, "repeat": 1, "interval_s": 86400}, …],
     "hysteresis_fen": 200, "close_threshold_fen": 0, "arrears_interval_s": 86400,
     "forecast_days": "2", "forecast_clear_days": "1", "auto_trip": true, "auto_close": true,
     "no_cut": {"night_start": "20:00", "night_end": "08:00", "weekends": true,
                "holidays": true, "unknown_year": "no_cut"}}

An override has the same keys; its "levels" is a mapping {"2": {"threshold_fen": 1000}}.
The account's credit limit is `Account.credit_limit_fen` (the ledger's floor), not JSON.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from server.metering import nocut
from server.metering.alarms import (
    AlarmConfig,
    AlarmLevel,
    AlarmOverride,
    AlarmState,
    LevelOverride,
    merge,
)

_SCALARS = ("hysteresis_fen", "close_threshold_fen", "auto_trip", "auto_close")


def _no_cut(raw: dict[str, Any] | None) -> nocut.NoCutPolicy | None:
    if raw is None:
        return None

    def _t(key: str, default: time | None) -> time | None:
        if key not in raw:
            return default
        return None if raw[key] is None else time.fromisoformat(raw[key])

    base = nocut.NoCutPolicy()
    return nocut.NoCutPolicy(
        night_start=_t("night_start", base.night_start),
        night_end=_t("night_end", base.night_end),
        weekends=bool(raw.get("weekends", base.weekends)),
        holidays=bool(raw.get("holidays", base.holidays)),
        unknown_year=nocut.UnknownYear(raw.get("unknown_year", base.unknown_year)),
    )


def _common(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: raw[k] for k in _SCALARS if k in raw}
    if "arrears_interval_s" in raw:
        out["arrears_interval"] = timedelta(seconds=int(raw["arrears_interval_s"]))
    if "forecast_days" in raw:
        days = raw["forecast_days"]
        out["forecast_days"] = None if days is None else Decimal(str(days))
    if "forecast_clear_days" in raw:
        out["forecast_clear_days"] = Decimal(str(raw["forecast_clear_days"]))
    policy = _no_cut(raw.get("no_cut"))
    if policy is not None:
        out["no_cut"] = policy
    return out


def site_config(raw: dict[str, Any] | None) -> AlarmConfig:
    """A site's AlarmConfig from its stored JSON (empty: the defaults)."""
    raw = raw or {}
    kw = _common(raw)
    if "levels" in raw:
        kw["levels"] = tuple(
            AlarmLevel(
                i + 1,
                int(lv["threshold_fen"]),
                repeat=int(lv.get("repeat", 1)),
                interval=timedelta(seconds=int(lv.get("interval_s", 86400))),
            )
            for i, lv in enumerate(raw["levels"])
        )
    return AlarmConfig(**kw)


def account_override(raw: dict[str, Any] | None) -> AlarmOverride | None:
    if not raw:
        return None
    kw = _common(raw)
    levels = {
        int(n): LevelOverride(
            threshold_fen=lv.get("threshold_fen"),
            repeat=lv.get("repeat"),
            interval=timedelta(seconds=int(lv["interval_s"])) if "interval_s" in lv else None,
        )
        for n, lv in (raw.get("levels") or {}).items()
    }
    return AlarmOverride(levels=levels, **kw)


def effective_config(
    site_raw: dict[str, Any] | None, override_raw: dict[str, Any] | None, credit_limit_fen: int
) -> AlarmConfig:
    """Site rules, the account's override on top, and the account's credit limit."""
    config = merge(site_config(site_raw), account_override(override_raw))
    if credit_limit_fen != config.credit_limit_fen:
        config = merge(config, AlarmOverride(credit_limit_fen=credit_limit_fen))
    return config


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def state_from_json(raw: dict[str, Any] | None) -> AlarmState:
    raw = raw or {}
    return AlarmState(
        level=int(raw.get("level", 0)),
        sent={int(k): int(v) for k, v in (raw.get("sent") or {}).items()},
        last_sent={
            int(k): datetime.fromisoformat(v) for k, v in (raw.get("last_sent") or {}).items()
        },
        forecast_raised=bool(raw.get("forecast_raised", False)),
        arrears_last_sent=_when(raw.get("arrears_last_sent")),
    )


def state_to_json(state: AlarmState) -> dict[str, Any]:
    last = state.arrears_last_sent
    return {
        "level": state.level,
        "sent": {str(k): v for k, v in state.sent.items()},
        "last_sent": {str(k): v.isoformat() for k, v in state.last_sent.items()},
        "forecast_raised": state.forecast_raised,
        "arrears_last_sent": None if last is None else last.isoformat(),
    }
