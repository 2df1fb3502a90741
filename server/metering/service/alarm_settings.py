"""Alarm settings staff edit: a site's alarm levels (amounts, repeats, interval) and no-cut
windows (night, weekends, the holiday calendar), an account's override of them, and the
site's 保电 list (meters never cut automatically).

The stored JSON is `server.metering.service.config`'s; whether settings are valid is decided
by the pure rules themselves (`config.site_config` / `config.effective_config` build the
`AlarmConfig`, whose invariants — levels numbered 1..n, thresholds strictly decreasing,
repeats ≥ 1, a night window neither empty nor the whole day — refuse a bad one). Every save
is in the operation log; everything is scoped to the staff member's sites.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import InvalidOperation
from typing import Any

from server.accounts.models import Account
from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
from server.core.money import parse_yuan, yuan
from server.metering import nocut
from server.metering.alarms import AlarmConfig
from server.metering.models import AccountAlarmState, Meter, MeteringPolicy, MeterStatus
from server.metering.service import config

LEVELS = 3
UNKNOWN_YEAR_LABELS = {
    nocut.UnknownYear.NO_CUT: "日历未覆盖的年份一律不断电（保护租户）",
    nocut.UnknownYear.WEEKDAYS: "日历未覆盖的年份按周一至周五断电（农历节日不受保护）",
}


@dataclass(frozen=True, slots=True)
class LevelView:
    level: int
    threshold: str  # yuan, "50.00"
    repeat: int
    interval_h: int


@dataclass(frozen=True, slots=True)
class SettingsView:
    site_id: int
    levels: tuple[LevelView, ...]
    night_start: str  # "" = no night window
    night_end: str
    weekends: bool
    holidays: bool
    unknown_year: str
    auto_trip: bool
    auto_close: bool
    calendar_until: int  # last year the holiday calendar knows


def _view(site_id: int, cfg: AlarmConfig) -> SettingsView:
    policy = cfg.no_cut
    return SettingsView(
        site_id,
        tuple(
            LevelView(
                lv.level,
                f"{yuan(lv.threshold_fen)}",
                lv.repeat,
                int(lv.interval.total_seconds() // 3600),
            )
            for lv in cfg.levels
        ),
        policy.night_start.strftime("%H:%M") if policy.night_start else "",
        policy.night_end.strftime("%H:%M") if policy.night_end else "",
        policy.weekends,
        policy.holidays,
        policy.unknown_year.value,
        cfg.auto_trip,
        cfg.auto_close,
        calendar_last_year(),
    )


def calendar_last_year() -> int:
    """The last year the maintained holiday calendar (chinese_calendar) covers."""
    year = datetime.now().year + 3
    while year > 2000 and nocut.day_kind(datetime(year, 6, 1).date()) is nocut.DayKind.UNKNOWN:
        year -= 1
    return year


async def _site_raw(site_id: int) -> dict[str, Any]:
    row = await MeteringPolicy.get_or_none(site_id=site_id)
    return dict(row.alarm or {}) if row is not None else {}


def _site_of(site_ids: Sequence[int], site_id: int) -> int:
    if site_id not in site_ids:
        raise NotFound("站点不存在", site_id=site_id)
    return site_id


async def site_settings(site_ids: Sequence[int], site_id: int) -> SettingsView:
    """The site's alarm levels and no-cut windows (the defaults where none are stored)."""
    _site_of(site_ids, site_id)
    return _view(site_id, config.site_config(await _site_raw(site_id)))


def _fen(text: str, label: str) -> int:
    try:
        return parse_yuan(text or "")
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{label}请填写金额（元，最多两位小数）", value=text) from None


def _count(text: str, label: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise ValidationFailed(f"{label}应为 {low} 到 {high} 的整数", value=text)
    return int(text)


def _hhmm(text: str, label: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, "%H:%M").strftime("%H:%M")
    except ValueError:
        raise ValidationFailed(f"{label}格式应为 HH:MM", value=text) from None


def _checked(build: Any, raw: Any) -> Any:
    """Build the rules with the pure module: its refusal becomes a Chinese 422."""
    try:
        return build(raw)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        if "strictly decrease" in text:
            message = "各级告警金额必须逐级递减（1 级最高）"
        elif "night window" in text or "night_start" in text:
            message = "夜间不断电时段的开始和结束必须都填或都空，且不能相同"
        elif "close threshold" in text:
            message = "自动合闸金额不能低于断电金额"
        else:
            message = f"告警设置无效：{text}"
        raise ValidationFailed(message) from None


def _no_cut(form: Mapping[str, str]) -> dict[str, Any]:
    start = _hhmm(form.get("night_start", ""), "夜间开始时间")
    end = _hhmm(form.get("night_end", ""), "夜间结束时间")
    unknown = form.get("unknown_year") or nocut.UnknownYear.NO_CUT.value
    if unknown not in nocut.UnknownYear.__members__.values():
        raise ValidationFailed("节假日日历未覆盖年份的处理方式无效")
    return {
        "night_start": start, "night_end": end, "weekends": form.get("weekends") == "1",
        "holidays": form.get("holidays") == "1", "unknown_year": unknown,
    }  # fmt: skip


async def save_site_settings(
    site_ids: Sequence[int], site_id: int, form: Mapping[str, str], *, actor: str
) -> SettingsView:
    """Store a site's levels (threshold yuan, repeats, hours between repeats), no-cut windows
    and automatic trip/close, validated by the alarm rules; the operation log records it."""
    _site_of(site_ids, site_id)
    raw = await _site_raw(site_id)
    raw["levels"] = [
        {
            "threshold_fen": _fen(form.get(f"threshold_{n}", ""), f"{n} 级告警金额"),
            "repeat": _count(form.get(f"repeat_{n}", ""), f"{n} 级提醒次数", 1, 20),
            "interval_s": 3600 * _count(form.get(f"interval_{n}", ""), f"{n} 级间隔小时", 1, 720),
        }
        for n in range(1, LEVELS + 1)
    ]
    raw["no_cut"] = _no_cut(form)
    raw["auto_trip"] = form.get("auto_trip") == "1"
    raw["auto_close"] = form.get("auto_close") == "1"
    cfg = _checked(config.site_config, raw)
    await MeteringPolicy.update_or_create(defaults={"alarm": raw}, site_id=site_id)
    await record(
        actor, "修改告警与不断电设置", target_type="site", target_id=site_id, site_id=site_id,
        detail=raw,
    )  # fmt: skip
    return _view(site_id, cfg)


@dataclass(frozen=True, slots=True)
class AccountSettings:
    account_id: int
    site_id: int
    number: str
    tenant_name: str
    site: SettingsView  # the site's rules
    effective: SettingsView  # with the account's override
    override: dict[str, Any]

    @property
    def own_levels(self) -> dict[int, dict[str, str]]:
        """The account's own amount (yuan) and repeats per level, '' where it inherits."""
        return {
            int(n): {
                "threshold": str(yuan(lv["threshold_fen"])) if "threshold_fen" in lv else "",
                "repeat": str(lv.get("repeat", "")),
            }
            for n, lv in (self.override.get("levels") or {}).items()
        }


async def _account(site_ids: Sequence[int], account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id, site_id__in=list(site_ids))
    if account is None:
        raise NotFound("账户不存在", account_id=account_id)
    return account


async def account_settings(site_ids: Sequence[int], account_id: int) -> AccountSettings:
    """An account's alarm levels: the site's, its override, and the two merged."""
    account = await _account(site_ids, account_id)
    site_id: int = account.site_id  # type: ignore[attr-defined]
    site_raw = await _site_raw(site_id)
    row = await AccountAlarmState.get_or_none(account_id=account_id)
    override = dict(row.override or {}) if row is not None else {}
    effective = config.effective_config(site_raw, override, account.credit_limit_fen)
    return AccountSettings(
        account.id, site_id, account.number, account.tenant_name,
        _view(site_id, config.site_config(site_raw)), _view(site_id, effective), override,
    )  # fmt: skip


async def save_account_settings(
    site_ids: Sequence[int], account_id: int, form: Mapping[str, str], *, actor: str
) -> AccountSettings:
    """An account's own amounts and repeats per level ('' inherits the site's) and, when
    `own_no_cut` is ticked, its own no-cut windows; validated merged onto the site's rules."""
    account = await _account(site_ids, account_id)
    site_id: int = account.site_id  # type: ignore[attr-defined]
    override: dict[str, Any] = {}
    levels: dict[str, dict[str, int]] = {}
    for n in range(1, LEVELS + 1):
        level: dict[str, int] = {}
        if (form.get(f"threshold_{n}") or "").strip():
            level["threshold_fen"] = _fen(form[f"threshold_{n}"], f"{n} 级告警金额")
        if (form.get(f"repeat_{n}") or "").strip():
            level["repeat"] = _count(form[f"repeat_{n}"], f"{n} 级提醒次数", 1, 20)
        if level:
            levels[str(n)] = level
    if levels:
        override["levels"] = levels
    if form.get("own_no_cut") == "1":
        override["no_cut"] = _no_cut(form)
    site_raw = await _site_raw(site_id)
    _checked(lambda o: config.effective_config(site_raw, o, account.credit_limit_fen), override)
    row, _ = await AccountAlarmState.get_or_create(account_id=account_id)
    row.override = override
    await row.save(update_fields=["override"])
    await record(
        actor, "修改账户告警设置", target_type="account", target_id=account_id, site_id=site_id,
        detail=override,
    )  # fmt: skip
    return await account_settings(site_ids, account_id)


@dataclass(frozen=True, slots=True)
class ProtectedMeter:
    id: int
    address: str
    kind: str
    site: str
    room: str
    account: str
    tenant: str
    relay_state: str


async def protected_meters(site_ids: Sequence[int]) -> list[ProtectedMeter]:
    """The 保电 list: active meters of the scope the platform never cuts automatically."""
    rows = (
        await Meter.filter(site_id__in=list(site_ids), protected=True, status=MeterStatus.ACTIVE)
        .order_by("site__name", "address")
        .values(
            "id", "address", "kind", "site__name", "room__name", "account__number",
            "account__tenant_name", "relay_state",
        )
    )  # fmt: skip
    return [
        ProtectedMeter(
            r["id"], r["address"], str(r["kind"]), r["site__name"], r["room__name"] or "",
            r["account__number"] or "", r["account__tenant_name"] or "", str(r["relay_state"]),
        )
        for r in rows
    ]  # fmt: skip
