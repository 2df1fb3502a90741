"""The notifier end to end: a meter's balance falls through the three alarm levels and trips;
the tenant gets the SMS and the WeChat message for each exactly once. De-duplication, rate
limit, retries with back-off, permanent failures, and two notifiers never sending one
message twice (PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.accounts.models import Account, SubscribeGrant
from server.ledger.service import adjust
from server.ledger.sql import fetch
from server.metering.models import MeterBilling
from server.metering.service.alarm_service import evaluate_accounts
from server.notify.models import Channel, Message, MessageState
from server.notify.sandbox import NotifySandbox
from server.notify.service.delivery import deliver_due
from server.notify.service.outbox import Event, enqueue
from tests.factories import bind, create_account, create_identity, create_meter

# A Wednesday, 10:00 in Shanghai: inside no no-cut window, so the last level trips.
T0 = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


@pytest.fixture
async def fakes() -> AsyncIterator[NotifySandbox]:
    async with NotifySandbox() as sandbox:
        yield sandbox


async def _tenant(phone: str = "13800138000") -> tuple[Account, str]:
    account = await create_account(phone=phone)
    await adjust(account.id, 10_000, key=f"t:{account.id}:open", actor="test", reason="测试")
    await create_meter(account, billing=MeterBilling.PLATFORM)
    identity = await create_identity()
    await bind(identity, account)
    for template_id in ("demo-low-balance", "demo-power-off"):
        await SubscribeGrant.create(identity=identity, template_id=template_id, remaining=9)
    return account, identity.openid


async def _fall_to(account: Account, fen: int, now: datetime) -> None:
    """The wallet at `fen` (a correction through the ledger), then the alarms evaluated."""
    current = (await Account.get(id=account.id)).balance_fen
    await adjust(
        account.id, fen - current, key=f"t:{account.id}:{fen}", actor="test", reason="测试"
    )
    await evaluate_accounts([account.id], now=now)


async def _deliver_all(fakes: NotifySandbox, now: datetime) -> None:
    senders = fakes.senders()
    try:
        while await deliver_due(senders, now=now):
            pass
    finally:
        for s in senders.values():
            await s.aclose()


async def test_levels_and_trip_arrive_once_by_sms_and_wechat(
    db: None, fakes: NotifySandbox
) -> None:
    account, openid = await _tenant()
    steps = [(4_000, "alarm.balance"), (1_500, "alarm.balance"), (0, "alarm.balance")]
    now = T0
    for fen, _ in steps:
        await _fall_to(account, fen, now)
        await evaluate_accounts([account.id], now=now + timedelta(seconds=5))  # evaluated again
        await _deliver_all(fakes, now + timedelta(seconds=10))
        now += timedelta(hours=2)
    messages = await Message.filter(account_id=account.id).order_by("id")
    topics = [(m.channel, m.topic) for m in messages]
    for channel in (Channel.SMS, Channel.WECHAT):
        mine = [t for c, t in topics if c is channel]
        assert mine == ["alarm.balance.1", "alarm.balance.2", "alarm.balance.3", "alarm.trip"]
    assert all(m.state is MessageState.SENT and m.provider_id for m in messages)
    assert len(fakes.aliyun.sent) == 4 and len(fakes.wechat.sent) == 4
    assert {s[0] for s in fakes.wechat.sent} == {openid}
    assert fakes.aliyun.sent[1][2] == {"account": account.number, "balance": "15.00", "level": "2"}
    left = await SubscribeGrant.filter(template_id="demo-low-balance").values_list(
        "remaining", flat=True
    )
    assert left == [9 - 3]  # one allowance spent per WeChat message


async def test_temporary_failure_retries_with_backoff_permanent_fails(
    db: None, fakes: NotifySandbox
) -> None:
    account, _ = await _tenant()
    bad, _ = await _tenant(phone="12345")
    await enqueue_low(account.id, bad.id)
    fakes.aliyun.faults.append("isv.BUSINESS_LIMIT_CONTROL")
    fakes.wechat.fault = "-1"
    await _deliver_all(fakes, T0)
    sms = await Message.get(account_id=account.id, channel=Channel.SMS)
    assert sms.state is MessageState.QUEUED and sms.error_code == "isv.BUSINESS_LIMIT_CONTROL"
    assert sms.attempts == 1 and sms.next_attempt_at > T0
    invalid = await Message.get(account_id=bad.id, channel=Channel.SMS)
    assert invalid.state is MessageState.FAILED
    assert invalid.error_code == "isv.MOBILE_NUMBER_ILLEGAL" and invalid.attempts == 1
    fakes.wechat.fault = None
    await _deliver_all(fakes, datetime.now(UTC) + timedelta(minutes=5))
    await sms.refresh_from_db()
    assert sms.state is MessageState.SENT and sms.attempts == 2
    wechat = await Message.get(account_id=account.id, channel=Channel.WECHAT)
    assert wechat.state is MessageState.SENT and wechat.attempts == 2
    grant = await SubscribeGrant.get(
        template_id="demo-low-balance", identity__openid=wechat.recipient
    )
    assert grant.remaining == 9 - 1  # the retry spent no second allowance
    assert await Message.filter(state=MessageState.SENT).count() == 3  # sms + two WeChat


async def enqueue_low(*account_ids: int, topic: str = "alarm.balance.1") -> int:
    from tortoise import connections

    events = [
        Event(
            a,
            "alarm.balance",
            f"t:{a}:{topic}:{datetime.now(UTC).timestamp()}",
            topic,
            {"message": "余额不足 50.00 元", "level": 1},
            4_000,
        )
        for a in account_ids
    ]
    return await enqueue(connections.get("default"), events, now=T0)


async def test_dedup_within_the_interval_and_rate_limit(db: None) -> None:
    account, _ = await _tenant()
    assert await enqueue_low(account.id) == 2  # SMS + WeChat
    assert await enqueue_low(account.id) == 0  # the same level within the interval
    assert await enqueue_low(account.id, topic="alarm.balance.2") == 2  # a new level speaks
    for n in range(3, 12):
        await enqueue_low(account.id, topic=f"alarm.balance.x{n}")
    sms = Message.filter(account_id=account.id, channel=Channel.SMS)
    assert await sms.filter(state=MessageState.QUEUED).count() == 10  # rate_per_hour
    limited = await sms.filter(error_code="local.rate_limited").count()
    assert limited == 1


@pytest.mark.postgres
async def test_two_notifiers_never_send_one_message_twice(db: None, fakes: NotifySandbox) -> None:
    accounts = [await create_account(phone=f"1390000{n:04d}") for n in range(60)]
    await enqueue_low(*(a.id for a in accounts))
    fakes.aliyun.delay_s = 0.01
    a, b = fakes.senders(), fakes.senders()

    async def notifier(senders: dict) -> int:
        total = 0
        while n := await deliver_due(senders, batch=7):
            total += n
        return total

    counts = await asyncio.gather(notifier(a), notifier(b))
    assert sum(counts) == 60 and all(counts)  # both worked, nothing claimed twice
    phones = [s[0] for s in fakes.aliyun.sent]
    assert len(phones) == 60 == len(set(phones))
    rows = await fetch(
        __import__("tortoise").connections.get("default"),
        "SELECT COUNT(*) AS n FROM notify_message WHERE state = 'sent' AND attempts = 1",
    )
    assert rows[0]["n"] == 60
    for s in [*a.values(), *b.values()]:
        await s.aclose()


async def test_delivery_log_search_is_scoped_and_resend_queues_a_new_message(db: None) -> None:
    from server.audit.models import OperationLog
    from server.core.errors import NotFound
    from server.core.paging import Paging
    from server.notify.service import deliveries

    account, _ = await _tenant()
    other, _ = await _tenant(phone="13900000000")
    await enqueue_low(account.id, other.id)
    page = await deliveries.search(
        [account.site_id], deliveries.Search(phone="1380", channel=Channel.SMS), Paging()
    )
    assert [m.account_id for m in page.items] == [account.id] and page.total == 1
    theirs = await Message.get(account_id=other.id, channel=Channel.SMS)
    with pytest.raises(NotFound):
        await deliveries.resend([account.site_id], theirs.id, actor="staff:1")
    again = await deliveries.resend([account.site_id], page.items[0].id, actor="staff:1")
    assert again.state is MessageState.QUEUED and again.recipient == "13800138000"
    assert await OperationLog.filter(action="重发消息", site_id=account.site_id).count() == 1


async def test_the_worker_in_embedded_mode_delivers_to_the_fakes(db: None, tmp_path: Path) -> None:
    """No provider configured: `shuidian demo`'s notifier starts the fakes and delivers."""
    from server.core.settings import load_settings
    from workers import notifier

    account, _ = await _tenant()
    await enqueue_low(account.id)
    stop = asyncio.Event()
    settings = load_settings(mode="embedded", data_dir=tmp_path)
    task = asyncio.create_task(notifier.run(settings, stop, period=0.05))
    for _ in range(100):
        if await Message.filter(state=MessageState.SENT).count() == 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert await Message.filter(state=MessageState.SENT).count() == 2
    assert not list((tmp_path / "status").glob("*.json"))  # its status file removed at exit


async def test_a_recharge_is_announced_once_by_the_payment_follow_up(
    db: None, fakes: NotifySandbox
) -> None:
    """充值到账: queued when the follow-up ends (same transaction), once however often it runs."""
    from server.ledger.posting import Channel as PayChannel
    from server.ledger.service import recharge
    from server.payments.models import CreditFollowUp
    from server.payments.service.followups import run_followups, run_pending_followups

    account, openid = await _tenant()
    identity_id = (await SubscribeGrant.filter(identity__openid=openid).first()).identity_id  # type: ignore[union-attr]
    await SubscribeGrant.create(
        identity_id=identity_id, template_id="demo-recharge-done", remaining=1
    )
    key = "pay:wechat:R20261205X1"
    await recharge(account.id, PayChannel.WECHAT, 12_345, key=key, actor="tenant:t")
    await CreditFollowUp.create(credit_key=key, account_id=account.id, reason="recharge")
    assert await run_followups([key]) == 1
    await CreditFollowUp.filter(credit_key=key).update(done_at=None)  # as if it ran again
    await run_pending_followups(older_than_s=0)
    done = await Message.filter(template="recharge.done").order_by("channel")
    assert [m.channel for m in done] == [Channel.SMS, Channel.WECHAT]
    assert "充值 123.45 元已到账，当前余额 223.45 元" in done[0].text
    await _deliver_all(fakes, datetime.now(UTC))
    assert fakes.aliyun.sent[-1][2] == {
        "account": account.number, "amount": "123.45", "balance": "223.45"
    }  # fmt: skip
    assert fakes.wechat.sent[-1][1] == "demo-recharge-done"
