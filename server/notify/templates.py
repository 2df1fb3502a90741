"""Message templates in Chinese: one per event kind, rendered by Jinja2's sandboxed
environment. An organisation may store its own text for a key (notify_template): it is
checked on save by `check_override` (a syntax error, a variable the template does not have,
or any `_`-attribute such as `__class__` is refused with a message saying which) and rendered
in the same sandbox, so a template can read the values it is given and nothing else.

Where an override applies: the channels whose provider takes free text — e-mail (body),
voice (the TTS template's single `text` variable), official-account template messages (the
`remark` field) and the delivery log. SMS (Alibaba/Tencent) and mini-program subscribe
messages send the providers' approved templates with `sms_params` / `wechat_data`: their
wording is the provider's, so the default text is what the log shows for them.

`render(key, params)` gives the text a recipient reads; `wechat_data(key, params)` the
subscribe message's `data` fields, each cut to WeChat's limits (thing ≤ 20 characters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

THING_MAX = 20  # WeChat's `thing` field: at most 20 characters
TEXT_MAX = 500  # an override's source and its rendered text (notify_message.text)


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    subject: str  # e-mail subject, delivery log title
    text: str  # Jinja2 source
    purpose: str | None  # the subscribe template's purpose (accounts.config.Purpose)
    # The variables the providers' approved SMS template takes, in its order (Tencent Cloud
    # numbers them {1}, {2}…; Alibaba Cloud names them ${account}…).
    sms_params: tuple[str, ...] = ("account", "balance")
    # The variables beyond the common ones (COMMON) its event gives: an override may use these.
    extra: tuple[str, ...] = ("message", "level")
    audience: str = "tenant"  # "tenant" (owner, accountant) or "staff"
    voice: bool = False  # also called by voice (urgent ones only: a call costs and wakes)
    # What a recipient switches channels on and off for (KINDS): several templates, one kind.
    kind: str = "alarm"


COMMON = ("site", "account", "tenant", "balance")
# Message kinds, as a recipient's channel preferences name them: tenant kinds, then staff.
KINDS = {
    "alarm": "余额告警",
    "trip": "断电/恢复",
    "recharge": "充值到账",
    "bill": "账单",
    "arrears": "欠费催缴",
    "gateway": "网关离线",
    "reconciliation": "对账差异",
}
TENANT_KINDS = ("alarm", "trip", "recharge", "bill", "arrears")
STAFF_COMMON = ("site",)


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
        voice=True,
        kind="trip",
    ),
    Template(
        "alarm.close",
        "恢复供电/供水通知",
        "【{{ site }}】{{ account }} {{ tenant }}：余额 {{ balance }} 元，已恢复供电/供水。",
        "power_off",
        kind="trip",
    ),
    Template(
        "recharge.done",
        "充值到账通知",
        "【{{ site }}】{{ account }} {{ tenant }}：充值 {{ amount }} 元已到账，"
        "当前余额 {{ balance }} 元。",
        "recharge_done",
        ("account", "amount", "balance"),
        ("amount",),
        kind="recharge",
    ),
    Template(
        "bill.issued",
        "账单通知",
        "【{{ site }}】{{ account }} {{ tenant }}：{{ period }} 账单已出，应缴 {{ amount }} 元，"
        "请于 {{ due }} 前缴清。",
        None,
        ("account", "period", "amount", "due"),
        ("period", "amount", "due"),
        kind="bill",
    ),
    Template(
        "arrears.reminder",
        "欠费催缴通知",
        "【{{ site }}】{{ account }} {{ tenant }}：已欠费 {{ amount }} 元（{{ days }} 天），"
        "请尽快缴清，以免影响使用。",
        "low_balance",
        ("account", "amount", "days"),
        ("amount", "days"),
        voice=True,
        kind="arrears",
    ),
    Template(
        "invoice.issued",
        "电子发票已开具",
        "【{{ site }}】{{ account }} {{ tenant }}：您申请的电子发票（{{ amount }} 元）已开具，"
        "发票号码 {{ number }}，下载：{{ url }}",
        None,
        ("account", "amount", "number", "url"),
        ("amount", "number", "url"),
    ),
    Template(
        "staff.gateway_offline",
        "网关离线告警",
        "【{{ site }}】网关 {{ gateway }}（{{ name }}）已离线，最后上报 {{ last_seen }}，"
        "请检查供电和网络。",
        None,
        ("site", "gateway"),
        ("gateway", "name", "last_seen"),
        audience="staff",
        voice=True,
        kind="gateway",
    ),
    Template(
        "staff.reconciliation",
        "对账差异告警",
        "{{ channel }} {{ day }} 对账有差异：缺单 {{ missing }}，多单 {{ extra }}，"
        "金额不符 {{ mismatches }}，重复 {{ duplicates }}，请财务核查。",
        None,
        ("channel", "day"),
        ("channel", "day", "missing", "extra", "mismatches", "duplicates"),
        audience="staff",
        kind="reconciliation",
    ),
)
TEMPLATES: dict[str, Template] = {t.key: t for t in _ALL}
VOICE_KINDS = frozenset(t.kind for t in _ALL if t.voice)  # the kinds that may call

_env = SandboxedEnvironment(
    autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False
)
# No globals (range, cycler, lipsum, namespace …): a message template needs none, and each is
# one more object an override could reach for.
_env.globals.clear()
_compiled = {t.key: _env.from_string(t.text) for t in _ALL}


def variables(key: str) -> tuple[str, ...]:
    """What a template of `key` may use."""
    tpl = TEMPLATES[key]
    return (STAFF_COMMON if tpl.audience == "staff" else COMMON) + tpl.extra


def render(key: str, params: Mapping[str, Any], override: str | None = None) -> str:
    """The message's text (an organisation's `override` source when given); a missing
    parameter raises (a template bug, never a blank)."""
    compiled = _compiled[key] if override is None else _compile_override(override)
    return compiled.render(**params).strip()


@cache
def _compile_override(source: str) -> Any:
    return _env.from_string(source)


class TemplateRefused(ValueError):
    """An override that may not be stored; the message says why, in Chinese."""


def sample(key: str) -> dict[str, str]:
    """Stand-in values for every variable of `key` (the editor's preview, the save check)."""
    values = {"site": "示例园区", "account": "H000001", "tenant": "示例租户", "balance": "18.00"}
    values |= {"message": "余额不足 20.00 元", "level": "2", "amount": "120.00", "days": "7"}
    values |= {"period": "2026年11月", "due": "2026-12-15", "gateway": "GW-001"}
    values |= {"name": "1号楼网关", "last_seen": "2026-12-05 10:00", "channel": "微信支付"}
    values |= {"day": "2026-12-04", "missing": "1", "extra": "0", "mismatches": "0"}
    values |= {"duplicates": "0", "number": "26442000000000000001"}
    values |= {"url": "https://example.com/fp/1.pdf"}
    return {name: values.get(name, name) for name in variables(key)}


def check_override(key: str, source: str) -> str:
    """The override's preview (rendered with sample values) if it may be stored; else
    TemplateRefused naming the problem: unknown key, too long, a syntax error (with its line),
    a variable the template does not have, an attribute or item starting with `_`, or
    anything the sandbox refuses at render."""
    if key not in TEMPLATES:
        raise TemplateRefused(f"没有这个模板：{key}")
    if not source.strip():
        raise TemplateRefused("模板内容不能为空")
    if len(source) > TEXT_MAX:
        raise TemplateRefused(f"模板内容不能超过 {TEXT_MAX} 个字符")
    try:
        tree = _env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise TemplateRefused(f"模板语法错误（第 {line} 行）：{exc}") from None
    allowed = set(variables(key))
    unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
    if unknown:
        raise TemplateRefused(
            f"未知变量：{'、'.join(unknown)}（可用：{'、'.join(variables(key))}）"
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", "")
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateRefused(f"不允许访问内部属性：{name}")
    try:
        text = _env.from_string(source).render(**sample(key)).strip()
    except TemplateError as exc:  # SecurityError and UndefinedError are TemplateErrors
        raise TemplateRefused(f"模板无法渲染：{exc}") from None
    if len(text) > TEXT_MAX:
        raise TemplateRefused(f"渲染后的内容不能超过 {TEXT_MAX} 个字符")
    return text


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


def official_data(key: str, params: Mapping[str, Any], text: str) -> dict[str, dict[str, str]]:
    """The official account's template message fields (first, keyword1–2, remark): the
    subject, who, the balance or amount, and the rendered text (the override's) as remark."""
    tpl = TEMPLATES[key]
    who = f"{params.get('account', '')} {params.get('tenant', '')}".strip() or params.get(
        "site", ""
    )
    figure = params.get("amount") or params.get("balance") or ""
    return {
        "first": {"value": tpl.subject},
        "keyword1": {"value": str(who)},
        "keyword2": {"value": f"{figure} 元" if figure else ""},
        "remark": {"value": text},
    }
