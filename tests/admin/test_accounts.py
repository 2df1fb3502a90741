"""The account pages and 开户 over the real app: the room's panel, the pre-filled form, an
account opened with two meters and a cash opening balance, the account page and list (with
Excel), the binding QR; a refused form shown again with its message; another organisation's
room or account answering 404 with nothing created; roles without the accounts action
refused (403) with nothing created."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import openpyxl

from server.accounts.models import Account, BindingTicket
from server.audit.models import OperationLog
from server.metering.models import Meter
from server.metering.vocabulary import MeterKind, MeterProtocol
from server.payments.models import CounterPayment
from server.places.models import Room, Site
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_organisation,
    create_room,
    create_site,
)


async def vacant_room_with_meters(site: Site, name: str = "A301") -> tuple[Room, Meter, Meter]:
    building = await create_building(site, name="A栋")
    room = await create_room(await create_floor(building, name="3F"), name=name)
    made = datetime(2026, 1, 1, tzinfo=UTC)
    power = await Meter.create(site_id=site.id, room_id=room.id, kind=MeterKind.ELECTRICITY,
                               protocol=MeterProtocol.DLT645, address=f"{room.id:012d}",
                               installed_at=made)  # fmt: skip
    water = await Meter.create(site_id=site.id, room_id=room.id, kind=MeterKind.WATER,
                               protocol=MeterProtocol.CJT188, address=f"{room.id:014d}",
                               installed_at=made)  # fmt: skip
    return room, power, water


def the_form(token: str, *meters: Meter, **changes: str) -> dict[str, object]:
    return {
        "csrf_token": token, "tenant_name": "星光咖啡", "tenant_type": "company",
        "phone": "13912345678", "number": "", "billing_mode": "prepaid", "credit_limit": "0",
        "meter_id": [str(m.id) for m in meters], "opening_amount": "300", "channel": "cash",
        "reference": "SJ-0001",
    } | changes  # fmt: skip


async def test_a_clerk_opens_an_account_from_the_room_page(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org, name="滨江园")
    room, power, water = await vacant_room_with_meters(site)
    await create_staff("clerk", StaffRole.SITE_ADMIN, org, [site])
    async with signed_in(admin_app, "clerk") as b:
        page = await b.get(f"/admin/rooms/{room.id}")
        assert f'hx-get="/admin/rooms/{room.id}/account"' in page.text
        panel = await b.get(f"/admin/rooms/{room.id}/account")
        assert panel.status_code == 200 and f"/admin/rooms/{room.id}/open" in panel.text
        form = await b.get(f"/admin/rooms/{room.id}/open")
        assert form.status_code == 200
        ticked = re.findall(r'name="meter_id" value="(\d+)"[^>]* checked', form.text)
        assert sorted(map(int, ticked)) == sorted([power.id, water.id])
        assert "H000001" in form.text  # the suggested number
        done = await b.post(
            f"/admin/rooms/{room.id}/open", data=the_form(await b.csrf(), power, water)
        )
        assert done.status_code == 303, done.text[:800]
        account = await Account.get(room_id=room.id)
        assert done.headers["location"] == f"/admin/accounts/{account.id}?opened=1"
        shown = main_of(await b.get(done.headers["location"]))
        assert "开户成功" in shown and "星光咖啡" in shown and "¥300.00" in shown
        assert 'id="account-actions"' in shown and "现金充值" in shown
        assert f"/admin/meters/{power.id}" in shown and f"/admin/meters/{water.id}" in shown
        panel = await b.get(f"/admin/rooms/{room.id}/account")
        assert f"/admin/accounts/{account.id}" in panel.text and "¥300.00" in panel.text
        listed = main_of(await b.get("/admin/accounts", params={"q": "13912345678"}))
        assert "H000001" in listed and "¥300.00" in listed
        assert "H000001" not in main_of(await b.get("/admin/accounts", params={"status": "closed"}))
        export = await b.get("/admin/accounts", params={"q": "A301", "format": "xlsx"})
        sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
        rows = list(sheet.iter_rows(values_only=True))  # type: ignore[union-attr]
        assert rows[1][1:3] == ("H000001", "星光咖啡") and float(rows[1][9]) == 300.0
        card = await b.post(
            f"/admin/accounts/{account.id}/binding-code",
            data={"csrf_token": await b.csrf()}, headers={"HX-Request": "true"},
        )  # fmt: skip
        assert card.status_code == 200 and 'src="data:image/png;base64,' in card.text
        assert await BindingTicket.filter(account_id=account.id).count() == 1
        # a second opening of the same room is refused, the form says why
        again = await b.get(f"/admin/rooms/{room.id}/open")
        assert "已有在用账户 H000001" in again.text and 'id="open-form"' not in again.text
    assert await CounterPayment.filter(account_id=account.id, amount_fen=30_000).exists()
    actions = {log.action for log in await OperationLog.filter(actor__startswith="staff:")}
    assert {"account.open", "payment.counter", "tenant.qr_ticket"} <= actions


async def test_a_refused_form_comes_back_with_its_message(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    room, power, water = await vacant_room_with_meters(site)
    await create_staff("clerk", StaffRole.ORG_ADMIN, org)
    async with signed_in(admin_app, "clerk") as b:
        token = await b.csrf()
        for changes, words, status in (
            ({"tenant_name": " "}, "请填写租户名称", 422),
            ({"opening_amount": "3.001"}, "预存金额须为金额", 422),
            ({"reference": ""}, "收据号", 422),
            ({"number": "H-1", "channel": "wire"}, "请选择收款方式", 422),
        ):
            answer = await b.post(f"/admin/rooms/{room.id}/open",
                                  data=the_form(token, power, water, **changes))  # fmt: skip
            assert answer.status_code == status, (changes, answer.status_code)
            assert words in answer.text and 'id="open-form"' in answer.text
            assert 'value="13912345678"' in answer.text  # what was typed stays
        none = await b.post(f"/admin/rooms/{room.id}/open", data=the_form(token))
        assert none.status_code == 422 and "请至少选择一块表" in none.text
    assert await Account.all().count() == 0 and await CounterPayment.all().count() == 0


async def test_another_organisations_room_and_account_answer_404(admin_app: AdminApp) -> None:
    mine, theirs = await create_organisation(), await create_organisation()
    await create_site(mine)
    site = await create_site(theirs)
    room, power, water = await vacant_room_with_meters(site)
    account = await create_account(site=site, tenant_name="乙方商户", number="B0001")
    await create_staff("alice", StaffRole.ORG_ADMIN, mine)
    async with signed_in(admin_app, "alice") as b:
        token = await b.csrf()
        for path in (f"/admin/rooms/{room.id}/account", f"/admin/rooms/{room.id}/open",
                     f"/admin/accounts/{account.id}"):  # fmt: skip
            assert (await b.get(path)).status_code == 404, path
        opened = await b.post(f"/admin/rooms/{room.id}/open", data=the_form(token, power, water))
        assert opened.status_code == 404
        card = await b.post(
            f"/admin/accounts/{account.id}/binding-code", data={"csrf_token": token}
        )
        assert card.status_code == 404
        assert "乙方商户" not in main_of(await b.get("/admin/accounts"))
        assert (await b.get("/admin/accounts", params={"site": site.id})).status_code == 404
    assert await Account.filter(room_id=room.id).count() == 0
    assert await BindingTicket.all().count() == 0 and await CounterPayment.all().count() == 0


async def test_roles_without_the_accounts_action_are_refused(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    room, power, water = await vacant_room_with_meters(site)
    account = await create_account(site=site)
    for role in (StaffRole.FINANCE, StaffRole.OPERATOR, StaffRole.VIEWER):
        await create_staff(f"u_{role.value}", role, org)
        async with signed_in(admin_app, f"u_{role.value}") as b:
            token = await b.csrf()
            panel = await b.get(f"/admin/rooms/{room.id}/account")
            assert panel.status_code == 200 and "一键开户" not in panel.text
            assert (await b.get(f"/admin/rooms/{room.id}/open")).status_code == 403
            opened = await b.post(
                f"/admin/rooms/{room.id}/open", data=the_form(token, power, water)
            )
            assert opened.status_code == 403, role
            page = await b.get(f"/admin/accounts/{account.id}")
            assert page.status_code == 200 and "生成绑定二维码" not in page.text
            card = await b.post(f"/admin/accounts/{account.id}/binding-code",
                                data={"csrf_token": token})  # fmt: skip
            assert card.status_code == 403
    assert await Account.filter(room_id=room.id).count() == 0
    assert await BindingTicket.all().count() == 0 and await CounterPayment.all().count() == 0
