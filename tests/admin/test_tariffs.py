"""The tariff pages (/admin/tariffs…): plans created and changed through the editor, refused
with the engine's own reasons (slots overlapping or leaving a gap, tiers not ascending, a
change in the past), previewed for a sample month, assigned to a floor's accounts; scoped to
the staff member's organisation, changed only by the roles with the TARIFFS action."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.metering.models import (
    BatchAction,
    BatchStatus,
    MeterBatch,
    MeterBatchItem,
    MeterBilling,
)
from server.staff.models import StaffRole
from server.tariffs.levy import levy_capacity
from server.tariffs.models import TariffAssignment, TariffKind, TariffPlan, TariffVersion
from server.tariffs.push import push_due, push_version
from server.tariffs.service import assign, create_plan
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)

TOU = {
    "shape": "tou", "p1": "1.3", "p2": "1.02", "p3": "0.65", "p4": "0.28",
    "s0_name": "夏季", "s0_months": "7-8",
    "s0_workday": "00:00-08:00 谷\n08:00-11:00 峰\n11:00-12:00 尖\n12:00-24:00 平",
    "s1_name": "其他", "s1_months": "1-6,9-12",
    "s1_workday": "00:00-08:00 谷\n08:00-20:00 峰\n20:00-24:00 平",
}  # fmt: skip


async def a_company() -> dict[str, int]:
    org, other = await create_organisation(name="甲物业"), await create_organisation(name="乙物业")
    site, theirs = await create_site(org, name="北园"), await create_site(other, name="西园")
    building = await create_building(site, name="A栋")
    floors = [await create_floor(building, name=f"{n}F") for n in (1, 2)]
    for n, floor in enumerate(floors * 2):
        room = await create_room(floor, name=f"R{n}")
        await create_account(room, site, number=f"H{n}", tenant_name=f"商户{n}")
    for username, role in (("boss", StaffRole.ORG_ADMIN), ("cash", StaffRole.FINANCE),
                           ("ops", StaffRole.OPERATOR), ("look", StaffRole.VIEWER)):  # fmt: skip
        await create_staff(username, role, org)
    await create_staff("west", StaffRole.ORG_ADMIN, other)
    return {"site": site.id, "theirs": theirs.id, "floor": floors[1].id}


async def test_a_tou_plan_created_previewed_changed_and_assigned(admin_app: AdminApp) -> None:
    ids = await a_company()
    async with signed_in(admin_app, "cash") as cash:  # finance has TARIFFS
        token = await cash.csrf()
        form = TOU | {"csrf_token": token, "site_id": ids["site"], "name": "商业分时",
                      "kind": "electricity"}  # fmt: skip
        overlap = form | {"s1_workday": "00:00-09:00 谷\n08:00-20:00 峰\n20:00-24:00 平"}
        refused = await cash.post("/admin/tariffs/new", data=overlap)
        assert refused.status_code == 422 and "时段相互重叠" in main_of(refused)
        gap = form | {"s1_workday": "00:00-08:00 谷\n09:00-24:00 峰"}
        assert "时段未覆盖全天24小时" in main_of(await cash.post("/admin/tariffs/new", data=gap))
        bad_line = form | {"s0_workday": "上午 峰"}
        assert "第1行应写成" in main_of(await cash.post("/admin/tariffs/new", data=bad_line))
        assert await TariffPlan.all().count() == 0
        created = await cash.post("/admin/tariffs/new", data=form)
        assert created.status_code == 303, main_of(created)[:2000]
        page_url = created.headers["location"].split("?")[0]
        page = main_of(await cash.get(page_url + "?month=2026-07&quantity=3100"))
        # July: 31 days × 24 h, 3100 kWh spread evenly = 100 kWh/day; 8 h 谷, 3 h 峰, 1 h 尖,
        # 12 h 平 (weekends the same: the plan has no holiday schedule).
        assert "尖时段电量" in page and "¥1,860.00" in page  # 129.166667×1.3 + 387.5×1.02 + …
        again = await cash.post("/admin/tariffs/new", data=form)
        assert again.status_code == 409 and "同名" in main_of(again)
        tiers = {"csrf_token": token, "kind": "electricity", "shape": "tiered",
                 "period": "month", "tiers": "200 0.5\n100 0.6\n以上 0.8"}  # fmt: skip
        preview = await cash.post("/admin/tariffs/preview", data=tiers)
        assert "阶梯上限必须大于零并逐档递增" in preview.text
        ok = await cash.post("/admin/tariffs/preview", data=tiers | {"tiers": "200 0.5\n以上 0.8"})
        assert "第二档" in ok.text and "¥740.00" in ok.text  # 200×0.5 + 800×0.8 (1000 kWh)

        plan = await TariffPlan.get(name="商业分时")
        change = await cash.get(f"{page_url}/change")
        assert "08:00-11:00 峰" in change.text  # the editor starts from the newest version
        later = (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
        past = await cash.post(f"{page_url}/change", data=form | {
            "when": "at", "effective_from": "2020-01-01T00:00"})  # fmt: skip
        assert past.status_code == 422 and "不能早于当前时间" in main_of(past)
        done = await cash.post(
            f"{page_url}/change", data=form | {"p2": "1.10", "when": "at", "effective_from": later}
        )
        assert done.status_code == 303
        versions = main_of(await cash.get(page_url))
        assert "待生效" in versions and "生效中" in versions and "峰1.10" in versions
        assert await TariffVersion.filter(plan_id=plan.id).count() == 2

        assigned = await cash.post(
            f"{page_url}/assign", data={"csrf_token": token, "floor_id": ids["floor"]}
        )
        assert assigned.headers["location"].endswith("assigned=2#assign")
        assert await TariffAssignment.filter(plan_id=plan.id).count() == 2
        sheet = await cash.get("/admin/tariffs?format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.values)
        assert rows[0][0] == "园区" and rows[1][1] == "商业分时" and rows[1][-1] == 2
    actions = await OperationLog.filter(target_type="tariff_plan").values_list("action", flat=True)
    assert sorted(actions) == ["分配价格方案", "新建价格方案", "调整价格"]

    for who in ("ops", "look"):  # no TARIFFS: they read, they change nothing
        async with signed_in(admin_app, who) as b:
            page = main_of(await b.get(page_url))
            assert "商业分时" in page and "调整价格" not in page
            assert (await b.get(f"{page_url}/change")).status_code == 403
            refused = await b.post(
                f"{page_url}/change", data=form | {"csrf_token": await b.csrf(), "when": "now"}
            )
            assert refused.status_code == 403
    async with signed_in(admin_app, "west") as west:  # another company: the plan is not there
        assert (await west.get(page_url)).status_code == 404
        assert "商业分时" not in main_of(await west.get("/admin/tariffs"))
        token = await west.csrf()
        answer = await west.post("/admin/tariffs/new", data=form | {"csrf_token": token,
                                                                    "name": "偷"})  # fmt: skip
        assert answer.status_code == 404
    assert await TariffVersion.filter(plan_id=plan.id).count() == 2


async def test_a_price_change_now_makes_one_set_price_batch_shown_on_the_version(
    admin_app: AdminApp,
) -> None:
    ids = await a_company()
    plan = await create_plan(
        ids["site"], "商业电价", TariffKind.ELECTRICITY, {"kind": "flat", "price": "0.65"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:1",
    )  # fmt: skip
    accounts = await Account.filter(site_id=ids["site"]).order_by("id")
    billed = []
    for n, account in enumerate(accounts[:3]):
        await assign(account.id, plan.id)
        meter = await create_meter(
            account, billing=MeterBilling.METER if n < 2 else MeterBilling.PLATFORM
        )
        billed += [meter.address] if n < 2 else []
    page_url = f"/admin/tariffs/{plan.id}"
    async with signed_in(admin_app, "cash") as cash:
        form = {"csrf_token": await cash.csrf(), "shape": "flat", "price": "0.7125",
                "when": "now"}  # fmt: skip
        assert (await cash.post(f"{page_url}/change", data=form)).status_code == 303
        version = await TariffVersion.filter(plan_id=plan.id).order_by("-id").first()
        assert version is not None and version.batch_id
        batch = await MeterBatch.get(id=version.batch_id)
        assert batch.action is BatchAction.PRICES and batch.status is BatchStatus.SCHEDULED
        assert batch.params == {"prices": {b: "0.7125" for b in ("1", "2", "3", "4")}}
        items = await MeterBatchItem.filter(batch_id=batch.id).values_list(
            "meter__address", flat=True
        )
        assert sorted(items) == sorted(billed)  # the meter-billed meters only
        assert await push_due(datetime.now(UTC)) == 0  # a re-run creates no second batch
        assert await push_version(version.id) == batch.id
        assert await MeterBatch.all().count() == 1
        listing = main_of(await cash.get(page_url))
        assert f"批量操作 #{batch.id}" in listing and "无需下发" in listing  # the first version
        shown = main_of(await cash.get(f"{page_url}/versions/{version.id}"))
        assert f'href="/admin/batches/{batch.id}"' in shown and all(a in shown for a in billed)
        assert "待执行" in shown  # released by the controller's next pass
        later = (datetime.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
        tiers = {"csrf_token": form["csrf_token"], "shape": "tiered", "period": "month",
                 "tiers": "200 0.5\n以上 0.8", "when": "at", "effective_from": later}  # fmt: skip
        assert (await cash.post(f"{page_url}/change", data=tiers)).status_code == 303
        tiered = await TariffVersion.filter(plan_id=plan.id).order_by("-id").first()
        assert tiered is not None and tiered.batch_id is None
        assert "生效时写入" in main_of(await cash.get(f"{page_url}/versions/{tiered.id}"))
        at = datetime.now(UTC) + timedelta(days=4)  # its time comes: nothing a meter can hold
        assert await push_due(at) == 0
        await tiered.refresh_from_db()
        assert tiered.batch_id == 0
        assert "阶梯电价无法写入" in main_of(await cash.get(f"{page_url}/versions/{tiered.id}"))
    async with signed_in(admin_app, "look") as look:
        shown = await look.get(f"{page_url}/versions/{version.id}")
        assert shown.status_code == 200 and "<form" not in main_of(shown)
    async with signed_in(admin_app, "west") as west:
        assert (await west.get(f"{page_url}/versions/{version.id}")).status_code == 404
    logged = await OperationLog.filter(actor="system:tariffs", target_type="tariff_plan")
    assert sorted(e.action for e in logged) == ["调价下发表端", "调价无需下发表端"]


async def test_two_part_capacity_and_demand_recorded_then_levied(admin_app: AdminApp) -> None:
    ids = await a_company()
    plan = await create_plan(
        ids["site"], "大工业按需量", TariffKind.ELECTRICITY,
        {"kind": "two_part", "basis": "demand", "rate": "42.5",
         "energy": {"kind": "flat", "price": "0.65"}},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:1",
    )  # fmt: skip
    first, second = await Account.filter(site_id=ids["site"]).order_by("id").limit(2)
    for account in (first, second):
        await assign(account.id, plan.id)
    basis = f"/admin/tariffs/{plan.id}/basis"
    async with signed_in(admin_app, "cash") as cash:
        token = await cash.csrf()
        assert "容量与需量" in main_of(await cash.get(f"/admin/tariffs/{plan.id}"))
        nov = {"csrf_token": token, "month": "2026-11"}
        kva = await cash.post(f"{basis}/{first.id}/capacity", data=nov | {"kva": "315"})
        assert kva.status_code == 303 and "month=2026-11" in kva.headers["location"]
        bad = await cash.post(f"{basis}/{first.id}/demand", data=nov | {"kw": "八十"})
        assert bad.status_code == 422 and "最大需量必须是数字" in main_of(bad)
        kw = await cash.post(f"{basis}/{first.id}/demand", data=nov | {"kw": "86.4"})
        assert kw.status_code == 303
        page = main_of(await cash.get(f"{basis}?month=2026-11"))
        assert "按最大需量" in page and "315.00" in page and "86.400" in page and "人工录入" in page
        sheet = await cash.get(f"{basis}?month=2026-11&format=xlsx")
        rows = list(load_workbook(io.BytesIO(sheet.content)).active.values)
        assert rows[0][:3] == ("户号", "租户", "变压器容量(kVA)")
        assert rows[1][:5] == (first.number, first.tenant_name, 315, 86.4, "人工录入")
        assert rows[2][2:4] == (None, None)

        report = await levy_capacity("2026-11", now=datetime(2026, 12, 1, 2, tzinfo=UTC))
        assert (report.charged, report.charged_fen) == (1, 367_200)  # 86.4 kW × ¥42.5
        assert [s.number for s in report.skipped] == [second.number]
        page = main_of(await cash.get(f"{basis}?month=2026-11"))
        assert "¥3,672.00" in page and f"/basis/{first.id}/demand" not in page  # levied: kept
        late = await cash.post(f"{basis}/{first.id}/demand", data=nov | {"kw": "99"})
        assert late.status_code == 409
        levied = main_of(await cash.get("/admin/tariffs/levies?month=2026-11"))
        assert first.number in levied and "¥3,672.00" in levied
        sheet = await cash.get("/admin/tariffs/levies?month=2026-11&format=xlsx")
        book = load_workbook(io.BytesIO(sheet.content)).active
        assert book["I2"].value == 3672 and "¥" in book["I2"].number_format
    async with signed_in(admin_app, "look") as look:
        shown = await look.get(f"{basis}?month=2026-11")
        assert shown.status_code == 200 and "<form" not in main_of(shown).split("</form>", 1)[1]
        refused = await look.post(f"{basis}/{second.id}/capacity",
                                  data={"csrf_token": await look.csrf(), "kva": "1"})  # fmt: skip
        assert refused.status_code == 403
    async with signed_in(admin_app, "west") as west:
        assert (await west.get(basis)).status_code == 404
        assert first.number not in main_of(await west.get("/admin/tariffs/levies?month=2026-11"))
