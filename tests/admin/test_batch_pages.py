"""Batch operations over the real app (admin/batches.py): a floor's meters picked by place and
by an uploaded list, scheduled for later, watched, cancelled and exported; bad values get a
Chinese error and create nothing; the list shows the batch; the operation log has it."""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook, load_workbook

from server.audit.models import OperationLog
from server.metering.models import MeterBatch, MeterBatchItem, MeterCommand
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, signed_in
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_meter,
    create_organisation,
    create_room,
    create_site,
)


def _workbook(addresses: list[str]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["表地址", "备注"])
    for a in addresses:
        sheet.append([a, ""])
    out = BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_floor_batch_scheduled_watched_cancelled_and_exported(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    building = await create_building(site, name="一号楼")
    floor, other = await create_floor(building, name="3层"), await create_floor(building)
    meters = []
    for n, f in enumerate([floor, floor, floor, other]):
        account = await create_account(await create_room(f, name=f"R{n}"), site)
        meters.append(await create_meter(account, address=f"0000000031{n:02d}"))
    await create_staff("ops", StaffRole.OPERATOR, org)
    await create_staff("viewer", StaffRole.VIEWER, org)
    form = {
        "site": str(site.id), "place": f"f:{floor.id}", "action": "trip", "when": "later",
        "run_at": "2027-06-01T08:00", "title": "三层检修停电",
    }  # fmt: skip
    async with signed_in(admin_app, "ops") as b:
        page = await b.get("/admin/batches/new")
        assert page.status_code == 200 and "3层" in page.text and "一号楼" in page.text
        bad = await b.post(
            "/admin/batches", data={**form, "action": "prices", "price_1": "abc",
                                    "csrf_token": await b.csrf()},
        )  # fmt: skip
        assert bad.status_code == 422 and "尖电价格式不正确" in bad.text
        listed = _workbook([meters[0].address, meters[1].address, meters[3].address])
        made = await b.post(
            "/admin/batches", data={**form, "csrf_token": await b.csrf()},
            files={"file": ("清单.xlsx", listed)},
        )  # fmt: skip
        assert made.status_code == 303, made.text.split('data-field="error">')[-1][:300]
        batch = await MeterBatch.get()
        assert made.headers["location"] == f"/admin/batches/{batch.id}"
        # the floor and the list together: the two listed meters on the 3rd floor
        items = await MeterBatchItem.filter(batch_id=batch.id).values_list("meter_id", flat=True)
        assert sorted(items) == [meters[0].id, meters[1].id]
        assert batch.run_at.isoformat() == "2027-06-01T00:00:00+00:00"  # 08:00 in Shanghai
        detail = await b.get(made.headers["location"])
        assert "三层检修停电" in detail.text and "待执行" in detail.text
        assert 'hx-trigger="every 1s"' in detail.text and "清单.xlsx" in detail.text
        assert detail.text.count("data-meter=") == 2 and "取消未发送的" in detail.text
        cancel = await b.post(
            f"/admin/batches/{batch.id}/cancel", data={"csrf_token": await b.csrf()}
        )
        assert cancel.status_code == 303
        live = await b.get(f"/admin/batches/{batch.id}/live")
        assert "已取消" in live.text and "hx-trigger" not in live.text  # polling stops
        export = await b.get(f"/admin/batches/{batch.id}", params={"format": "xlsx"})
        rows = list(load_workbook(BytesIO(export.content)).active.iter_rows(values_only=True))
        assert rows[0][:4] == ("表地址", "类型", "房间", "状态")
        assert sorted(r[0] for r in rows[1:]) == [meters[0].address, meters[1].address]
        assert {r[3] for r in rows[1:]} == {"已取消"}
        listing = await b.get("/admin/batches")
        assert "三层检修停电" in listing.text and "已取消" in listing.text
        assert (await b.get("/admin/batches", params={"format": "xlsx"})).status_code == 200
    async with signed_in(admin_app, "viewer") as v:
        assert (await v.get(f"/admin/batches/{batch.id}")).status_code == 200
        refused = await v.post(
            "/admin/batches", data={**form, "place": "", "csrf_token": await v.csrf()}
        )
        assert refused.status_code == 403
    assert await MeterBatch.all().count() == 1 and not await MeterCommand.exists()
    logged = await OperationLog.filter(target_type="meter_batch").values_list("action", flat=True)
    assert logged == ["batch.create", "batch.cancel"]
