"""The devices pages over the real app: register a gateway and a meter, see them listed,
exported and on their pages; edit, retire, remove with the CSRF token; 422 for a bad form,
409 for an address in use; another organisation's objects answer 404, a viewer changes
nothing (403)."""

from __future__ import annotations

from io import BytesIO

from openpyxl import load_workbook

from server.audit.models import OperationLog
from server.metering.models import Gateway, GatewayKind, Meter, MeterStatus
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, Browser, create_staff
from tests.factories import (
    create_account,
    create_gateway,
    create_meter,
    create_organisation,
    create_site,
)


async def _post(b: Browser, url: str, **form: str) -> object:
    return await b.post(url, data={"csrf_token": await b.csrf(), **form})


async def test_register_a_gateway_and_a_meter_then_edit_and_remove(admin_app: AdminApp) -> None:
    org = await create_organisation()
    account = await create_account(site=await create_site(org))
    await create_staff("keeper", StaffRole.SITE_ADMIN, org)
    async with admin_app.browser() as b:
        await b.sign_in("keeper")
        made = await _post(b, "/admin/gateways/new", site_id=str(account.site_id), code="DTU-7",
                           kind="tcp", host="127.0.0.1", port="8899")  # fmt: skip
        assert made.status_code == 303, made.text  # type: ignore[attr-defined]
        gw = await Gateway.get(code="DTU-7")
        assert made.headers["location"] == f"/admin/gateways/{gw.id}"  # type: ignore[attr-defined]
        form = {"kind": "electricity", "protocol": "dlt645", "address": "000000000701",
                "gateway_id": str(gw.id), "room_id": str(account.room_id),  # type: ignore[attr-defined]
                "ct_ratio": "1", "pt_ratio": "1", "billing": "platform",
                "start_reading": "100.5"}  # fmt: skip
        bad = await _post(b, "/admin/meters/new", **{**form, "address": "123"})
        assert bad.status_code == 422 and "12 位数字" in bad.text  # type: ignore[attr-defined]
        assert 'value="123"' in bad.text  # type: ignore[attr-defined]  # the input comes back
        registered = await _post(b, "/admin/meters/new", **form)
        assert registered.status_code == 303, registered.text  # type: ignore[attr-defined]
        meter = await Meter.get(address="000000000701")
        assert meter.account_id == account.id
        again = await _post(b, "/admin/meters/new", **form)
        assert again.status_code == 409 and "已被在用仪表" in again.text  # type: ignore[attr-defined]
        assert "登记仪表" in again.text  # type: ignore[attr-defined]  # the form, not a dead end
        page = await b.get(f"/admin/meters/{meter.id}")
        assert page.status_code == 200 and "100.5" in page.text and "人工录入" in page.text
        listed = await b.get("/admin/meters", params={"q": "0701"})
        assert f"/admin/meters/{meter.id}" in listed.text
        sheet = await b.get("/admin/meters", params={"format": "xlsx"})
        rows = list(load_workbook(BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert rows[1][4] == "000000000701" and len(rows) == 2
        edited = await _post(b, f"/admin/meters/{meter.id}", **{**form, "ct_ratio": "40"})
        assert edited.status_code == 303
        assert (await Meter.get(id=meter.id)).ct_ratio == 40
        retire = await _post(b, f"/admin/gateways/{gw.id}/retire")
        assert retire.status_code == 409 and "在用仪表" in retire.text  # type: ignore[attr-defined]
        removed = await _post(b, f"/admin/meters/{meter.id}/remove")
        assert removed.status_code == 303
        assert (await Meter.get(id=meter.id)).status == MeterStatus.REMOVED
        assert (await _post(b, f"/admin/gateways/{gw.id}/retire")).status_code == 303  # type: ignore[attr-defined]
        assert "已退役" in (await b.get(f"/admin/gateways/{gw.id}")).text
    actions = set(
        await OperationLog.filter(actor__startswith="staff:").values_list("action", flat=True)
    )
    assert {
        "gateway.create",
        "gateway.retire",
        "meter.register",
        "meter.edit",
        "meter.remove",
    } <= actions


async def test_another_organisations_devices_answer_404(admin_app: AdminApp) -> None:
    mine, theirs = await create_organisation(), await create_organisation()
    await create_site(mine)
    their_site = await create_site(theirs)
    gw = await create_gateway(their_site, kind=GatewayKind.TCP_TRANSPARENT, host="h", port=1)
    meter = await create_meter(await create_account(site=their_site), gateway=gw)
    await create_staff("head", StaffRole.ORG_ADMIN, mine)
    async with admin_app.browser() as b:
        await b.sign_in("head")
        for url in (f"/admin/gateways/{gw.id}", f"/admin/meters/{meter.id}"):
            assert (await b.get(url)).status_code == 404
        writes = {
            f"/admin/gateways/{gw.id}": {"code": "X", "kind": "mqtt"},
            f"/admin/gateways/{gw.id}/retire": {},
            f"/admin/meters/{meter.id}": {"kind": "electricity", "protocol": "dlt645",
                                          "address": "000000000001", "gateway_id": str(gw.id)},
            f"/admin/meters/{meter.id}/remove": {},
            "/admin/meters/new": {"kind": "electricity", "protocol": "dlt645",
                                  "address": "000000000002", "gateway_id": str(gw.id)},
            "/admin/gateways/new": {"site_id": str(their_site.id), "code": "Y", "kind": "mqtt"},
        }  # fmt: skip
        for url, form in writes.items():
            answer = await _post(b, url, **form)
            assert answer.status_code == 404, (url, answer.status_code)  # type: ignore[attr-defined]
        assert "000000" not in (await b.get("/admin/meters", params={"status": ""})).text
    assert (await Meter.get(id=meter.id)).status == MeterStatus.ACTIVE
    assert not await Gateway.exists(code__in=["X", "Y"])


async def test_a_viewer_sees_but_changes_nothing_and_csrf_is_required(admin_app: AdminApp) -> None:
    org = await create_organisation()
    site = await create_site(org)
    gw = await create_gateway(site, kind=GatewayKind.MQTT)
    meter = await create_meter(await create_account(site=site), gateway=gw)
    await create_staff("watcher", StaffRole.VIEWER, org)
    await create_staff("op", StaffRole.OPERATOR, org)
    async with admin_app.browser() as viewer, admin_app.browser() as op:
        await viewer.sign_in("watcher")
        await op.sign_in("op")
        page = await viewer.get(f"/admin/meters/{meter.id}")
        assert page.status_code == 200 and "拆除" not in page.text and "保存修改" not in page.text
        assert (await viewer.get("/admin/gateways")).status_code == 200
        assert (await viewer.get("/admin/meters/new")).status_code == 403
        refused = await _post(viewer, f"/admin/meters/{meter.id}/remove")
        assert refused.status_code == 403  # type: ignore[attr-defined]
        no_token = await op.post(f"/admin/meters/{meter.id}/remove")
        assert no_token.status_code == 403
        assert (await Meter.get(id=meter.id)).status == MeterStatus.ACTIVE
        assert (await _post(op, f"/admin/meters/{meter.id}/remove")).status_code == 303  # type: ignore[attr-defined]
    assert (await Meter.get(id=meter.id)).status == MeterStatus.REMOVED
