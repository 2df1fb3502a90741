"""公摊 / 线变损 / 合规 over the real app: a common account made and filled from the pages,
previewed, posted once; a loss period previewed then posted; the compliance statement with
the seeded mark-up flagged; every list exported to Excel; a finance clerk may, a viewer not."""

from __future__ import annotations

from io import BytesIO

from openpyxl import load_workbook

from server.accounts.models import Account
from server.audit.models import OperationLog
from server.places.models import Organisation
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, create_staff, main_of, signed_in
from tests.sharing.conftest import flat_plan, three_floors


def _cells(content: bytes) -> list[tuple]:
    book = load_workbook(BytesIO(content), read_only=True)
    return [row for sheet in book for row in sheet.iter_rows(values_only=True)]


async def test_sharing_losses_and_compliance_from_the_pages(admin_app: AdminApp) -> None:
    b = await three_floors(prices=("0.70", "0.85", "0.70"), lift_use="300")
    plan = await flat_plan(b.site, "公共区域按电网价", "0.70")
    org = await Organisation.get(id=b.site.organisation_id)  # type: ignore[attr-defined]
    await create_staff("caiwu", StaffRole.FINANCE, org)
    await create_staff("kan", StaffRole.VIEWER, org)
    async with signed_in(admin_app, "caiwu") as browser:
        token = await browser.csrf()
        made = await browser.post("/admin/sharing", data={
            "csrf_token": token, "site_id": b.site.id, "name": "A栋电梯",
            "meter_address": b.lift.address, "plan_id": plan.id, "method": "area",
        })  # fmt: skip
        assert made.status_code == 303, made.text
        url = made.headers["location"]
        for account in b.accounts:
            added = await browser.post(
                f"{url}/members", data={"csrf_token": token, "number": account.number}
            )
            assert added.status_code == 303, added.text
        page = await browser.get(url, params={"period": "2026-11"})
        assert "预览" in main_of(page) and "¥50.40" in page.text  # 120/500 of ¥210.00
        posted = await browser.post(f"{url}/run", data={"csrf_token": token, "period": "2026-11"})
        assert posted.status_code == 303
        again = await browser.post(f"{url}/run", data={"csrf_token": token, "period": "2026-11"})
        assert again.status_code == 303
        assert "已扣费" in main_of(await browser.get(url, params={"period": "2026-11"}))
        shares = _cells(
            (await browser.get(url, params={"period": "2026-11", "format": "xlsx"})).content
        )
        assert [row[4] for row in shares[1:]] == [50.4, 84, 75.6]
        assert len(_cells((await browser.get("/admin/sharing?format=xlsx")).content)) == 2

        form = {
            "csrf_token": token, "site_id": b.site.id, "period": "2026-11",
            "start_reading": "10000", "end_reading": "12000", "multiplier": "1",
            "bill": "1400.00", "own_use": "400", "method": "usage", "cap_pct": "10",
        }  # fmt: skip
        seen = await browser.post("/admin/losses/preview", data=form)
        assert seen.status_code == 200 and "5.00%" in seen.text and "确认分摊并扣费" in seen.text
        wrong = await browser.post("/admin/losses/preview", data=form | {"end_reading": "11000"})
        assert wrong.status_code == 422 and "关口表电量小于" in wrong.text
        entered = await browser.post("/admin/losses/entry", data=form)  # for the monthly run
        assert entered.status_code == 303 and "entered=2026-11" in entered.headers["location"]
        done = await browser.post("/admin/losses", data=form)
        assert done.status_code == 303
        late = await browser.post("/admin/losses/entry", data=form)
        assert late.status_code == 422 and "已入账" in late.text
        detail = await browser.get(done.headers["location"])
        assert "已扣费" in main_of(detail) and "¥29.17" in detail.text  # 500/1,200 of ¥70
        assert len(_cells((await browser.get("/admin/losses?format=xlsx")).content)) == 2

        statement = await browser.get("/admin/compliance", params={"period": "2026-11"})
        assert statement.status_code == 200
        text = main_of(statement)
        assert text.count("电价加价") >= 2 and "不分摊给租户" in text and "data-print" in text
        rows = _cells(
            (
                await browser.get(
                    "/admin/compliance", params={"period": "2026-11", "format": "xlsx"}
                )
            ).content
        )
        assert [row[-1] for row in rows[1:]] == ["合规", "电价加价", "合规"]
    balances = [(await Account.get(id=a.id)).balance_fen for a in b.accounts]
    # energy 21,000 / 42,500 / 28,000; lifts 5,040 / 8,400 / 7,560; losses 1,750 / 2,917 / 2,333
    assert balances == [-27_790, -53_817, -37_893]
    assert await OperationLog.filter(action__in=["sharing.run", "losses.run"]).count() == 2

    async with signed_in(admin_app, "kan") as viewer:
        refused = await viewer.post(
            f"{url}/run", data={"csrf_token": await viewer.csrf(), "period": "2026-12"}
        )
        assert refused.status_code == 403
        assert (await viewer.get(url)).status_code == 200
