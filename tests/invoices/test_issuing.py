"""Issuing through the (fake) platform: staff review or the auto-issue rule, submit, pending,
issued with numbers and links; the platform down → retried with back-off, then failed and
visible as such, retried by staff; a refusal failing with the platform's code; a rejection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from server.core.settings import Settings
from server.invoices.errors import InvoiceNotFound, WrongInvoiceState
from server.invoices.models import Invoice, InvoiceStatus
from server.invoices.sandbox import FakeNuonuo
from server.invoices.service.issuing import approve, issue_round, reject, retry
from server.invoices.service.requests import invoiceable, request_invoice
from server.invoices.service.views import account_invoices
from server.jobs.service import retry_delay
from server.notify.models import Message
from server.payments.models import Refund, RefundStatus
from server.payments.providers.base import Channel
from server.payments.service import request_refund
from tests.factories import create_account, create_organisation, create_site
from tests.invoices.fixtures import company, paid_counter, paid_online, set_up_invoicing
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    drain,
    new_order,
    pay_app_fixture,
)
from workers import invoices as invoices_worker

S = timedelta(seconds=1)


async def test_review_issue_retry_and_failures(db: None) -> None:
    org = await create_organisation()
    await set_up_invoicing(org.id, auto_issue_max_fen=5_000)
    site = await create_site(org)
    account = await create_account(site=site)
    big, small = await paid_online(account, 10_000), await paid_online(account, 3_000)
    async with FakeNuonuo(pending_polls=1) as fake:
        platform = fake.client()
        now = datetime.now(UTC)
        try:
            # above the auto-issue limit: waits for staff; the worker leaves it alone
            reviewed = await request_invoice(account.id, company(), [big], actor="tenant:o")
            assert reviewed.status is InvoiceStatus.REQUESTED
            assert (await issue_round(platform, now=now)).submitted == 0
            with pytest.raises(InvoiceNotFound):  # another site's clerk does not see it
                await approve(reviewed.id, actor="staff:9", site_ids=[site.id + 1000])
            await approve(reviewed.id, actor="staff:1", site_ids=[site.id], now=now)
            with pytest.raises(WrongInvoiceState):
                await approve(reviewed.id, actor="staff:2", now=now)
            assert (await issue_round(platform, now=now)).submitted == 1
            assert (await Invoice.get(id=reviewed.id)).status is InvoiceStatus.ISSUING
            assert (await issue_round(platform, now=now + 6 * S)).waiting == 1  # 开票中
            assert (await issue_round(platform, now=now + 10 * S)).waiting == 0  # not due
            assert (await issue_round(platform, now=now + 40 * S)).issued == 1
            (seen,) = await account_invoices(account.id)
            assert (seen["status"], seen["status_label"]) == ("issued", "已开具")
            assert len(seen["invoice_no"]) == 20 and seen["pdf_url"].endswith(".pdf")
            # the link goes to the address given with the request, through the notifier
            (mail,) = await Message.filter(template="invoice.issued").values(
                "channel", "recipient", "text"
            )
            assert (mail["channel"], mail["recipient"]) == ("email", "finance@example.com")
            assert seen["invoice_no"] in mail["text"] and seen["pdf_url"] in mail["text"]

            # within the rule: queued at once; the platform is down → retried with back-off
            auto = await request_invoice(account.id, company(), [small], actor="tenant:o")
            assert (auto.status, auto.reviewed_by) == (InvoiceStatus.QUEUED, "auto")
            await fake.down()
            at = now + 60 * S
            for attempt in (1, 2):
                await issue_round(platform, now=at, max_attempts=3)
                row = await Invoice.get(id=auto.id)
                assert (row.status, row.attempts) == (InvoiceStatus.QUEUED, attempt)
                assert row.next_attempt_at == at + retry_delay(attempt)
                assert row.last_error.startswith("nuonuo.unreachable")
                assert (await issue_round(platform, now=at + S, max_attempts=3)).failed == 0
                at = row.next_attempt_at
            assert (await issue_round(platform, now=at, max_attempts=3)).failed == 1
            failed = next(i for i in await account_invoices(account.id) if i["id"] == auto.id)
            assert (failed["status"], failed["status_label"]) == ("failed", "开具失败")
            assert failed["error"].startswith("nuonuo.unreachable")
            # back up: staff retry it, it is issued
            await fake.up()
            fake.pending_polls = 0
            await retry(auto.id, actor="staff:1", now=at)
            assert (await issue_round(platform, now=at)).submitted == 1
            assert (await issue_round(platform, now=at + 6 * S)).issued == 1

            # the platform fails an accepted invoice: failed with its status and cause
            refused = await request_invoice(
                account.id, company(), [await paid_counter(account, 2_000)], actor="tenant:o"
            )
            fake.fail_orders[refused.number] = "购方名称与税号不匹配"
            await issue_round(platform, now=at)
            await issue_round(platform, now=at + 6 * S)
            row = await Invoice.get(id=refused.id)
            assert (row.status, row.last_error) == (
                InvoiceStatus.FAILED,
                "22: 购方名称与税号不匹配",
            )

            # a special invoice always waits for review; rejected, its money is free again
            special = company("special", address="深圳市福田区 1 号", phone="0755-1",
                              bank="招商银行深圳分行", bank_account="7559000000")  # fmt: skip
            ref = await paid_counter(account, 1_000)
            asked = await request_invoice(account.id, special, [ref], actor="tenant:o")
            assert asked.status is InvoiceStatus.REQUESTED
            await reject(asked.id, "抬头有误", actor="staff:1")
            assert (await invoiceable(account.id)).total_fen == 1_000
        finally:
            await platform.aclose()


async def test_refund_after_invoicing_reverses_the_invoice(pay_app: PayApp) -> None:
    """A WeChat Pay recharge invoiced, then partly refunded through the payment sandbox."""
    org = await create_organisation()
    await set_up_invoicing(org.id, auto_issue_max_fen=50_000)
    account = await create_account(site=await create_site(org))
    order = await new_order(pay_app, Channel.WECHAT, 10_000, account=account)
    pay_app.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay_app)
    async with FakeNuonuo(pending_polls=0) as fake:
        platform = fake.client()
        try:
            blue = await request_invoice(
                account.id, company(), [order.out_trade_no], actor="tenant:o"
            )
            now = datetime.now(UTC)
            await issue_round(platform, now=now)
            assert (await issue_round(platform, now=now + 6 * S)).issued == 1
            # the platform completes the refund when the test says (auto-completion raced the
            # request's own answer: on a fast run the notice settled it before it returned)
            pay_app.sandbox.wechat.auto_complete_refunds = False
            refund = await request_refund(
                pay_app.payments, order.out_trade_no, 3_000, reason="多充", actor="staff:1"
            )
            assert refund.status is not RefundStatus.SUCCEEDED  # in flight: nothing yet
            assert (await issue_round(platform, now=now + 7 * S)).reversals == 0
            pay_app.sandbox.wechat.complete_refund(refund.out_refund_no)
            await drain(pay_app)  # the platform's REFUND.SUCCESS notice settles it
            assert (await Refund.get(id=refund.id)).status is RefundStatus.SUCCEEDED
            done = await issue_round(platform, now=now + 8 * S)
            assert (done.reversals, done.submitted) == (1, 1)
            blue = await Invoice.get(id=blue.id)
            red = await Invoice.get(reverses_id=blue.id)
            assert (blue.status, red.amount_fen, red.tax_fen) == (
                InvoiceStatus.REVERSING, -10_000, -blue.tax_fen,
            )  # fmt: skip
            sent = fake.order(red.number)
            assert (sent["invoiceType"], sent["invoiceNum"]) == ("2", blue.invoice_no)
            assert (await issue_round(platform, now=now + 14 * S)).issued == 1
            assert (await Invoice.get(id=blue.id)).status is InvoiceStatus.REVERSED
            assert (await issue_round(platform, now=now + 60 * S)).reversals == 0  # once
            views = await account_invoices(account.id)
            assert [(v["status"], v["red"], v["amount_fen"]) for v in views] == [
                ("issued", True, -10_000), ("reversed", False, 10_000),
            ]  # fmt: skip
            # what the refund left of the payment can be invoiced again
            assert (await invoiceable(account.id)).total_fen == 7_000
        finally:
            await platform.aclose()


async def test_the_worker_issues_on_the_fake_platform_in_embedded_mode(
    db: None, settings: Settings
) -> None:
    """`shuidian worker invoices` without a Nuonuo app key, embedded: its own fake platform."""
    org = await create_organisation()
    await set_up_invoicing(org.id, auto_issue_max_fen=50_000)
    account = await create_account(site=await create_site(org))
    queued = await request_invoice(
        account.id, company(), [await paid_counter(account, 1_000)], actor="tenant:o"
    )
    assert settings.mode == "embedded"
    stop = asyncio.Event()
    worker = asyncio.create_task(invoices_worker.run(settings, stop, period=0.05))
    try:
        for _ in range(500):  # its first round submits it (due now): at most 10 s
            if (await Invoice.get(id=queued.id)).status is not InvoiceStatus.QUEUED:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await worker
    assert (await Invoice.get(id=queued.id)).status is InvoiceStatus.ISSUING
