"""The review pages over the real app: 换表 (entered readings, a confirmation, the chain
linked both ways and its days continuous; 点抄 of the old meter followed to its answer),
held readings (listed with their reason in Chinese, accepted once and billed once, rejected
with a reason, exported) and alarm records (searched, filtered, exported) — scoped to the
staff member's organisation (404 beyond it) and refused to roles without the devices action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import httpx
from openpyxl import load_workbook

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.billing.models import UsageChargeRow
from server.billing.pipeline import process_readings
from server.ledger import service as ledger
from server.ledger.check import check_ledger
from server.ledger.posting import Channel
from server.metering.models import (
    AlarmRecord,
    CommandOp,
    CommandStatus,
    GatewayKind,
    HeldReading,
    Meter,
    MeterCommand,
    MeterStatus,
    ReviewStatus,
)
from server.metering.reading import Reading
from server.metering.service.commands import transition
from server.metering.service.readings import IncomingReading
from server.places.models import Organisation
from server.staff.models import StaffRole
from server.tariffs.models import TariffKind
from server.tariffs.service import assign, create_plan
from tests.admin.conftest import AdminApp, Browser, create_staff, main_of, signed_in
from tests.factories import create_account, create_gateway, create_meter, create_site

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=2)
H = timedelta(hours=1)


async def _post(b: Browser, url: str, **form: str) -> httpx.Response:
    return await b.post(url, data={"csrf_token": await b.csrf(), **form})


async def _park(org: Organisation, tenant: str = "甲方商户") -> Meter:
    site = await create_site(org)
    account = await create_account(site=site, tenant_name=tenant)
    plan = await create_plan(
        account.site_id, "电价", TariffKind.ELECTRICITY,
        {"kind": "flat", "unit": "kWh", "price": "1.00"},
        effective_from=datetime(2026, 1, 1, tzinfo=UTC), actor="staff:1",
    )  # fmt: skip
    await assign(account.id, plan.id)
    await ledger.recharge(account.id, Channel.CASH, 100_000, key=f"o-{account.id}", actor="t")
    gw = await create_gateway(site, kind=GatewayKind.TCP_TRANSPARENT)
    meter = await create_meter(account, gateway=gw, rated_kw=Decimal(10), online=True)
    await _read(meter, T0, "1000.00")
    await _read(meter, T0 + H, "1005.00")  # 5 kWh, billed
    return meter


async def _read(meter: Meter, at: datetime, total: str) -> None:
    await process_readings([IncomingReading(meter.id, Reading(at, Decimal(total)))], now=at)


async def test_replace_a_meter_with_entered_readings_and_follow_the_chain(
    admin_app: AdminApp,
) -> None:
    org = await Organisation.create(name="甲集团")
    old = await _park(org)
    await create_meter(await Account.get(id=old.account_id), address="000000000999")  # type: ignore[attr-defined]
    await create_staff("op", StaffRole.OPERATOR, org)
    await create_staff("viewer", StaffRole.VIEWER, org)
    url = f"/admin/meters/{old.id}/replace"
    async with signed_in(admin_app, "viewer") as b:
        assert (await b.get(url)).status_code == 403
        assert (await _post(b, url, old_final="1010", address="000000000888")).status_code == 403
        assert "换表</a>" not in (await b.get(f"/admin/meters/{old.id}")).text
    async with signed_in(admin_app, "op") as b:
        page = await b.get(f"/admin/meters/{old.id}")
        assert f'href="{url}"' in page.text
        form = await b.get(url)
        assert form.status_code == 200 and "1005" in main_of(form)
        fields = {"old_final": "1010.00", "protocol": "dlt645", "address": "8888",
                  "ct_ratio": "1", "pt_ratio": "1", "new_first": "0"}  # fmt: skip
        bad = await _post(b, url, **fields)
        assert bad.status_code == 422 and "12 位数字" in bad.text
        assert 'value="8888"' in bad.text  # what was typed comes back
        taken = await _post(b, url, **{**fields, "address": "000000000999"})
        assert taken.status_code == 409 and "已被在用仪表" in taken.text
        fields["address"] = "000000000888"
        confirm = await _post(b, url, **fields)
        assert confirm.status_code == 200 and "确认换表" in confirm.text
        assert "5.0000 kWh" in confirm.text  # the closing use: 1010 − 1005
        assert (await Meter.get(id=old.id)).status == MeterStatus.ACTIVE  # nothing yet
        done = await _post(b, url, **fields, confirm="1")
        assert done.status_code == 303, done.text
        new = await Meter.get(address="000000000888")
        assert done.headers["location"] == f"/admin/meters/{new.id}"
        assert (new.replaces_id, new.account_id) == (old.id, old.account_id)  # type: ignore[attr-defined]
        assert (await Meter.get(id=old.id)).status == MeterStatus.REMOVED
        # The new meter's page links back, the old one forward; the days are one series.
        back = await b.get(f"/admin/meters/{new.id}/chain")
        assert f'href="/admin/meters/{old.id}" data-field="predecessor"' in back.text
        forward = await b.get(f"/admin/meters/{old.id}/chain")
        assert f'href="/admin/meters/{new.id}" data-field="successor"' in forward.text
        assert "换表" not in (await b.get(f"/admin/meters/{old.id}")).text.split("<h1", 1)[1][:600]
        await _read(new, datetime.now(UTC) + H, "2.00")
        table = (await b.get(f"/admin/meters/{new.id}/chain")).text
        today = datetime.now(UTC).astimezone(admin_app.app.ctx.settings.tz).date()
        assert (T0.astimezone(admin_app.app.ctx.settings.tz).date().isoformat()) in table
        assert today.isoformat() in table and "000000000888" in table and old.address in table
        assert (await _post(b, url, **fields, confirm="1")).status_code == 409  # removed
    charged = await UsageChargeRow.filter(account_id=old.account_id).order_by("reading_at")
    assert [Decimal(c.quantity) for c in charged] == [Decimal(5), Decimal(5), Decimal(2)]
    log = await OperationLog.get(action="meter.replaced")
    assert log.actor.startswith("staff:") and log.target_id == str(old.id)


async def test_read_the_old_meter_now_and_use_its_answer(admin_app: AdminApp) -> None:
    org = await Organisation.create(name="甲集团")
    meter = await _park(org)
    other = await _park(await Organisation.create(name="乙集团"), tenant="乙方商户")
    await create_staff("op", StaffRole.OPERATOR, org)
    async with signed_in(admin_app, "op") as b:
        asked = await _post(b, f"/admin/meters/{meter.id}/replace/read")
        assert asked.status_code == 303
        cmd = await MeterCommand.get(meter_id=meter.id, op=CommandOp.READ)
        assert asked.headers["location"] == f"/admin/meters/{meter.id}/replace?read={cmd.id}"
        waiting = await b.get(f"/admin/meters/{meter.id}/replace/read?command={cmd.id}")
        assert 'data-status="queued"' in waiting.text and 'hx-trigger="every 2s"' in waiting.text
        await transition(cmd, CommandStatus.ACKED, now=NOW, result={"total": "1007.25"})
        answered = await b.get(f"/admin/meters/{meter.id}/replace/read?command={cmd.id}")
        assert "1007.25" in answered.text and "every 2s" not in answered.text
        used = await b.get(f"/admin/meters/{meter.id}/replace?read={cmd.id}&use=1")
        assert 'name="old_final" value="1007.25"' in used.text
        assert (await _post(b, f"/admin/meters/{other.id}/replace/read")).status_code == 404
        foreign = await b.get(f"/admin/meters/{other.id}/replace/read?command={cmd.id}")
        assert foreign.status_code == 404
    assert await MeterCommand.filter(meter_id=other.id).count() == 0


async def test_held_readings_accepted_once_rejected_with_a_reason_and_exported(
    admin_app: AdminApp,
) -> None:
    org = await Organisation.create(name="甲集团")
    meter = await _park(org)
    await _read(meter, T0 + H, "1005.50")  # the same moment, other registers: a conflict
    await _read(meter, T0 + 2 * H, "1100.00")  # 95 kWh in an hour on 10 kW: implausible
    other = await _park(await Organisation.create(name="乙集团"), tenant="乙方商户")
    await _read(other, T0 + 2 * H, "3.00")  # a reset, the other organisation's
    foreign = await HeldReading.get(meter_id=other.id)
    conflict = await HeldReading.get(meter_id=meter.id, outcome="conflict")
    jump = await HeldReading.get(meter_id=meter.id, outcome="implausible")
    await create_staff("op", StaffRole.OPERATOR, org)
    await create_staff("viewer", StaffRole.VIEWER, org)
    balance = (await Account.get(id=meter.account_id)).balance_fen  # type: ignore[attr-defined]
    async with signed_in(admin_app, "viewer") as b:
        listed = main_of(await b.get("/admin/readings/held"))
        assert "异常跳变" in listed and "读数冲突" in listed and "乙方商户" not in listed
        assert "/accept" not in listed
        assert (await _post(b, f"/admin/readings/held/{jump.id}/accept")).status_code == 403
    async with signed_in(admin_app, "op") as b:
        page = main_of(await b.get("/admin/readings/held", params={"reason": "implausible"}))
        assert "按差值 95 计费" in page and "读数冲突" not in page.split("<tbody>")[1]
        back = "/admin/readings/held?reason=implausible"
        accepted = await _post(b, f"/admin/readings/held/{jump.id}/accept", back=back)
        assert accepted.status_code == 303
        assert accepted.headers["location"] == f"{back}&done=accepted-{jump.id}"
        again = await _post(b, f"/admin/readings/held/{jump.id}/accept")
        assert again.status_code == 303  # a double click: nothing more
        refused = await _post(b, f"/admin/readings/held/{conflict.id}/accept")
        assert refused.status_code == 409 and "只能驳回" in refused.text
        empty = await _post(b, f"/admin/readings/held/{conflict.id}/reject", reason="")
        assert empty.status_code == 422
        rejected = await _post(b, f"/admin/readings/held/{conflict.id}/reject", reason="重复上报")
        assert rejected.status_code == 303
        for action in ("accept", "reject"):
            answer = await _post(b, f"/admin/readings/held/{foreign.id}/{action}", reason="x")
            assert answer.status_code == 404
        done = main_of(await b.get("/admin/readings/held", params={"status": "all"}))
        assert "已接受：按读数差计费 95" in done and "重复上报" in done
        sheet = await b.get("/admin/readings/held", params={"status": "all", "format": "xlsx"})
        rows = list(load_workbook(BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert sorted(r[7] for r in rows[1:]) == ["异常跳变", "读数冲突"]
        assert {r[10] for r in rows[1:]} == {"已接受", "已驳回"}
    assert (await Account.get(id=meter.account_id)).balance_fen == balance - 9_500  # type: ignore[attr-defined]
    await jump.refresh_from_db()
    await foreign.refresh_from_db()
    assert jump.status == ReviewStatus.ACCEPTED and jump.decided_by.startswith("staff:")  # type: ignore[union-attr]
    assert foreign.status == ReviewStatus.OPEN
    actions = await OperationLog.filter(action__startswith="reading.").values_list(
        "action", "actor"
    )
    assert sorted(a for a, who in actions if who.startswith("staff:")) == [
        "reading.accepted", "reading.rejected"
    ]  # fmt: skip
    assert await check_ledger() == []


async def test_alarm_records_searched_filtered_and_exported(admin_app: AdminApp) -> None:
    org = await Organisation.create(name="甲集团")
    site = await create_site(org)
    a = await create_account(site=site, tenant_name="甲方商户", number="HA0001")
    b_ = await create_account(site=site, tenant_name="丙方商户", number="HC0001")
    await create_meter(a, address="000000004242")
    foreign = await create_account(tenant_name="乙方商户", number="HB0001")
    day = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    for account, level, at in ((a, 1, day), (a, 3, day + timedelta(days=2)), (b_, 2, day),
                               (foreign, 1, day)):  # fmt: skip
        await AlarmRecord.create(
            account=account, kind="balance", level=level, balance_fen=-100 * level,
            message=f"{account.tenant_name} 余额不足 {level}", created_at=at,
        )  # fmt: skip
    await create_staff("viewer", StaffRole.VIEWER, org)
    async with signed_in(admin_app, "viewer") as b:
        everything = main_of(await b.get("/admin/alarms"))
        assert "甲方商户 余额不足 3" in everything and "丙方商户" in everything
        assert "乙方商户" not in everything and "三级（断电）" in everything
        by_meter = main_of(await b.get("/admin/alarms", params={"q": "4242"}))
        assert "甲方商户" in by_meter and "丙方商户" not in by_meter
        by_level = main_of(await b.get("/admin/alarms", params={"level": "2"}))
        assert "丙方商户" in by_level and "甲方商户" not in by_level
        dated = main_of(await b.get("/admin/alarms", params={"start": "2026-03-04"}))
        assert "余额不足 3" in dated and "余额不足 1" not in dated
        sheet = await b.get("/admin/alarms", params={"q": "甲方", "format": "xlsx"})
        rows = list(load_workbook(BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert [r[6] for r in rows[1:]] == ["三级（断电）", "一级"]
        assert (await b.get("/admin/alarms", params={"site": foreign.site_id})).status_code == 404
