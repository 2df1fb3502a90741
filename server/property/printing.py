"""Print templates (自定义打印模板): a bill's or a counter receipt's paper, written by an
organisation's staff in Jinja2 and rendered in the sandbox, to HTML for the browser's print
and to PDF (WeasyPrint).

What a template can reach: the values it is given — plain dicts, lists, text and integers
that the service built from one bill or receipt (`VARIABLES` lists them) — and the filters
`money` (fen → ¥1,234.50) and `yuan` (fen → 1,234.50). Nothing else: no globals, no
attribute or item starting with `_` (refused on save, and the sandbox refuses it at render),
values HTML-escaped. Multiplying or formatting a text or list into something huge is refused
(`_Sandbox.call_binop`), and a rendered page over `OUTPUT_MAX` is an error. A template that
fails at render (a variable it does not have, a line it expects and the bill lacks) raises
`TemplateProblem` with what went wrong in Chinese; the pages show it instead of the paper.

PDF: `pdf(html)` — WeasyPrint fetches nothing but `data:` URLs (no file, no network: a
template's `<img src="file:///…">` or `http://…` is dropped), with the CJK fonts of the
machine (fontconfig: Noto Sans CJK, WenQuanYi Micro Hei, which `./run` installs).

    render(kind, source, context) -> str          the template's body (HTML)
    check(kind, source, context) -> str           save check: syntax, `_` access, a render
    document(kind, title, body, …) -> str         the whole page (browser and PDF alike)
    pdf(html) -> bytes
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from server.core.money import yuan

SOURCE_MAX = 20_000  # characters of a template's source
OUTPUT_MAX = 1_000_000  # characters of its rendered HTML
_SIZE_MAX = 10_000  # the longest text or list `*` or `%` may make


class PrintKind(StrEnum):
    BILL = "bill"  # 账单 (fees bill or postpaid period bill)
    RECEIPT = "receipt"  # 收款收据 (the counter's cash / bank transfer recharge)


KIND_LABELS = {PrintKind.BILL: "账单", PrintKind.RECEIPT: "收款收据"}

# What each kind's template is given (the editor lists these).
VARIABLES: dict[PrintKind, tuple[tuple[str, str], ...]] = {
    PrintKind.BILL: (
        ("org.name", "集团（物业公司）名称"),
        ("site.name", "园区名称"),
        ("account.number / .tenant_name / .room", "户号、租户、房间"),
        ("bill.number / .kind_label / .status_label", "账单号、类型、状态"),
        ("bill.period_start / .period_end / .period", "账期起止（止日为最后一天）"),
        ("bill.due_date / .issued_at", "缴费期限、出账时间（未出账为空）"),
        ("bill.total_fen / .paid_fen / .owed_fen", "合计、已缴、欠缴（分，配合 money/yuan）"),
        ("bill.total_words / .owed_words", "合计、欠缴大写"),
        ("lines", "明细列表，每行 line.label、line.amount_fen"),
        ("printed_at", "打印时间"),
    ),
    PrintKind.RECEIPT: (
        ("org.name", "集团（物业公司）名称"),
        ("site.name", "园区名称"),
        ("account.number / .tenant_name / .room", "户号、租户、房间"),
        ("receipt.reference", "收据号或银行流水号"),
        ("receipt.channel / .channel_label", "收款方式（cash/bank）及其名称"),
        ("receipt.amount_fen / .amount_words", "金额（分）及大写"),
        ("receipt.payer_name / .memo", "付款人、备注"),
        ("receipt.at / .recorded_by", "收款时间、收款人"),
        ("printed_at", "打印时间"),
    ),
}

FONTS = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", sans-serif'
PAGE = {
    PrintKind.BILL: "@page { size: A4; margin: 15mm; }",
    PrintKind.RECEIPT: "@page { size: A5 landscape; margin: 10mm; }",
}
_BASE_CSS = f"""
html {{ font-family: {FONTS}; font-size: 10.5pt; color: #000; }}
body {{ margin: 0; }}
.print-toolbar {{ display: flex; gap: .5rem; align-items: center; padding: .6rem 1rem;
  background: #212529; color: #fff; font-size: 14px; }}
.print-toolbar a, .print-toolbar button {{ color: #fff; background: #0d6efd; border: 0;
  border-radius: 4px; padding: .3rem .8rem; text-decoration: none; font: inherit;
  cursor: pointer; }}
.print-toolbar a.plain {{ background: transparent; border: 1px solid #6c757d; }}
.print-toolbar .spacer {{ flex: 1; }}
.print-problem {{ margin: 1rem; padding: 1rem; border: 1px solid #dc3545; color: #842029;
  background: #f8d7da; border-radius: 4px; white-space: pre-wrap; }}
@media screen {{
  body {{ background: #e9ecef; }}
  .sheet {{ background: #fff; margin: 1rem auto; padding: 12mm; box-shadow: 0 0 4px #999; }}
  .sheet.bill {{ max-width: 180mm; }}
  .sheet.receipt {{ max-width: 190mm; }}
}}
@media print {{ .no-print {{ display: none !important; }} }}
"""


# Our defaults: server/property/paper/*.html (the receipt's is the counter receipt as it was
# printed before there were templates, a fixed page then).
PAPER_DIR = Path(__file__).parent / "paper"
DEFAULTS = {kind: (PAPER_DIR / f"{kind.value}.html").read_text("utf-8") for kind in PrintKind}


class TemplateProblem(ValueError):
    """A template that may not be stored, or that failed on this bill; the message says what
    in Chinese."""


def _money(fen: int) -> str:
    return f"¥{yuan(int(fen)):,.2f}"


def _yuan(fen: int) -> str:
    return f"{yuan(int(fen)):,.2f}"


_WIDE = re.compile(r"%[-#0 +]*(\d{5,}|\*)|\.\d{5,}")


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's sandbox (lists and dicts read-only), which also refuses a `*`, `**` or `%`
    that would make a huge value."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if _sized(seq) and isinstance(n, int) and _sized(seq) * n > _SIZE_MAX:
                    raise TemplateProblem("模板生成的内容过长")
        elif operator_ == "**":
            if isinstance(right, int | float | Decimal) and abs(right) > 64:
                raise TemplateProblem("模板中的乘方过大")
        elif isinstance(left, str) and _WIDE.search(left):
            raise TemplateProblem("模板中的格式宽度过大")
        ops: dict[str, Callable[[Any, Any], Any]] = {
            "*": operator.mul, "**": operator.pow, "%": operator.mod,
        }  # fmt: skip
        return ops[operator_](left, right)


_env = _Sandbox(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
# No globals (range, cycler, lipsum, namespace, dict …): a paper needs none, and each is one
# more object a template could reach for.
_env.globals.clear()
_env.filters["money"] = _money
_env.filters["yuan"] = _yuan


@lru_cache(maxsize=64)
def _compiled(source: str) -> Any:
    return _env.from_string(source)


def _parse(source: str) -> Any:
    if not source.strip():
        raise TemplateProblem("模板内容不能为空")
    if len(source) > SOURCE_MAX:
        raise TemplateProblem(f"模板内容不能超过 {SOURCE_MAX} 个字符")
    try:
        tree = _env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", "?")
        raise TemplateProblem(f"模板语法错误（第 {line} 行）：{exc}") from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", "")
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(f"不允许访问内部属性：{name}")
    return tree


def render(kind: PrintKind, source: str | None, context: Mapping[str, Any]) -> str:
    """The template's HTML for these values (`source` None: our default for `kind`);
    TemplateProblem if it fails, whatever the reason."""
    source = DEFAULTS[kind] if source is None else source
    _parse(source)
    try:
        out = _compiled(source).render(**context)
    except TemplateProblem:
        raise
    except TemplateError as exc:  # UndefinedError, SecurityError, a syntax error
        raise TemplateProblem(f"模板无法渲染：{exc}") from None
    except Exception as exc:  # a filter given text, a division by zero …: the template's fault
        raise TemplateProblem(f"模板无法渲染：{type(exc).__name__}: {exc}") from None
    if len(out) > OUTPUT_MAX:
        raise TemplateProblem("模板生成的内容过长")
    return out


def check(kind: PrintKind, source: str, context: Mapping[str, Any]) -> str:
    """The preview of `source` with `context` if it may be stored; else TemplateProblem."""
    return render(kind, source, context)


_OPEN = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
)


def document(kind: PrintKind, title: str, body: str, *, head: str = "", before: str = "") -> str:
    """The whole page around a rendered template: our base and page CSS (fonts, the paper's
    size), the template's body in `<main class="sheet …">`. `head` (a script) and `before`
    (the toolbar, hidden when printing) only for the browser; the PDF gets neither."""
    return (
        f"{_OPEN}"
        f"<title>{escape(title)}</title><style>{_BASE_CSS}{PAGE[kind]}</style>{head}</head>"
        f'<body>{before}<main class="sheet {kind.value}" id="{kind.value}">{body}</main>'
        "</body></html>"
    )


def problem_document(title: str, message: str, *, before: str = "") -> str:
    """The page shown instead of the paper when the template failed."""
    body = f'<div class="print-problem" id="print-problem">打印模板出错：{escape(message)}</div>'
    return (
        f"{_OPEN}"
        f"<title>{escape(title)}</title><style>{_BASE_CSS}</style></head>"
        f"<body>{before}<main>{body}</main></body></html>"
    )


def pdf(html: str) -> bytes:
    """The page as PDF; nothing is fetched but `data:` URLs (CPU-bound: call it in a thread)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
    return HTML(string=html, url_fetcher=fetcher, base_url=None).write_pdf()  # type: ignore[no-any-return]
