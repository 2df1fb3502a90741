"""Who hears what: owner and accountant (SMS, voice for urgent templates, mini-program and
official account), per-recipient channel preferences, staff alerts (gateway offline from the
gateway's own report, reconciliation differences) queued in the event's transaction, quiet
hours for voice, the organisation's template override (and the sandbox refusing what it
must), the bills/arrears entry points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from tortoise import connections

from server.accounts.models import AccountBinding, BindingRole, TenantApp
from server.core.errors import NotFound, ValidationFailed
from server.metering.service.gateway_status import gateway_status
from server.notify import templates
from server.notify.config import quiet_until
from server.notify.models import Channel, Message, MessageState, Role, TemplateOverride
from server.notify.sandbox import NotifySandbox
from server.notify.service import overrides, recipients
from server.notify.service.delivery import deliver_due
from server.notify.service.outbox import Event, enqueue
from server.notify.service.reminders import ArrearsNotice, BillNotice, arrears_due, bills_issued
from server.staff.models import AdminUser, StaffRole
from tests.admin.conftest import create_staff as _create_staff
from tests.factories import create_account, create_gateway, create_identity, create_site

NOON = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NIGHT = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
MORNING = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)  # 08:00 the next day in Shanghai


@pytest.fixture
async def fakes() -> AsyncIterator[NotifySandbox]:
    async with NotifySandbox() as sandbox:
        yield sandbox


async def create_staff(
    username: str,
    role: StaffRole,
    org: object,
    sites: list = (),
    phone: str = "",  # type: ignore[assignment]
    email: str = "",
) -> AdminUser:
    user = await _create_staff(username, role, org, sites)  # type: ignore[arg-type]
    await AdminUser.filter(id=user.id).update(phone=phone, email=email)
    return user


def trip(account_id: int, n: int = 0) -> Event:
    return Event(account_id, "alarm.trip", f"trip:{account_id}:{n}", "alarm.trip", {}, 0)


async def test_quiet_hours_arithmetic() -> None:
    assert quiet_until(NOON, "22:00", "08:00") is None
    assert quiet_until(NIGHT, "22:00", "08:00") == MORNING
    early = datetime(2026, 3, 4, 21, 0, tzinfo=UTC)  # 05:00 in Shanghai, same night
    assert quiet_until(early, "22:00", "08:00") == MORNING
    assert quiet_until(NOON, "12:00", "13:30") == datetime(2026, 3, 4, 5, 30, tzinfo=UTC)
    assert quiet_until(NIGHT, "08:00", "08:00") is None  # equal: no quiet hours


async def test_owner_and_accountant_over_every_channel_and_their_preferences(db: None) -> None:
    account = await create_account(phone="13800138000")
    mp_owner = await create_identity(app=TenantApp.OFFICIAL, openid="o-mp-owner")
    mp_accountant = await create_identity(app=TenantApp.OFFICIAL, openid="o-mp-acct")
    await AccountBinding.create(identity=mp_owner, account=account)
    await AccountBinding.create(
        identity=mp_accountant, account=account, role=BindingRole.ACCOUNTANT
    )
    conn = connections.get("default")
    assert await enqueue(conn, [trip(account.id)], now=NOON) == 4
    got = {(m.channel, m.recipient, m.role) for m in await Message.all()}
    assert got == {
        (Channel.SMS, "13800138000", Role.OWNER),
        (Channel.VOICE, "13800138000", Role.OWNER),  # the trip is urgent: a call too
        (Channel.OFFICIAL, "o-mp-owner", Role.OWNER),
        (Channel.OFFICIAL, "o-mp-acct", Role.ACCOUNTANT),
    }
    # The accountant switches the official account off, the owner the voice call.
    await recipients.set_preference(Channel.OFFICIAL, False, account_id=account.id,
                                   role=Role.ACCOUNTANT)  # fmt: skip
    await recipients.set_preference(Channel.VOICE, False, account_id=account.id)
    await Message.all().delete()
    assert await enqueue(conn, [trip(account.id, 1)], now=NOON) == 2
    got = {(m.channel, m.recipient) for m in await Message.all()}
    assert got == {(Channel.SMS, "13800138000"), (Channel.OFFICIAL, "o-mp-owner")}
    with pytest.raises(ValidationFailed):
        await recipients.set_preference(Channel.SMS, False, account_id=account.id, staff_id=1)


async def test_contacts_and_preferences_per_message_kind(db: None) -> None:
    """An accountant contact hears the account's messages by SMS, call and e-mail; the owner
    keeps SMS for the trip but not for balance alarms; a contact's table saved from the admin
    form switches its e-mail off for trips only; a removed contact hears nothing."""
    site = await create_site()
    account = await create_account(site=site, phone="13800138000")
    scope = [site.id]
    cash = await recipients.add_contact(
        scope, account.id, role="accountant", name="王会计", phone="13900139000",
        email="wang@tenant.cn", actor="staff:1",
    )  # fmt: skip
    with pytest.raises(ValidationFailed):  # neither phone nor e-mail
        await recipients.add_contact(scope, account.id, role="staff", name="x", actor="staff:1")
    with pytest.raises(NotFound):  # outside the scope
        await recipients.add_contact([site.id + 99], account.id, role="staff", name="x",
                                     phone="13700137000", actor="staff:1")  # fmt: skip
    await recipients.set_preference(Channel.SMS, False, account_id=account.id, kind="alarm")
    balance = Event(
        account.id,
        "alarm.balance",
        "bal:1",
        "alarm.balance.1",
        {"message": "余额不足", "level": 1},
        0,
    )
    conn = connections.get("default")
    await enqueue(conn, [balance, trip(account.id)], now=NOON)
    got = sorted((m.template, m.channel.value, m.recipient) for m in await Message.all())
    assert got == [
        ("alarm.balance", "email", "wang@tenant.cn"),
        ("alarm.balance", "sms", "13900139000"),
        ("alarm.trip", "email", "wang@tenant.cn"),
        ("alarm.trip", "sms", "13800138000"),
        ("alarm.trip", "sms", "13900139000"),
        ("alarm.trip", "voice", "13800138000"),
        ("alarm.trip", "voice", "13900139000"),
    ]
    assert (
        await Message.get(recipient="wang@tenant.cn", template="alarm.trip")
    ).role is Role.ACCOUNTANT
    # The admin form: every box of the contact's table ticked but the trip's e-mail.
    view = await recipients.account_recipients(scope, account.id)
    assert [r.who for r in view.recipients] == ["owner", "accountant", f"contact:{cash.id}"]
    owner = view.recipients[0]
    assert ("alarm", "sms") not in owner.on and ("trip", "sms") in owner.on
    keys = [f"on:{k}:{g}" for k in templates.TENANT_KINDS for g in ("sms", "voice", "email")]
    keys.remove("on:trip:email")
    on = recipients.checked(["csrf_token", "who", *keys])
    await recipients.save_preferences(scope, account.id, f"contact:{cash.id}", on, actor="staff:1")
    contact = (await recipients.account_recipients(scope, account.id)).recipients[2]
    assert ("trip", "email") not in contact.on and ("alarm", "email") in contact.on
    assert ("alarm", "voice") not in contact.on  # a balance alarm never calls
    await Message.all().delete()
    await enqueue(conn, [trip(account.id, 1)], now=NOON + timedelta(hours=2))
    assert await Message.filter(recipient="wang@tenant.cn").count() == 0
    assert await Message.filter(recipient="13900139000").count() == 2
    await recipients.remove_contact(scope, account.id, cash.id, actor="staff:1")
    await enqueue(conn, [trip(account.id, 2)], now=NOON + timedelta(hours=4))
    assert await Message.filter(recipient="13900139000").count() == 2


async def test_a_call_in_quiet_hours_waits_for_the_morning_and_is_not_dropped(
    db: None, fakes: NotifySandbox
) -> None:
    account = await create_account(phone="13800138000")
    assert await enqueue(connections.get("default"), [trip(account.id)], now=NIGHT) == 2
    sms = await Message.get(channel=Channel.SMS)
    call = await Message.get(channel=Channel.VOICE)
    assert sms.next_attempt_at == NIGHT and call.next_attempt_at == MORNING
    senders = fakes.senders()
    try:
        assert await deliver_due(senders, now=NIGHT + timedelta(minutes=1)) == 1  # the SMS only
        assert fakes.voice.sent == []
        # A resend at night (or a lapsed lease) is claimed, but the call is held back.
        await Message.filter(id=call.id).update(next_attempt_at=NIGHT)
        assert await deliver_due(senders, now=NIGHT + timedelta(minutes=2)) == 1
        await call.refresh_from_db()
        assert call.state is MessageState.QUEUED and call.error_code == "local.quiet_hours"
        assert call.next_attempt_at == MORNING and call.attempts == 0 and fakes.voice.sent == []
        assert await deliver_due(senders, now=MORNING + timedelta(seconds=1)) == 1
        await call.refresh_from_db()
        assert call.state is MessageState.SENT and len(fakes.voice.sent) == 1
    finally:
        for s in senders.values():
            await s.aclose()


async def test_a_sites_own_quiet_hours(db: None) -> None:
    site = await create_site()
    account = await create_account(site=site, phone="13800138000")
    await overrides.set_quiet_hours([site.id], site.id, "11:00", "13:00", actor="staff:1")
    await enqueue(connections.get("default"), [trip(account.id)], now=NOON)
    call = await Message.get(channel=Channel.VOICE)
    assert call.next_attempt_at == datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # 13:00 local
    with pytest.raises(ValidationFailed):
        await overrides.set_quiet_hours([site.id], site.id, "25:00", "x", actor="staff:1")


async def test_gateway_offline_alerts_the_sites_staff_with_contacts_once(db: None) -> None:
    site = await create_site()
    other = await create_site(site.organisation)  # type: ignore[arg-type]
    gw = await create_gateway(site, name="1号楼网关", online=True, last_seen_at=NOON)
    org = await site.organisation
    await create_staff("ops", StaffRole.OPERATOR, org, phone="13600136000", email="ops@x.cn")
    await create_staff("far", StaffRole.OPERATOR, org, sites=[other], phone="13500135000")
    await create_staff("quiet", StaffRole.OPERATOR, org)  # no contact: not reached
    await create_staff("money", StaffRole.FINANCE, org, phone="13400134000")  # not its role
    mute = await create_staff("mute", StaffRole.SITE_ADMIN, org, phone="13300133000")
    await recipients.set_preference(Channel.SMS, False, staff_id=mute.id)
    await recipients.set_preference(Channel.VOICE, False, staff_id=mute.id)
    assert await gateway_status(gw.code, False, now=NOON + timedelta(minutes=5))
    got = sorted((m.channel.value, m.recipient) for m in await Message.all())
    assert got == [("email", "ops@x.cn"), ("sms", "13600136000"), ("voice", "13600136000")]
    m = await Message.get(channel=Channel.SMS)
    assert m.role is Role.STAFF and m.account_id is None and m.site_id == site.id
    assert "1号楼网关" in m.text and "离线" in m.text
    assert not await gateway_status(gw.code, False, now=NOON + timedelta(minutes=6))  # still off
    assert not await gateway_status(gw.code, True, now=NOON + timedelta(minutes=7))
    assert await Message.all().count() == 3


async def test_template_override_is_used_where_free_text_goes(db: None) -> None:
    site = await create_site()
    account = await create_account(site=site, phone="13800138000")
    await AccountBinding.create(
        identity=await create_identity(app=TenantApp.OFFICIAL, openid="o-mp"), account=account
    )
    source = "尊敬的{{ tenant }}：{{ account }} 已断电，余额 {{ balance }} 元"
    preview = await overrides.save_override(
        [site.id], site.id, "alarm.trip", source, actor="staff:1"
    )
    assert preview == "尊敬的示例租户：H000001 已断电，余额 18.00 元"
    await enqueue(connections.get("default"), [trip(account.id)], now=NOON)
    texts = {m.channel: m.text for m in await Message.all()}
    assert texts[Channel.VOICE].startswith("尊敬的") and texts[Channel.OFFICIAL].startswith(
        "尊敬的"
    )
    assert texts[Channel.SMS].startswith("【")  # SMS keeps the provider's approved wording


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("{{ tenant.__class__ }}", "__class__"),
        ("{{ tenant.__class__.__mro__[1].__subclasses__() }}", "__"),
        ("{{ tenant|attr('__class__') }}", "unsafe"),
        ("{{ tenant['__class__'] }}", "__class__"),
        ("{{ cycler.__init__.__globals__ }}", "未知变量"),
        ("{{ range(10**9) }}", "未知变量"),
        ("{{ password }}", "未知变量"),
        ("{% if tenant %}没有结束", "语法错误"),
        ("", "不能为空"),
    ],
)
async def test_the_sandbox_refuses_what_a_template_may_not_do(
    db: None, source: str, says: str
) -> None:
    site = await create_site()
    with pytest.raises(ValidationFailed) as err:
        await overrides.save_override([site.id], site.id, "alarm.trip", source, actor="staff:1")
    assert says in err.value.message
    assert await TemplateOverride.all().count() == 0
    with pytest.raises(templates.TemplateRefused):
        templates.check_override("alarm.trip", source)


async def test_bills_and_arrears_entry_points(db: None) -> None:
    account = await create_account(phone="13800138000")
    conn = connections.get("default")
    bill = BillNotice(account.id, "2026年11月", 12_345, date(2026, 12, 15), 42)
    assert await bills_issued(conn, [bill], now=NOON) == 1
    assert await bills_issued(conn, [bill], now=NOON) == 0  # announced once
    assert "应缴 123.45 元，请于 2026-12-15 前缴清" in (await Message.get()).text
    assert await arrears_due(conn, [ArrearsNotice(account.id, 5_000, 7)], now=NOON) == 2
    assert await arrears_due(conn, [ArrearsNotice(account.id, 5_000, 7)], now=NOON) == 0
