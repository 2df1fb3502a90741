"""Sweeps generated from the router (`app.router.routes`): every admin route, including the
ones added after this file was written, is visited; a route with a path parameter the sweep
does not know, or a POST route that does not say what it needs, fails here.

- Anonymous: every route but sign-in and static files sends the caller to the sign-in page.
- Cross-organisation: as organisation A's head-office admin, every route with organisation
  B's objects in its path answers 404 (GET and POST with a valid CSRF token and a plausible
  form), every list shows none of B's names (with `?site=<B's site>` too), and B's objects
  read back from the database afterwards are unchanged.
- Roles: every POST route names its action (`requires` / `any_staff`); each role without
  that action gets 403 and changes nothing; each role with it is not refused (a 404 or 422
  for the sweep's plausible-but-incomplete form is fine). GET pages marked by `requires`
  answer 403 exactly to the roles without their action.
"""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from openpyxl import load_workbook
from tortoise.expressions import Q

from server.accounts.models import Account
from server.invoices.models import Invoice
from server.invoices.service.buyer import checked_buyer
from server.invoices.service.requests import request_invoice
from server.invoices.service.setup import set_item, set_profile
from server.ledger import service as ledger
from server.ledger.posting import Channel
from server.metering.models import (
    Gateway,
    HeldReading,
    Meter,
    MeterBatch,
    MeterBatchItem,
    MeterCommand,
)
from server.metering.service import batches
from server.notify.models import Contact, Preference
from server.notify.service import recipients
from server.payments.config import PaymentSettings
from server.payments.models import (
    BalanceAdjustment,
    CounterPayment,
    CounterRefund,
    OrderStatus,
    RechargeOrder,
    Refund,
)
from server.payments.providers.base import Channel as PayChannel
from server.payments.service import (
    Payments,
    record_counter_payment,
    request_adjustment,
    request_counter_refund,
    request_refund,
)
from server.places.models import Building, Floor, Organisation, Room, Site
from server.property.models import Bill, FeeItem, FeeRun, PrintTemplate
from server.property.service import items as fee_items
from server.property.service.bills import BillFilter, list_bills
from server.property.service.items import ItemForm
from server.property.service.run import run_month
from server.sharing.models import LossEntryRecord, LossPeriod, SharingMember, SharingPool
from server.sharing.service.losses import entry_of, run_losses
from server.sharing.service.pools import add_member, create_pool
from server.staff.models import AdminUser, StaffRole
from server.staff.service.permissions import may
from server.tariffs.models import TariffAssignment, TariffKind, TariffPlan, TariffVersion
from server.tariffs.service import assign, create_plan
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_gateway,
    create_meter,
    create_room,
    create_site,
)

PARAM = re.compile(r"<([a-zA-Z_][a-zA-Z0-9_]*)(?::[^>]+)?>")
OPEN = {"admin/login", "admin/static/<__file_uri__:path>"}
SESSION_ENDS = {"admin/logout"}  # visited last, or not at all, by a signed-in sweep
_seq = itertools.count(1)


@dataclass(frozen=True)
class Park:
    """One organisation's full set of objects, named so that its names are unique."""

    organisation_id: int
    site_id: int
    building_id: int
    floor_id: int
    room_id: int
    account_id: int
    gateway_id: int
    meter_id: int
    user_id: int
    held_id: int
    counter_refund_id: int
    refund_id: int
    plan_id: int
    pool_id: int
    loss_id: int
    counter_payment_id: int
    adjustment_id: int
    fee_item_id: int
    run_id: int
    bill_id: int
    batch_id: int
    version_id: int
    invoice_id: int
    names: tuple[str, ...]

    def path_ids(self) -> dict[str, int]:
        return {
            "site_id": self.site_id, "building_id": self.building_id, "floor_id": self.floor_id,
            "room_id": self.room_id, "gateway_id": self.gateway_id, "meter_id": self.meter_id,
            "user_id": self.user_id, "account_id": self.account_id, "held_id": self.held_id,
            "counter_refund_id": self.counter_refund_id, "refund_id": self.refund_id,
            "plan_id": self.plan_id, "pool_id": self.pool_id, "loss_id": self.loss_id,
            "counter_payment_id": self.counter_payment_id, "adjustment_id": self.adjustment_id,
            "fee_item_id": self.fee_item_id, "run_id": self.run_id, "bill_id": self.bill_id,
            "batch_id": self.batch_id, "version_id": self.version_id,
            "invoice_id": self.invoice_id,
        }  # fmt: skip


async def a_park(tag: str) -> Park:
    org = await Organisation.create(name=f"{tag}物业集团")
    site = await create_site(org, name=f"{tag}方园区")
    building = await create_building(site, name=f"{tag}方大楼")
    floor = await create_floor(building, name=f"{tag}方楼层")
    room = await create_room(floor, name=f"{tag}方房间")
    account = await create_account(room, site, tenant_name=f"{tag}方商户", number=f"{tag}H0001")
    gateway = await create_gateway(site, code=f"{tag}GW0001")
    meter = await create_meter(account, address=f"{ord(tag) % 1000:03d}000000777")
    user = await create_staff(f"{tag}_clerk", StaffRole.VIEWER, org)
    held = await HeldReading.create(
        meter=meter, taken_at=datetime(2026, 3, 3, tzinfo=UTC), total=Decimal("5.00"),
        outcome="reset", reason="表码由 900.00 降至 5.00，疑似电表清零或被更换", source="poll",
    )  # fmt: skip
    counter_refund_id, refund_id = await _refunds_waiting(account, tag)
    batch = await batches.create_batch(
        [site.id], action="trip", selection=batches.Selection(site_id=site.id),
        title=f"{tag}方批量", run_at=datetime.now(UTC) + timedelta(days=1), actor="staff:0",
    )  # fmt: skip
    plan = await create_plan(
        site.id, f"{tag}方电价", TariffKind.ELECTRICITY, {"kind": "flat", "price": "0.6"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:0",
    )  # fmt: skip
    await assign(account.id, plan.id)
    pool_id, loss_id = await _sharing(site, account, tag)
    payment, _ = await record_counter_payment(account.id, "cash", 800, f"SWEEP-RC-{ord(tag)}",
                                              actor="staff:0")  # fmt: skip
    adjustment = await request_adjustment(
        PaymentSettings(adjustment_approval_above_fen=0), account.id, 100, reason="扫描",
        actor="staff:0",
    )  # fmt: skip
    fee_item_id, run_id, bill_id = await _fees_billed(site.id, tag)
    invoice = await _invoice_requested(org.id, account.id, f"C{payment.id}", tag)
    contact = await recipients.add_contact(
        [site.id], account.id, role="accountant", name=f"{tag}方会计", phone="13900139000",
        actor="staff:0",
    )  # fmt: skip
    await PrintTemplate.create(
        organisation=org, kind="bill", source=f"<h1>{tag}方账单</h1>{{{{ bill.number }}}}"
    )
    names = (
        site.name, building.name, floor.name, room.name, account.tenant_name, account.number,
        gateway.code, meter.address, user.username, plan.name, f"{tag}方公摊",
        batch.title, contact.name, invoice.buyer_name, f"{tag}方账单",
    )  # fmt: skip
    return Park(
        org.id, site.id, building.id, floor.id, room.id, account.id, gateway.id, meter.id,
        user.id, held.id, counter_refund_id, refund_id, plan.id, pool_id, loss_id, payment.id,
        adjustment.id, fee_item_id, run_id, bill_id, batch.id,
        await TariffVersion.get(plan_id=plan.id).values_list("id", flat=True), invoice.id, names,
    )  # fmt: skip


async def _invoice_requested(org_id: int, account_id: int, payment: str, tag: str) -> Invoice:
    """Invoicing set up and a company's request over the counter payment, waiting for review."""
    await set_profile(org_id, seller_name=f"{tag}方物业", seller_tax_id="91350100M000100Y43",
                      actor="staff:0")  # fmt: skip
    await set_item(org_id, "electricity", "*供电*电费", "1100101000000000000", "13%",
                   actor="staff:0")  # fmt: skip
    buyer = checked_buyer("normal", "company", f"{tag}方开票单位", tax_id="91110108MA01KPGK0L",
                          email="a@example.com")  # fmt: skip
    return await request_invoice(account_id, buyer, [payment], actor="staff:0")


async def _fees_billed(site_id: int, tag: str) -> tuple[int, int, int]:
    """A fee item billed to the park's account by a posted monthly run: item, run, bill."""
    form = ItemForm(f"{tag}方卫生费", "custom", "fixed", "10.00", "monthly", collection="bill")
    item = await fee_items.create_item(site_id, form, actor="staff:0")
    run = await run_month(
        site_id, "2026-03", preview=False, actor="staff:0", tz=ZoneInfo("Asia/Shanghai")
    )
    [bill] = await list_bills(BillFilter([site_id]), today=run.created_at.date())
    return item.id, run.id, bill.id


async def _sharing(site: Site, account: Account, tag: str) -> tuple[int, int]:
    """A common account (master meter on no account, the account sharing it) and a posted
    period of line losses."""
    master = await Meter.create(
        site_id=site.id, kind="electricity", model="DTSD1352", protocol="dlt645",
        address=f"{ord(tag) % 1000:03d}000000888",
    )  # fmt: skip
    plan = await create_plan(
        site.id, f"{tag}方公共电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "0.70"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:0",
    )  # fmt: skip
    pool = await create_pool(
        [site.id], site.id, name=f"{tag}方公摊", meter_address=master.address, plan_id=plan.id,
        method="area", actor="staff:0",
    )  # fmt: skip
    await add_member([site.id], pool.id, account.number, "1", actor="staff:0")
    form = {"period": "2026-11", "start_reading": "0", "end_reading": "100", "bill": "70.00"}
    losses = await run_losses(
        [site.id], site.id, entry_of(form), tz=ZoneInfo("Asia/Shanghai"), actor="staff:0"
    )
    assert losses.id is not None
    return pool.id, losses.id


async def _refunds_waiting(account: Account, tag: str) -> tuple[int, int]:
    """A counter refund and an online refund of the account, both waiting for approval."""
    settings = PaymentSettings(refund_approval_above_fen=0)
    await ledger.recharge(account.id, Channel.CASH, 1_000, key=f"sweep:{tag}", actor="staff:0")
    counter = await request_counter_refund(
        settings, account.id, "cash", 100, reason="扫描", actor="staff:0",
        request_key=f"sweep:{tag}",
    )  # fmt: skip
    order = await RechargeOrder.create(
        out_trade_no=f"SWEEP{ord(tag)}", account_id=account.id, channel=PayChannel.WECHAT,
        amount_fen=500, status=OrderStatus.PAID, expires_at=account.opened_at,
        created_by="staff:0",
    )  # fmt: skip
    refund = await request_refund(
        Payments(settings), order.out_trade_no, 100, reason="扫描", actor="staff:0"
    )
    return counter.id, refund.id


async def snapshot(park: Park) -> dict[str, Any]:
    """Everything of `park` the admin could change, read from the database."""
    site = park.site_id
    return {
        "site": await Site.filter(id=site).values(),
        "buildings": await Building.filter(site_id=site).order_by("id").values(),
        "floors": await Floor.filter(building__site_id=site).order_by("id").values(),
        "rooms": await Room.filter(floor__building__site_id=site).order_by("id").values(),
        "accounts": await Account.filter(site_id=site).order_by("id").values(),
        "gateways": await Gateway.filter(site_id=site).order_by("id").values(),
        "meters": await Meter.filter(Q(site_id=site) | Q(gateway_id=park.gateway_id))
        .order_by("id")
        .values(),
        "commands": await MeterCommand.filter(meter__site_id=site).order_by("id").values(),
        "held": await HeldReading.filter(meter__site_id=site).order_by("id").values(),
        "batches": await MeterBatch.filter(site_id=site).order_by("id").values(),
        "batch_items": await MeterBatchItem.filter(batch__site_id=site).order_by("id").values(),
        "counter_refunds": await CounterRefund.filter(account__site_id=site)
        .order_by("id")
        .values(),
        "refunds": await Refund.filter(order__account__site_id=site).order_by("id").values(),
        "plans": await TariffPlan.filter(site_id=site).order_by("id").values(),
        "versions": await TariffVersion.filter(plan__site_id=site).order_by("id").values(),
        "assignments": await TariffAssignment.filter(account__site_id=site)
        .order_by("id")
        .values("id", "account_id", "kind", "plan_id"),
        "counter_payments": await CounterPayment.filter(account__site_id=site)
        .order_by("id")
        .values(),
        "adjustments": await BalanceAdjustment.filter(account__site_id=site)
        .order_by("id")
        .values(),
        "fee_items": await FeeItem.filter(site_id=site).order_by("id").values(),
        "fee_runs": await FeeRun.filter(site_id=site).order_by("id").values(),
        "bills": await Bill.filter(site_id=site).order_by("id").values(),
        "print_templates": await PrintTemplate.filter(organisation_id=park.organisation_id)
        .order_by("id")
        .values(),
        "staff": await AdminUser.filter(organisation_id=park.organisation_id)
        .order_by("id")
        .values(),
        "pools": await SharingPool.filter(site_id=site).order_by("id").values(),
        "members": await SharingMember.filter(pool__site_id=site).order_by("id").values(),
        "losses": await LossPeriod.filter(site_id=site).order_by("id").values(),
        "contacts": await Contact.filter(account__site_id=site).order_by("id").values(),
        "preferences": await Preference.filter(account__site_id=site).order_by("id").values(),
        "invoices": await Invoice.filter(site_id=site).order_by("id").values(),
        "loss_entries": await LossEntryRecord.filter(site_id=site).order_by("id").values(),
        "staff_sites": await AdminUser.filter(organisation_id=park.organisation_id)
        .order_by("id", "sites__id")
        .values_list("id", "sites__id"),
    }


def admin_routes(admin_app: AdminApp) -> list[tuple[str, str, Any]]:
    """(path, method, handler) of every admin route, as the router holds them."""
    found = [
        (route.path, method, route.handler)
        for route in admin_app.app.router.routes
        if route.path == "admin" or route.path.startswith("admin/")
        for method in sorted(route.methods)
        if method not in ("OPTIONS", "HEAD")
    ]
    assert len(found) >= 10, found
    return sorted(found, key=lambda r: (r[0] in SESSION_ENDS, r[0], r[1]))


def concrete(path: str, ids: dict[str, int]) -> str:
    """The route's path with the park's ids; a parameter the sweep does not know fails."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"/{path}: path parameter <{name}> unknown to the sweep; add it"
        return str(ids[name])

    return "/" + PARAM.sub(one, path)


def plausible(park: Park, token: str) -> dict[str, Any]:
    """A form most admin pages would accept: the park's ids under every usual name."""
    n = next(_seq)
    return {
        "csrf_token": token, "name": f"扫描{n}", "code": f"SW{n:05d}", "number": f"SW{n:05d}",
        "username": f"sweep{n}", "display_name": "扫描", "role": "viewer", "kind": "electricity",
        "protocol": "dlt645", "address": f"{n:012d}", "area_m2": "10", "use": "office",
        "floors": "1", "rooms": "1", "reason": "扫描", "model": "DDSY1352",
        "site_ids": str(park.site_id), "organisation_id": str(park.organisation_id),
    } | {name: str(value) for name, value in park.path_ids().items()}  # fmt: skip


def shows_none_of(answer: httpx.Response, names: tuple[str, ...]) -> list[str]:
    """Which of `names` the answer shows (HTML outside the nav, or an Excel file's cells)."""
    if "spreadsheetml" in answer.headers.get("content-type", ""):
        book = load_workbook(io.BytesIO(answer.content), read_only=True)
        text = " ".join(
            str(cell) for sheet in book for row in sheet.iter_rows(values_only=True) for cell in row
        )
    else:
        text = main_of(answer)
    return [name for name in names if name in text]


async def test_every_admin_route_but_sign_in_needs_a_session(admin_app: AdminApp) -> None:
    ids = dict.fromkeys(Park(*[1] * 23, ()).path_ids(), 1)
    async with admin_app.browser() as anonymous:
        for path, method, _ in admin_routes(admin_app):
            if path in OPEN:
                continue
            answer = await anonymous.request(method, concrete(path, ids))
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"] == "/admin/login"


async def test_organisation_a_reaches_nothing_of_organisation_b(admin_app: AdminApp) -> None:
    a, b = await a_park("甲"), await a_park("乙")
    await create_staff("a_admin", StaffRole.ORG_ADMIN, await Organisation.get(id=a.organisation_id))
    before = await snapshot(b)
    leaks: list[str] = []
    async with signed_in(admin_app, "a_admin") as browser:
        for path, method, _ in admin_routes(admin_app):
            if path in OPEN | SESSION_ENDS:
                continue
            url = concrete(path, b.path_ids())
            if method == "GET":
                answers = [await browser.get(url)]
                if "<" not in path:
                    answers += [
                        await browser.get(url, params={"site": b.site_id}),
                        await browser.get(url, params={"site": b.site_id, "format": "xlsx"}),
                    ]
            else:
                answers = [await browser.post(url, data=plausible(b, await browser.csrf()))]
            for answer in answers:
                if "<" in path and answer.status_code != 404:
                    leaks.append(f"{method} /{path}: {answer.status_code}, not 404")
                elif answer.status_code < 400 and (shown := shows_none_of(answer, b.names)):
                    leaks.append(f"{method} {answer.url}: shows B's {shown}")
    assert leaks == []
    assert await snapshot(b) == before
    assert await AdminUser.filter(organisation_id=b.organisation_id).count() == 1


async def test_each_role_may_post_only_what_its_actions_allow(admin_app: AdminApp) -> None:
    a = await a_park("甲")
    org = await Organisation.get(id=a.organisation_id)
    posts = [(p, h) for p, m, h in admin_routes(admin_app) if m == "POST" and p not in OPEN]
    unmarked = [p for p, h in posts if not hasattr(h, "admin_action")]
    assert unmarked == [], f"POST routes without requires(...) or any_staff: {unmarked}"
    gets = [
        (p, h.admin_action)
        for p, m, h in admin_routes(admin_app)
        if m == "GET" and getattr(h, "admin_action", None) is not None
    ]
    wrong: list[str] = []
    for role in StaffRole:
        username = f"role_{role.value}"
        await create_staff(username, role, None if role is StaffRole.SUPERADMIN else org)
        async with signed_in(admin_app, username) as browser:
            for path, action in gets:  # pages that only some roles open (staff, import)
                refused = (await browser.get(concrete(path, a.path_ids()))).status_code == 403
                if refused == may(role, action):
                    wrong.append(f"{role.value} GET /{path} ({action}): refused={refused}")
            for path, handler in posts:
                action = handler.admin_action
                allowed = action is None or may(role, action)
                before = None if allowed else await snapshot(a)
                answer = await browser.post(
                    concrete(path, a.path_ids()), data=plausible(a, await browser.csrf())
                )
                if allowed and answer.status_code == 403:
                    wrong.append(f"{role.value} refused POST /{path} ({action})")
                if not allowed and answer.status_code != 403:
                    wrong.append(f"{role.value} POST /{path} ({action}): {answer.status_code}")
                if not allowed and await snapshot(a) != before:
                    wrong.append(f"{role.value} POST /{path} ({action}) changed A")
                if role is StaffRole.VIEWER and action is not None:
                    assert answer.status_code == 403, path
    assert wrong == []
