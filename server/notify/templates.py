"""Message templates in Chinese: one per event kind, rendered by Jinja2's sandboxed
environment (per-organisation overrides, later, will be the same source text from the
database, which is why the environment is the sandboxed one).

`render(key, params)` gives the text a recipient reads (SMS body, e-mail body, delivery log);
`wechat_data(key, params)` the subscribe message's `data` fields, each cut to WeChat's limits
(thing ≤ 20 characters). SMS providers send their own approved template with `params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

THING_MAX = 20  # WeChat's `thing` field: at most 20 characters


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    subject: str  # e-mail subject, delivery log title
    text: str  # Jinja2 source
    purpose: str | None  # the subscribe template's purpose (accounts.config.Purpose)
    # The variables the providers' approved SMS template takes, in its order (Tencent Cloud
    # numbers them {1}, {2}…; Alibaba Cloud names them ${account}…).
    sms_params: tuple[str, ...] = ("account", "balance")


_ALL = (
    Template(
        "alarm.balance",
        "余额不足提醒",
        "【{{ site }}】{{ account }} {{ tenant }}：{{ message }}（第{{ level }}级提醒）",
        "low_balance",
        ("account", "balance", "level"),
    ),
    Template(
        "alarm.forecast",
        "余额不足提醒",
        "【{{ site }}】{{ account }} {{ tenant }}：{{ message }}",
        "low_balance",
    ),
    Template(
        "alarm.arrears",
        "欠费提醒",
        "【{{ site }}】{{ account }} {{ tenant }}：{{ message }}",
        "low_balance",
    ),
    Template(
        "alarm.trip",
        "断电/关阀通知",
        "【{{ site }}】{{ account }} {{ tenant }}：余额 {{ balance }} 元，已停止供电/供水，"
        "充值后自动恢复。",
        "power_off",
    ),
    Template(
        "alarm.close",
        "恢复供电/供水通知",
        "【{{ site }}】{{ account }} {{ tenant }}：余额 {{ balance }} 元，已恢复供电/供水。",
        "power_off",
    ),
    Template(
        "recharge.done",
        "充值到账通知",
        "【{{ site }}】{{ account }} {{ tenant }}：充值 {{ amount }} 元已到账，"
        "当前余额 {{ balance }} 元。",
        "recharge_done",
        ("account", "amount", "balance"),
    ),
)
TEMPLATES: dict[str, Template] = {t.key: t for t in _ALL}

_env = SandboxedEnvironment(
    autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False
)
_compiled = {t.key: _env.from_string(t.text) for t in _ALL}


def render(key: str, params: Mapping[str, Any]) -> str:
    """The message's text; a missing parameter raises (a template bug, never a blank)."""
    return _compiled[key].render(**params).strip()


def sms_params(key: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The SMS template's variables, as text, in the template's order."""
    return {name: str(params[name]) for name in TEMPLATES[key].sms_params}


def _thing(value: Any) -> str:
    text = str(value)
    return text if len(text) <= THING_MAX else text[: THING_MAX - 1] + "…"


def wechat_data(key: str, params: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The subscribe message's fields: account (thing1), balance (amount2), notice (thing3)."""
    title = TEMPLATES[key].subject
    return {
        "thing1": {"value": _thing(f"{params['account']} {params['tenant']}")},
        "amount2": {"value": str(params["balance"])},
        "thing3": {"value": _thing(params.get("message") or title)},
    }
