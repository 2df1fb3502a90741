"""销户 and 过户 end to end against the payment sandbox and a real database: the final reading
billed, arrears refused, the wallet refunded online first and at the counter for the rest,
two-person approval above the threshold, a re-submit that repeats nothing, the balance
carried over to a new tenant through the ledger — and the ledger check clean after each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from server.accounts.models import Account, AccountBinding, AccountStatus, BindingTicket
from server.audit.models import OperationLog
from server.billing.pipeline import process_readings
from server.ledger import load
from server.ledger.posting import TxKind
from server.metering.models import Meter
from server.metering.reading import Reading
from server.metering.service.readings import IncomingReading
from server.payments.errors import SamePersonApproval
from server.payments.models import (
    CounterRefund,
    CounterRefundStatus,
    RechargeOrder,
    Refund,
    RefundStatus,
)
from server.payments.providers.base import Channel
from server.payments.service import (
    approve_counter_refund,
    record_counter_payment,
    reject_counter_refund,
    reject_refund,
)
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from server.tenancy.models import AccountClosing, ClosingStatus
from server.tenancy.service.closing import (
    Arrears,
    CloseRequest,
    FinalReading,
    close_account,
    closing_panel,
    closing_statement,
    complete_after_refund,
    continue_closing,
)
from server.tenancy.service.transfer import NewTenant, transfer_account
from tests.factories import bind, create_account, create_identity, create_meter
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    assert_ledger_sound,
    balance,
    drain,
    new_order,
    pay_app_fixture,
)

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
CLOSE_AT = T0 + timedelta(days=1)
SECRET = b"s" * 32
CLERK, MANAGER = "staff:1", "staff:2"


async def _tenant(pay: PayApp, *, rated_kw: int = 10) -> tuple[Account, Meter]:
    """An account on a flat 0.6583 元/kWh tariff with one meter read once at T0."""
    account = await create_account()
    plan = await create_plan(
        account.site_id, "电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "0.6583"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor=CLERK,
    )  # fmt: skip
    await assign(account.id, plan.id)
    meter = await create_meter(account, rated_kw=Decimal(rated_kw), online=True)
    await process_readings([IncomingReading(meter.id, Reading(T0, Decimal("1200.00")))], now=T0)
    return account, meter


async def _paid_wechat(pay: PayApp, account: Account, amount: int) -> RechargeOrder:
    order = await new_order(pay, Channel.WECHAT, amount, account=account)
    pay.sandbox.wechat.pay(order.out_trade_no)
    await drain(pay)
    return order


async def _cash(account: Account, amount: int, ref: str) -> None:
    await record_counter_payment(account.id, "cash", amount, ref, actor=CLERK)


def _request(meter: Meter, total: str | None, **kw: object) -> CloseRequest:
    final = FinalReading(meter.id, Decimal(total) if total is not None else None)
    return CloseRequest((final,), **kw)  # type: ignore[arg-type]


async def test_close_refunds_online_first_and_the_rest_at_the_counter(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    order = await _paid_wechat(pay_app, account, 10_000)
    await _cash(account, 5_000, "RC-1")
    site_ids = [account.site_id]
    # 10 kWh × 0.6583 = 6.583 元 → 658 fen billed from the final reading.
    closing = await close_account(
        pay_app.payments, site_ids, account.id, _request(meter, "1210.00"), actor=CLERK,
        now=CLOSE_AT,
    )  # fmt: skip
    assert await balance(account.id) == 0  # everything held for the refunds
    online = await Refund.get(order_id=order.id)
    counter = await CounterRefund.get(account_id=account.id)
    assert online.amount_fen == 10_000  # the online order's whole amount first
    assert (counter.amount_fen, counter.status) == (15_000 - 658 - 10_000, CounterRefundStatus.PAID)
    # Until WeChat confirms the online refund the account waits in the closing state (the
    # sandbox may have confirmed it already: then the closing is done at once).
    if closing.status is ClosingStatus.PENDING:
        assert (await Account.get(id=account.id)).status is AccountStatus.OPEN
    await drain(pay_app)  # REFUND.SUCCESS
    assert (await Refund.get(id=online.id)).status is RefundStatus.SUCCEEDED
    closing = await continue_closing(pay_app.payments, site_ids, account.id, actor=CLERK)
    assert closing.status is ClosingStatus.DONE
    closed = await Account.get(id=account.id)
    assert (closed.status, closed.balance_fen) == (AccountStatus.CLOSED, 0)
    meter = await Meter.get(id=meter.id)
    assert (meter.account_id, meter.room_id) == (None, account.room_id)  # type: ignore[attr-defined]
    statement = await closing_statement(site_ids, account.id)
    assert [m.final_total for m in statement.meters] == ["1210.00"]
    assert statement.meters[0].quantity == Decimal("10") and statement.meters[0].amount_fen == 658
    assert {r.kind for r in statement.refunds} == {"online", "counter"}
    assert dict(statement.money)["充值"] == 15_000
    assert await OperationLog.filter(action="account.close", target_id=str(account.id)).exists()
    await assert_ledger_sound()


async def test_large_counter_refund_waits_for_a_second_person(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    await _cash(account, 80_000, "RC-2")  # above the 50,000 fen approval threshold
    site_ids = [account.site_id]
    request = _request(meter, None, refund_channel="bank", payee_account="6222 0000 1111")
    closing = await close_account(
        pay_app.payments, site_ids, account.id, request, actor=CLERK, now=CLOSE_AT
    )
    again = await close_account(  # a re-submitted form repeats nothing
        pay_app.payments, site_ids, account.id, request, actor=CLERK, now=CLOSE_AT
    )
    assert again.id == closing.id and again.status is ClosingStatus.PENDING
    refund = await CounterRefund.get(account_id=account.id)
    assert await CounterRefund.filter(account_id=account.id).count() == 1
    assert (refund.status, refund.amount_fen, refund.channel.value) == (
        CounterRefundStatus.PENDING, 80_000, "bank",
    )  # fmt: skip
    panel = await closing_panel(site_ids, account.room_id)  # type: ignore[attr-defined]
    assert panel.closing is not None and panel.closing.status is ClosingStatus.PENDING
    with pytest.raises(SamePersonApproval):
        await approve_counter_refund(site_ids, refund.id, actor=CLERK)
    await approve_counter_refund(site_ids, refund.id, actor=MANAGER)
    closing = await complete_after_refund(account.id, actor=MANAGER)
    assert closing is not None and closing.status is ClosingStatus.DONE
    assert (await Account.get(id=account.id)).status is AccountStatus.CLOSED
    assert (await load(f"crefund:{refund.number}:settle")).kind is TxKind.REFUND_SETTLE
    await assert_ledger_sound()


async def test_a_rejected_refund_comes_back_and_is_asked_again(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    await _cash(account, 60_000, "RC-3")
    site_ids = [account.site_id]
    await close_account(
        pay_app.payments, site_ids, account.id, _request(meter, None), actor=CLERK, now=CLOSE_AT
    )
    first = await CounterRefund.get(account_id=account.id)
    await reject_counter_refund(site_ids, first.id, actor=MANAGER, reason="收款人信息有误")
    assert await balance(account.id) == 60_000  # back in the wallet, the account still open
    assert (await complete_after_refund(account.id, actor=MANAGER)).status is ClosingStatus.PENDING  # type: ignore[union-attr]
    await continue_closing(pay_app.payments, site_ids, account.id, actor=CLERK)
    second = await CounterRefund.filter(account_id=account.id).order_by("-id").first()
    assert second is not None and second.id != first.id and second.amount_fen == 60_000
    assert await balance(account.id) == 0
    await assert_ledger_sound()


async def test_arrears_must_be_paid_before_closing(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app, rated_kw=100)
    await _cash(account, 100, "RC-4")
    # 1000 kWh × 0.6583 = 658.30 元 consumed: the wallet goes to −658.30 + 1.00.
    with pytest.raises(Arrears, match=r"欠费 657\.30 元"):
        await close_account(
            pay_app.payments, [account.site_id], account.id, _request(meter, "2200.00"),
            actor=CLERK, now=CLOSE_AT,
        )  # fmt: skip
    assert not await AccountClosing.filter(account_id=account.id).exists()
    assert (await Account.get(id=account.id)).status is AccountStatus.OPEN
    assert await CounterRefund.all().count() == 0
    await assert_ledger_sound()


async def test_out_of_scope_account_is_not_found(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    from server.core.errors import NotFound

    with pytest.raises(NotFound):
        await close_account(
            pay_app.payments, [account.site_id + 999], account.id, _request(meter, None),
            actor=CLERK,
        )  # fmt: skip


async def test_transfer_carries_the_balance_over_to_the_new_tenant(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    await _cash(account, 20_000, "RC-5")
    identity = await create_identity()
    await bind(identity, account)
    result = await transfer_account(
        pay_app.payments, SECRET, [account.site_id], account.id,
        NewTenant("新租户有限公司", "13900139000", "NEW0001"), _request(meter, "1210.00"),
        carry_over=True, actor=CLERK, now=CLOSE_AT,
    )  # fmt: skip
    new = await Account.get(id=result.new_account.id)
    assert (new.balance_fen, new.room_id, new.tenant_name) == (
        20_000 - 658,
        account.room_id,
        "新租户有限公司",
    )  # type: ignore[attr-defined]
    assert result.closing.status is ClosingStatus.DONE and result.closing.carried_fen == 19_342
    old = await Account.get(id=account.id)
    assert (old.status, old.balance_fen) == (AccountStatus.CLOSED, 0)
    assert (await Meter.get(id=meter.id)).account_id == new.id  # same meter, new account
    assert not await AccountBinding.filter(account_id=account.id).exists()
    assert result.ticket is not None and result.ticket.token.startswith("SDB1.")
    assert await BindingTicket.filter(account_id=new.id).count() == 1
    transfer = await load(f"transfer:{result.closing.id}")
    assert transfer.kind is TxKind.TRANSFER
    assert await CounterRefund.all().count() == 0
    # Usage after the transfer bills the new tenant.
    later = CLOSE_AT + timedelta(hours=2)
    await process_readings(
        [IncomingReading(meter.id, Reading(later, Decimal("1211.00")))], now=later
    )
    assert (
        await Account.get(id=new.id)
    ).balance_fen == 19_342 - 65  # 0.6583 元, the 0.83 fen carried
    await assert_ledger_sound()


async def test_transfer_without_carry_over_refunds_the_old_tenant(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    await _cash(account, 20_000, "RC-6")
    result = await transfer_account(
        pay_app.payments, SECRET, [account.site_id], account.id,
        NewTenant("另一租户", "", "NEW0002"), _request(meter, None),
        carry_over=False, actor=CLERK, now=CLOSE_AT,
    )  # fmt: skip
    assert (await Account.get(id=result.new_account.id)).balance_fen == 0
    refund = await CounterRefund.get(account_id=account.id)
    assert (refund.amount_fen, refund.status) == (20_000, CounterRefundStatus.PAID)
    assert (await Account.get(id=account.id)).status is AccountStatus.CLOSED
    assert result.closing.status is ClosingStatus.DONE
    again = await transfer_account(  # re-submitted: the same transfer, no second account
        pay_app.payments, SECRET, [account.site_id], account.id,
        NewTenant("另一租户", "", "NEW0002"), _request(meter, None),
        carry_over=False, actor=CLERK, now=CLOSE_AT,
    )  # fmt: skip
    assert again.new_account.id == result.new_account.id and again.ticket is None
    assert await Account.filter(room_id=account.room_id).count() == 2  # type: ignore[attr-defined]
    await assert_ledger_sound()


async def test_a_rejected_online_refund_goes_to_the_counter_instead(pay_app: PayApp) -> None:
    account, meter = await _tenant(pay_app)
    order = await _paid_wechat(pay_app, account, 60_000)  # above the approval threshold
    site_ids = [account.site_id]
    await close_account(
        pay_app.payments, site_ids, account.id, _request(meter, None), actor=CLERK, now=CLOSE_AT
    )
    online = await Refund.get(order_id=order.id)
    assert online.status is RefundStatus.PENDING and await balance(account.id) == 0
    await reject_refund(online.id, actor=MANAGER, reason="改为现金退款")
    assert await balance(account.id) == 60_000
    await continue_closing(pay_app.payments, site_ids, account.id, actor=CLERK)
    assert await Refund.filter(order_id=order.id).count() == 1  # not asked of WeChat again
    counter = await CounterRefund.get(account_id=account.id)
    assert (counter.amount_fen, counter.status) == (60_000, CounterRefundStatus.PENDING)
    await approve_counter_refund(site_ids, counter.id, actor=MANAGER)
    closing = await complete_after_refund(account.id, actor=MANAGER)
    assert closing is not None and closing.status is ClosingStatus.DONE
    await assert_ledger_sound()
