"""A reconciliation with differences alerts the finance staff of the sites involved, in the
report's transaction; the same result re-run alerts no one again."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from server.notify.models import Channel, Message, Role
from server.payments.providers.base import Channel as PayChannel
from server.payments.service import reconcile_day
from server.staff.models import AdminUser, StaffRole
from tests.admin.conftest import create_staff
from tests.factories import create_account, create_site
from tests.payments.service_fixtures import (  # noqa: F401  (fixtures)
    PayApp,
    drain,
    new_order,
    pay_app_fixture,
)


async def test_a_missing_order_alerts_finance_once(pay_app: PayApp) -> None:
    site = await create_site()
    org = await site.organisation
    cashier = await create_staff("cashier", StaffRole.FINANCE, org)
    await AdminUser.filter(id=cashier.id).update(phone="13600136000", email="cash@x.cn")
    ops = await create_staff("ops", StaffRole.OPERATOR, org)  # not finance's business
    await AdminUser.filter(id=ops.id).update(phone="13500135000")
    account = await create_account(site=site)
    stray = await new_order(pay_app, PayChannel.WECHAT, 2_000, account=account)
    pay_app.sandbox.wechat.orders[stray.out_trade_no].notify_url = "http://127.0.0.1:9/x"
    pay_app.sandbox.wechat.pay(stray.out_trade_no)  # settled there, never credited here
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    stored, _ = await reconcile_day(pay_app.payments, PayChannel.WECHAT, today)
    assert not stored.clean
    got = sorted((m.channel, m.recipient, m.role) for m in await Message.all())
    assert got == [
        (Channel.EMAIL, "cash@x.cn", Role.STAFF),
        (Channel.SMS, "13600136000", Role.STAFF),
    ]
    text = (await Message.get(channel=Channel.SMS)).text
    assert "微信支付" in text and "缺单 1" in text and str(today) in text
    await reconcile_day(pay_app.payments, PayChannel.WECHAT, today)  # the same result again
    assert await Message.all().count() == 2
    await drain(pay_app)
