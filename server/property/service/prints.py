"""Print templates (自定义打印模板): each organisation's paper for bills and counter receipts,
edited by its staff, previewed with a real bill or receipt, printed by the browser and
downloaded as PDF (server.property.printing renders, in the Jinja2 sandbox).

    template_of(site_ids, site_id, kind) -> TemplateView      the organisation's or ours
    save_template / reset_template                             checked first, in the log
    preview(site_ids, site_id, kind, source, tz) -> Printed    a draft with the newest real one
    print_bill(site_ids, bill_id, tz) -> Printed
    print_receipt(site_ids, counter_payment_id, tz) -> Printed
    pdf_of(html) -> bytes                                      WeasyPrint, off the event loop

A template is given plain values only (`bill_context`, `receipt_context`: dicts, lists, text
and integers), never a model. The organisation is the site's: a site outside the caller's
sites is NotFound. A template that fails gives `Printed.problem` (its message), not an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from server.accounts.models import Account
from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
from server.core.money import in_words
from server.finance.service import counter
from server.payments.models import CounterPayment
from server.places.models import Site
from server.property import printing
from server.property.models import Bill, PrintTemplate
from server.property.printing import KIND_LABELS, PrintKind, TemplateProblem
from server.property.service.bills import get_bill


@dataclass(frozen=True, slots=True)
class TemplateView:
    kind: PrintKind
    label: str
    source: str  # the source in force (ours when the organisation has none)
    custom: bool  # the organisation's own
    default: str
    variables: tuple[tuple[str, str], ...]
    updated_by: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Printed:
    """One paper: the rendered template (`body`), or why it could not be (`problem`)."""

    kind: PrintKind
    site_id: int
    title: str
    body: str = ""
    problem: str = ""
    sample: bool = False  # rendered with stand-in values (no real bill or receipt yet)

    def html(self, *, head: str = "", before: str = "") -> str:
        if self.problem:
            return printing.problem_document(self.title, self.problem, before=before)
        return printing.document(self.kind, self.title, self.body, head=head, before=before)


def kind_of(text: str) -> PrintKind:
    try:
        return PrintKind(text)
    except ValueError:
        raise ValidationFailed("请选择模板类型（账单或收款收据）", field="kind") from None


async def _site(site_ids: Sequence[int], site_id: int) -> Site:
    site = await Site.get_or_none(id=site_id) if site_id in site_ids else None
    if site is None:
        raise NotFound("站点不存在")
    await site.fetch_related("organisation")
    return site


async def _source(organisation_id: int, kind: PrintKind) -> str | None:
    own = await PrintTemplate.get_or_none(organisation_id=organisation_id, kind=kind)
    return own.source if own else None


async def template_of(site_ids: Sequence[int], site_id: int, kind: PrintKind) -> TemplateView:
    site = await _site(site_ids, site_id)
    own = await PrintTemplate.get_or_none(organisation_id=site.organisation_id, kind=kind)  # type: ignore[attr-defined]
    default = printing.DEFAULTS[kind]
    return TemplateView(
        kind, KIND_LABELS[kind], own.source if own else default, own is not None, default,
        printing.VARIABLES[kind], own.updated_by if own else "", own.updated_at if own else None,
    )  # fmt: skip


async def save_template(
    site_ids: Sequence[int], site_id: int, kind: PrintKind, source: str, *, actor: str, tz: ZoneInfo
) -> Printed:
    """Store the organisation's template once it renders (with the newest real bill or
    receipt of the site, else stand-in values); ValidationFailed says what is wrong."""
    site = await _site(site_ids, site_id)
    checked = await preview(site_ids, site_id, kind, source, tz)
    if checked.problem:
        raise ValidationFailed(checked.problem, field="source")
    organisation_id = site.organisation_id  # type: ignore[attr-defined]
    async with in_transaction():
        own = await PrintTemplate.get_or_none(organisation_id=organisation_id, kind=kind)
        if own is None:
            await PrintTemplate.create(
                organisation_id=organisation_id, kind=kind, source=source, updated_by=actor
            )
        else:
            own.source, own.updated_by = source, actor
            await own.save()
        await record(
            actor, "property.print_template", target_type="print_template", target_id=kind.value,
            site_id=site_id, reason=f"修改打印模板（{KIND_LABELS[kind]}）",
            detail={"organisation": organisation_id, "source": source},
        )  # fmt: skip
    return checked


async def reset_template(
    site_ids: Sequence[int], site_id: int, kind: PrintKind, *, actor: str
) -> None:
    """Back to our default for the kind."""
    site = await _site(site_ids, site_id)
    organisation_id = site.organisation_id  # type: ignore[attr-defined]
    async with in_transaction():
        gone = await PrintTemplate.filter(organisation_id=organisation_id, kind=kind).delete()
        if gone:
            await record(
                actor, "property.print_template", target_type="print_template",
                target_id=kind.value, site_id=site_id,
                reason=f"恢复默认打印模板（{KIND_LABELS[kind]}）",
                detail={"organisation": organisation_id},
            )  # fmt: skip


# -- what a template is given --------------------------------------------------------------


def _now(tz: ZoneInfo) -> str:
    return datetime.now(UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M")


async def _account(account_id: int) -> dict[str, str]:
    account = await Account.get(id=account_id).select_related("room")
    room = account.room.name if account.room else ""  # type: ignore[attr-defined]
    return {"number": account.number, "tenant_name": account.tenant_name, "room": room}


async def bill_context(site_ids: Sequence[int], bill_id: int, tz: ZoneInfo) -> dict[str, Any]:
    """A bill of the caller's sites as a template sees it (NotFound outside them)."""
    bill = await get_bill(site_ids, bill_id)
    site = await _site(site_ids, bill.site_id)
    last = bill.period_end - timedelta(days=1)
    issued = bill.issued_at.astimezone(tz).strftime("%Y-%m-%d") if bill.issued_at else None
    return {
        "org": {"name": site.organisation.name},  # type: ignore[attr-defined]
        "site": {"name": site.name},
        "account": await _account(bill.account_id),
        "bill": {
            "number": bill.number, "kind": bill.kind.value, "kind_label": bill.kind_label,
            "status": bill.status.value, "status_label": bill.status_label,
            "period_start": bill.period_start.isoformat(), "period_end": last.isoformat(),
            "period": f"{bill.period_start.isoformat()} 至 {last.isoformat()}",
            "due_date": bill.due_date.isoformat() if bill.due_date else None,
            "issued_at": issued, "total_fen": bill.total_fen, "paid_fen": bill.paid_fen,
            "owed_fen": bill.owed_fen, "total_words": in_words(bill.total_fen),
            "owed_words": in_words(bill.owed_fen),
        },
        "lines": [{"label": label, "amount_fen": fen} for label, fen in bill.lines],
        "printed_at": _now(tz),
    }  # fmt: skip


async def receipt_context(
    site_ids: Sequence[int], counter_payment_id: int, tz: ZoneInfo
) -> tuple[int, dict[str, Any]]:
    """A counter payment's receipt as a template sees it, with its site's id."""
    r = await counter.receipt(site_ids, counter_payment_id, tz)
    site = await _site(site_ids, r.account.site_id)
    return r.account.site_id, {
        "org": {"name": site.organisation.name},  # type: ignore[attr-defined]
        "site": {"name": r.account.site},
        "account": {"number": r.account.number, "tenant_name": r.account.tenant_name,
                    "room": r.account.room},
        "receipt": {
            "reference": r.reference, "channel": r.channel, "channel_label": r.channel_label,
            "amount_fen": r.amount_fen, "amount_words": r.amount_words,
            "payer_name": r.payer_name, "memo": r.memo, "at": r.at.strftime("%Y-%m-%d %H:%M"),
            "recorded_by": r.recorded_by,
        },
        "printed_at": _now(tz),
    }  # fmt: skip


def sample_context(kind: PrintKind, tz: ZoneInfo) -> dict[str, Any]:
    """Stand-in values, for an organisation with no bill or receipt yet."""
    common = {
        "org": {"name": "示例物业集团"},
        "site": {"name": "示例园区"},
        "account": {"number": "H000001", "tenant_name": "示例租户", "room": "1号楼101"},
        "printed_at": _now(tz),
    }
    if kind is PrintKind.RECEIPT:
        return common | {
            "receipt": {
                "reference": "SJ000001", "channel": "cash", "channel_label": "现金",
                "amount_fen": 150000, "amount_words": in_words(150000), "payer_name": "示例付款人",
                "memo": "", "at": _now(tz), "recorded_by": "示例收款员",
            }
        }  # fmt: skip
    return common | {
        "bill": {
            "number": "CJ-1-1", "kind": "fees", "kind_label": "催缴账单", "status": "issued",
            "status_label": "待缴费", "period_start": "2026-11-01", "period_end": "2026-11-30",
            "period": "2026-11-01 至 2026-11-30", "due_date": "2026-12-15",
            "issued_at": "2026-12-01", "total_fen": 356000, "paid_fen": 0, "owed_fen": 356000,
            "total_words": in_words(356000), "owed_words": in_words(356000),
        },
        "lines": [
            {"label": "租金（2026-11-01至2026-11-30）", "amount_fen": 300000},
            {"label": "物业费（2026-11-01至2026-11-30）", "amount_fen": 56000},
        ],
    }  # fmt: skip


async def _newest(
    site_ids: Sequence[int], site_id: int, kind: PrintKind, tz: ZoneInfo
) -> dict[str, Any] | None:
    if kind is PrintKind.BILL:
        bill_id = await (
            Bill.filter(site_id=site_id).order_by("-id").first().values_list("id", flat=True)
        )
        return await bill_context(site_ids, int(bill_id), tz) if bill_id else None  # type: ignore[arg-type]
    payment_id = await (
        CounterPayment.filter(account__site_id=site_id)
        .order_by("-id")
        .first()
        .values_list("id", flat=True)
    )
    if not payment_id:
        return None
    return (await receipt_context(site_ids, int(payment_id), tz))[1]  # type: ignore[arg-type]


def _printed(
    kind: PrintKind, site_id: int, title: str, source: str | None, context: dict[str, Any]
) -> Printed:
    try:
        return Printed(kind, site_id, title, printing.render(kind, source, context))
    except TemplateProblem as problem:
        return Printed(kind, site_id, title, problem=str(problem))


async def preview(
    site_ids: Sequence[int], site_id: int, kind: PrintKind, source: str | None, tz: ZoneInfo
) -> Printed:
    """`source` (None: the template in force) with the site's newest bill or receipt."""
    site = await _site(site_ids, site_id)
    if source is None:
        source = await _source(site.organisation_id, kind)  # type: ignore[attr-defined]
    context = await _newest(site_ids, site_id, kind, tz)
    title = f"{KIND_LABELS[kind]}模板预览"
    printed = _printed(kind, site_id, title, source, context or sample_context(kind, tz))
    return Printed(kind, site_id, title, printed.body, printed.problem, sample=context is None)


async def print_bill(site_ids: Sequence[int], bill_id: int, tz: ZoneInfo) -> Printed:
    context = await bill_context(site_ids, bill_id, tz)
    bill = await Bill.get(id=bill_id).select_related("site")
    source = await _source(bill.site.organisation_id, PrintKind.BILL)  # type: ignore[attr-defined]
    title = f"账单 {context['bill']['number']}"
    return _printed(PrintKind.BILL, bill.site_id, title, source, context)  # type: ignore[attr-defined]


async def print_receipt(site_ids: Sequence[int], counter_payment_id: int, tz: ZoneInfo) -> Printed:
    site_id, context = await receipt_context(site_ids, counter_payment_id, tz)
    site = await _site(site_ids, site_id)
    source = await _source(site.organisation_id, PrintKind.RECEIPT)  # type: ignore[attr-defined]
    title = f"收款收据 {context['receipt']['reference']}"
    return _printed(PrintKind.RECEIPT, site_id, title, source, context)


async def pdf_of(html: str) -> bytes:
    """The page as PDF (WeasyPrint in a thread: a page takes tenths of a second of CPU)."""
    return await asyncio.to_thread(printing.pdf, html)
