"""An invoice's way through review and the platform.

    approve / reject (staff, REQUESTED)      retry (staff, FAILED → QUEUED)
    submit_due:  QUEUED  → ISSUING   (accepted)  | QUEUED again later (temporary failure)
                                                 | FAILED (refused, or out of attempts)
    poll_due:    ISSUING → ISSUED    (numbers and PDF/OFD links) | FAILED (platform's cause)

A red invoice (`reverses` set) goes the same way; when it is issued, the blue one it reverses
becomes REVERSED. The worker (workers/invoices.py) calls `issue_round` every few seconds.

Claims: due rows are taken `FOR UPDATE SKIP LOCKED` and pushed `LEASE` into the future
before the platform is called, so two workers never send one invoice at once; a worker that
dies leaves them due again when the lease ends. A second submit of an order the platform
already has is answered as accepted (its order number is ours), so nothing is issued twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from server.core.money import yuan
from server.invoices.errors import InvoiceNotFound, WrongInvoiceState
from server.invoices.models import Invoice, InvoiceLine, InvoiceProfile, InvoiceStatus
from server.invoices.providers.base import (
    BillingLine,
    BillingOrder,
    InvoicePlatform,
    IssueResult,
    Outcome,
    PlatformError,
)
from server.invoices.service.reversals import reverse_refunded
from server.jobs.service import retry_delay
from server.notify.models import Channel
from server.notify.service.outbox import Event, Recipient, enqueue
from server.places.models import Site

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
FIRST_POLL = timedelta(seconds=5)


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


async def _get(invoice_id: int, site_ids: Collection[int] | None) -> Invoice:
    query = Invoice.filter(id=invoice_id)
    if site_ids is not None:
        query = query.filter(site_id__in=list(site_ids) or [0])
    invoice = await query.first()
    if invoice is None:
        raise InvoiceNotFound("发票不存在", invoice_id=invoice_id)
    return invoice


async def _move(invoice: Invoice, from_: InvoiceStatus, label: str, **changes: object) -> Invoice:
    """Change the invoice only if it is still in `from_` (two clerks, one click wins)."""
    if invoice.status is not from_ or not await Invoice.filter(id=invoice.id, status=from_).update(
        **changes
    ):
        raise WrongInvoiceState(
            f"发票当前状态不能{label}", invoice_id=invoice.id, status=str(invoice.status)
        )
    await invoice.refresh_from_db()
    return invoice


async def approve(
    invoice_id: int, *, actor: str, site_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> Invoice:  # fmt: skip
    """Staff approve a request: it is queued for issuing at once."""
    invoice = await _get(invoice_id, site_ids)
    return await _move(
        invoice, InvoiceStatus.REQUESTED, "审核通过", status=InvoiceStatus.QUEUED,
        reviewed_by=actor, next_attempt_at=_now(now),
    )  # fmt: skip


async def reject(
    invoice_id: int, note: str, *, actor: str, site_ids: Collection[int] | None = None
) -> Invoice:
    """Staff refuse a request (its payments are invoiceable again)."""
    invoice = await _get(invoice_id, site_ids)
    return await _move(
        invoice, InvoiceStatus.REQUESTED, "驳回", status=InvoiceStatus.REJECTED,
        reviewed_by=actor, review_note=note.strip()[:200] or "驳回",
    )  # fmt: skip


async def retry(
    invoice_id: int, *, actor: str, site_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> Invoice:  # fmt: skip
    """Send a failed invoice again (after its cause is fixed), with fresh attempts."""
    invoice = await _get(invoice_id, site_ids)
    log.info("invoice %s retried by %s after %s", invoice.number, actor, invoice.last_error)
    return await _move(
        invoice, InvoiceStatus.FAILED, "重新开具", status=InvoiceStatus.QUEUED, attempts=0,
        next_attempt_at=_now(now),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Round:
    reversals: int = 0
    submitted: int = 0
    issued: int = 0
    failed: int = 0
    waiting: int = 0  # accepted, result not yet there

    @property
    def busy(self) -> bool:
        return bool(self.reversals or self.submitted or self.issued or self.failed)


async def issue_round(
    platform: InvoicePlatform, *, now: datetime | None = None, batch: int = 20,
    max_attempts: int = 8, poll_s: float = 30.0,
) -> Round:  # fmt: skip
    """One pass of the worker: red invoices for refunded ones, submit what is queued, ask
    about what is being issued."""
    now = _now(now)
    reversals = await reverse_refunded(now=now)
    submitted, failed_s = await submit_due(platform, now=now, batch=batch,
                                           max_attempts=max_attempts)  # fmt: skip
    issued, failed_p, waiting = await poll_due(platform, now=now, batch=batch, poll_s=poll_s)
    return Round(reversals, submitted, issued, failed_s + failed_p, waiting)


async def _claim(status: InvoiceStatus, now: datetime, batch: int) -> list[Invoice]:
    async with in_transaction():
        rows = (
            await Invoice.filter(status=status, next_attempt_at__lte=now)
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "id")
            .limit(batch)
        )
        if rows:
            await Invoice.filter(id__in=[r.id for r in rows]).update(next_attempt_at=now + LEASE)
    return list(rows)


async def _profiles(invoices: list[Invoice]) -> dict[int, InvoiceProfile | None]:
    """Each invoice's seller profile, by site id."""
    site_ids = {i.site_id for i in invoices}
    sites = {s.id: s.organisation_id for s in await Site.filter(id__in=list(site_ids))}
    profiles = {
        p.organisation_id: p
        for p in await InvoiceProfile.filter(organisation_id__in=list(set(sites.values())))
    }
    return {site_id: profiles.get(org_id) for site_id, org_id in sites.items()}


async def billing_order(invoice: Invoice, profile: InvoiceProfile) -> BillingOrder:
    """The invoice as the platform is asked for it."""
    lines = await InvoiceLine.filter(invoice_id=invoice.id).order_by("id")
    blue = await Invoice.get(id=invoice.reverses_id) if invoice.reverses_id else None
    return BillingOrder(
        order_no=invoice.number, seller_tax_id=profile.seller_tax_id,
        seller_address=profile.seller_address, seller_phone=profile.seller_phone,
        clerk=profile.drawer, buyer_name=invoice.buyer_name, buyer_tax_id=invoice.buyer_tax_id,
        special=invoice.kind == "special",
        lines=[BillingLine(x.name, x.tax_code, x.tax_rate, x.amount_fen, x.tax_fen)
               for x in lines],
        issued_on=invoice.created_at, buyer_address=invoice.buyer_address,
        buyer_phone=invoice.buyer_phone, buyer_bank=invoice.buyer_bank,
        buyer_bank_account=invoice.buyer_bank_account, email=invoice.email,
        mobile=invoice.phone, red=blue is not None,
        blue_invoice_code=blue.invoice_code if blue else "",
        blue_invoice_no=blue.invoice_no if blue else "", reason=invoice.reversal_reason,
    )  # fmt: skip


async def submit_due(
    platform: InvoicePlatform, *, now: datetime | None = None, batch: int = 20,
    max_attempts: int = 8,
) -> tuple[int, int]:  # fmt: skip
    """Send the queued invoices that are due; (accepted, failed)."""
    now = _now(now)
    invoices = await _claim(InvoiceStatus.QUEUED, now, batch)
    profiles = await _profiles(invoices)
    accepted = failed = 0
    for invoice in invoices:
        profile = profiles.get(invoice.site_id)
        if profile is None:
            await _failed(invoice, InvoiceStatus.QUEUED, "local.no_profile: 物业未配置开票信息")
            failed += 1
            continue
        attempts = invoice.attempts + 1
        try:
            serial = await platform.submit(await billing_order(invoice, profile))
        except PlatformError as exc:
            error = f"{exc.code}: {exc.message}"[:300]
            if exc.temporary and attempts < max_attempts:
                await Invoice.filter(id=invoice.id, status=InvoiceStatus.QUEUED).update(
                    attempts=attempts, last_error=error,
                    next_attempt_at=now + retry_delay(attempts),
                )  # fmt: skip
                log.warning("invoice %s: attempt %d failed (%s), again later",
                            invoice.number, attempts, error)  # fmt: skip
            else:
                await _failed(invoice, InvoiceStatus.QUEUED, error, attempts=attempts)
                failed += 1
            continue
        await Invoice.filter(id=invoice.id, status=InvoiceStatus.QUEUED).update(
            status=InvoiceStatus.ISSUING, attempts=attempts, last_error="",
            serial=serial or invoice.serial, next_attempt_at=now + FIRST_POLL,
        )  # fmt: skip
        accepted += 1
    return accepted, failed


async def _failed(invoice: Invoice, from_: InvoiceStatus, error: str, **more: object) -> None:
    await Invoice.filter(id=invoice.id, status=from_).update(
        status=InvoiceStatus.FAILED, last_error=error[:300], next_attempt_at=None, **more
    )
    log.warning("invoice %s failed: %s", invoice.number, error)


async def poll_due(
    platform: InvoicePlatform, *, now: datetime | None = None, batch: int = 20,
    poll_s: float = 30.0,
) -> tuple[int, int, int]:  # fmt: skip
    """Ask the platform about invoices being issued; (issued, failed, still waiting)."""
    now = _now(now)
    invoices = await _claim(InvoiceStatus.ISSUING, now, batch)
    profiles = await _profiles(invoices)
    by_seller: dict[str, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        profile = profiles.get(invoice.site_id)
        if profile is not None:
            by_seller[profile.seller_tax_id].append(invoice)
    issued = failed = waiting = 0
    later = now + timedelta(seconds=poll_s)
    for seller, group in by_seller.items():
        try:
            results = await platform.results(seller, [i.number for i in group])
        except PlatformError as exc:
            error = f"{exc.code}: {exc.message}"[:300]
            await Invoice.filter(id__in=[i.id for i in group]).update(
                next_attempt_at=now + retry_delay(2), last_error=error
            )
            log.warning("invoice results for %s: %s; asked again later", seller, error)
            waiting += len(group)
            continue
        known = {r.order_no: r for r in results}
        for invoice in group:
            result = known.get(invoice.number)
            if result is None:  # the platform lost it (or never had it): send it again
                await Invoice.filter(id=invoice.id, status=InvoiceStatus.ISSUING).update(
                    status=InvoiceStatus.QUEUED, next_attempt_at=now
                )
                waiting += 1
            elif result.outcome is Outcome.ISSUED:
                await _issued(invoice, result, now)
                issued += 1
            elif result.outcome is Outcome.FAILED:
                error = f"{result.code}: {result.message or '开票失败'}"
                await _failed(invoice, InvoiceStatus.ISSUING, error)
                failed += 1
            else:
                await Invoice.filter(id=invoice.id, status=InvoiceStatus.ISSUING).update(
                    next_attempt_at=later, serial=result.serial or invoice.serial
                )
                waiting += 1
    return issued, failed, waiting


async def _issued(invoice: Invoice, result: IssueResult, now: datetime) -> None:
    """Record the numbers and links; the blue invoice's link goes to the tenant (SMS to the
    phone, e-mail to the address given with the request) in the same transaction."""
    async with in_transaction() as conn:
        done = await Invoice.filter(id=invoice.id, status=InvoiceStatus.ISSUING).update(
            status=InvoiceStatus.ISSUED, serial=result.serial or invoice.serial,
            invoice_code=result.invoice_code, invoice_no=result.invoice_no,
            pdf_url=result.pdf_url, ofd_url=result.ofd_url, last_error="",
            issued_at=result.issued_at or now, next_attempt_at=None,
        )  # fmt: skip
        if done and invoice.reverses_id is not None:
            await Invoice.filter(id=invoice.reverses_id, status=InvoiceStatus.REVERSING).update(
                status=InvoiceStatus.REVERSED
            )
        elif done:
            to = [Recipient(Channel.SMS, invoice.phone)] if invoice.phone else []
            to += [Recipient(Channel.EMAIL, invoice.email)] if invoice.email else []
            url = result.pdf_url or result.ofd_url
            if to and url:
                params = {"amount": str(yuan(invoice.amount_fen)), "number": result.invoice_no,
                          "url": url}  # fmt: skip
                event = Event(invoice.account_id, "invoice.issued", f"invoice:{invoice.number}",
                              "invoice.issued", params, limited=False, to=tuple(to))  # fmt: skip
                await enqueue(conn, [event], now=now)
