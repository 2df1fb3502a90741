"""The delivery log and the template editor (/admin/notify…): scoped to the staff member's
sites (another organisation's message is neither listed nor resendable), searched and
exported, resend by the roles with NOTIFY (a new queued message and an operation-log row),
templates saved by the roles with STAFF, refused with the sandbox's reason."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook
from tortoise import connections

from server.audit.models import OperationLog
from server.notify.models import (
    Channel,
    Contact,
    Message,
    MessageState,
    Preference,
    TemplateOverride,
)
from server.notify.service.outbox import Event, enqueue
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import create_account, create_organisation, create_site

NOW = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)


async def two_companies() -> dict[str, int]:
    a, b = await create_organisation(name="甲物业"), await create_organisation(name="乙物业")
    north, south = await create_site(a, name="北园"), await create_site(a, name="南园")
    west = await create_site(b, name="西园")
    await create_staff("boss", StaffRole.ORG_ADMIN, a)
    await create_staff("keeper", StaffRole.SITE_ADMIN, a, sites=[north])
    await create_staff("ops", StaffRole.OPERATOR, a)
    await create_staff("cash", StaffRole.FINANCE, a)
    await create_staff("look", StaffRole.VIEWER, a)
    ids = {}
    for site, phone in ((north, "13800000001"), (south, "13800000002"), (west, "13800000003")):
        account = await create_account(site=site, phone=phone, number=f"H-{site.name}")
        await enqueue(
            connections.get("default"),
            [Event(account.id, "alarm.trip", f"t:{account.id}", "alarm.trip", {}, 0)],
            now=NOW,
        )
        ids[site.name] = account.id
    await Message.filter(channel=Channel.SMS).update(
        state=MessageState.FAILED, error_code="isv.MOBILE_NUMBER_ILLEGAL", error_reason="非法手机号"
    )
    ids |= {"north": north.id, "south": south.id, "west": west.id}
    return ids


async def test_the_log_is_scoped_searched_and_exported(admin_app: AdminApp) -> None:
    ids = await two_companies()
    async with signed_in(admin_app, "boss") as boss:
        body = main_of(await boss.get("/admin/notify"))
        assert "13800000001" in body and "13800000002" in body and "13800000003" not in body
        assert "isv.MOBILE_NUMBER_ILLEGAL" in body and "重发" in body
        one = main_of(await boss.get("/admin/notify?phone=13800000002&channel=sms&state=failed"))
        assert "13800000002" in one and "13800000001" not in one
        by_account = main_of(await boss.get("/admin/notify?account=H-北园"))
        assert "13800000001" in by_account and "13800000002" not in by_account
        assert (await boss.get(f"/admin/notify?site={ids['west']}")).status_code == 404
        empty = main_of(await boss.get("/admin/notify?since=2030-01-01"))
        assert "没有符合条件的记录" in empty
        sheet = await boss.get("/admin/notify?format=xlsx&channel=sms")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.values)
        assert rows[0][0] == "时间" and len(rows) == 3  # header + north + south
    async with signed_in(admin_app, "keeper") as keeper:
        body = main_of(await keeper.get("/admin/notify"))
        assert "13800000001" in body and "13800000002" not in body


async def test_resend_by_role_and_scope(admin_app: AdminApp) -> None:
    await two_companies()
    mine = await Message.get(channel=Channel.SMS, recipient="13800000001")
    theirs = await Message.get(channel=Channel.SMS, recipient="13800000003")
    for who in ("cash", "look"):  # no NOTIFY action
        async with signed_in(admin_app, who) as b:
            page = await b.get("/admin/notify")
            assert "重发" not in main_of(page)
            answer = await b.post(
                "/admin/notify/resend", data={"message": mine.id, "csrf_token": await b.csrf()}
            )
            assert answer.status_code == 403
    async with signed_in(admin_app, "ops") as ops:
        token = await ops.csrf()
        foreign = await ops.post(
            "/admin/notify/resend", data={"message": theirs.id, "csrf_token": token}
        )
        assert foreign.status_code == 404
        done = await ops.post(
            "/admin/notify/resend", data={"message": mine.id, "csrf_token": token}
        )
        assert done.status_code == 303 and "resent=" in done.headers["location"]
    again = await Message.filter(recipient="13800000001", channel=Channel.SMS).order_by("id")
    assert [m.state for m in again] == [MessageState.FAILED, MessageState.QUEUED]
    assert await OperationLog.filter(action="重发消息").count() == 1
    assert await Message.filter(recipient="13800000003").count() == 2  # theirs untouched


async def test_templates_saved_by_staff_roles_refused_with_the_reason(
    admin_app: AdminApp,
) -> None:
    ids = await two_companies()
    async with signed_in(admin_app, "keeper") as keeper:  # NOTIFY, not STAFF: reads only
        page = await keeper.get(f"/admin/notify/templates?site={ids['north']}")
        assert page.status_code == 200 and "<textarea" not in page.text
        answer = await keeper.post("/admin/notify/templates", data={
            "site": ids["north"], "key": "alarm.trip", "text": "x",
            "csrf_token": await keeper.csrf(),
        })  # fmt: skip
        assert answer.status_code == 403
        quiet = await keeper.post("/admin/notify/quiet", data={
            "site": ids["north"], "start": "21:30", "end": "07:00",
            "csrf_token": await keeper.csrf(),
        })  # fmt: skip
        assert quiet.status_code == 303
    async with signed_in(admin_app, "look") as look:
        assert (await look.get("/admin/notify/templates")).status_code == 403
    async with signed_in(admin_app, "boss") as boss:
        token = await boss.csrf()
        assert (await boss.get(f"/admin/notify/templates?site={ids['west']}")).status_code == 404
        bad = await boss.post("/admin/notify/templates", data={
            "site": ids["north"], "key": "alarm.trip", "text": "{{ tenant.__class__ }}",
            "csrf_token": token,
        })  # fmt: skip
        assert bad.status_code == 422 and "不允许访问内部属性" in bad.text
        ok = await boss.post("/admin/notify/templates", data={
            "site": ids["north"], "key": "alarm.trip", "text": "{{ tenant }} 已断电",
            "csrf_token": token,
        })  # fmt: skip
        assert ok.status_code == 303
        page = main_of(await boss.get(f"/admin/notify/templates?site={ids['south']}"))
        assert "已自定义" in page and "示例租户 已断电" in page  # the organisation's, both sites
        foreign = await boss.post("/admin/notify/templates", data={
            "site": ids["west"], "key": "alarm.trip", "text": "x", "csrf_token": token,
        })  # fmt: skip
        assert foreign.status_code == 404
    assert await TemplateOverride.all().count() == 1


async def test_an_accounts_recipients_added_and_switched_by_notify_roles(
    admin_app: AdminApp,
) -> None:
    ids = await two_companies()
    account, url = ids["北园"], f"/admin/accounts/{ids['北园']}/recipients"
    async with signed_in(admin_app, "ops") as ops:  # NOTIFY
        token = await ops.csrf()
        bad = await ops.post(url, data={"role": "accountant", "name": "王会计",
                                        "csrf_token": token})  # fmt: skip
        assert bad.status_code == 422 and "至少填写一项" in bad.text and "王会计" in bad.text
        added = await ops.post(url, data={
            "role": "accountant", "name": "王会计", "phone": "13900139000",
            "email": "wang@tenant.cn", "csrf_token": token,
        })  # fmt: skip
        assert added.status_code == 303
        contact = await Contact.get(account_id=account)
        saved = await ops.post(f"{url}/preferences", data={
            "who": f"contact:{contact.id}", "on:trip:sms": "1", "on:alarm:email": "1",
            "csrf_token": token,
        })  # fmt: skip
        assert saved.status_code == 303
        page = main_of(await ops.get(url))
        assert "王会计" in page and "wang@tenant.cn" in page and 'method="post"' in page
        assert 'name="on:trip:sms" value="1" aria-label="王会计 断电/恢复 短信" checked' in page
        assert 'aria-label="王会计 断电/恢复 邮件">' in page  # not ticked
    off = await Preference.filter(contact_id=contact.id, enabled=False).count()
    on = await Preference.filter(contact_id=contact.id, enabled=True).count()
    assert (on, off) == (2, 10)  # 5 kinds × (SMS, e-mail) + the 2 kinds that call
    assert await OperationLog.filter(action="notify.preferences").count() == 1
    async with signed_in(admin_app, "look") as look:  # a viewer reads, in a disabled fieldset
        page = main_of(await look.get(url))
        assert "王会计" in page and 'method="post"' not in page and "<fieldset disabled>" in page
        token = await look.csrf()
        refused = await look.post(
            f"{url}/remove", data={"contact": contact.id, "csrf_token": token}
        )
        assert refused.status_code == 403
    async with signed_in(admin_app, "keeper") as keeper:  # the other site's account: 404
        assert (await keeper.get(f"/admin/accounts/{ids['南园']}/recipients")).status_code == 404
        token = await keeper.csrf()
        gone = await keeper.post(f"{url}/remove", data={"contact": contact.id, "csrf_token": token})
        assert gone.status_code == 303
    assert await Contact.all().count() == 0 and await Preference.all().count() == 0
