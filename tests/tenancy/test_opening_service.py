"""开户 (server.tenancy.service.opening) and the account reads beside it, on a real database:
one wallet on a room's water and electricity meters, the opening balance through the counter
service and in the available balance, every refusal leaving nothing behind, the pre-filled
form, the account list and page, and the binding QR."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from server.accounts.models import Account, AccountStatus, BindingTicket
from server.audit.models import OperationLog
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.paging import Paging
from server.metering.models import Meter, MeterStatus
from server.metering.service.balance import available_balance
from server.metering.vocabulary import MeterKind, MeterProtocol
from server.payments.models import CounterChannel, CounterPayment, CreditFollowUp
from server.payments.service import record_counter_payment
from server.places.models import Room, Site
from server.tenancy.service import accounts
from server.tenancy.service.opening import (
    OpeningBalance,
    Tenant,
    open_account,
    opening_form,
)
from tests.factories import (
    create_account,
    create_building,
    create_floor,
    create_organisation,
    create_room,
    create_site,
)

ACTOR = "staff:1"
TENANT = Tenant("星光咖啡有限公司", "13800138000")


async def vacant_room(site: Site, name: str = "A301") -> Room:
    return await create_room(await create_floor(await create_building(site)), name=name)


async def meter_in(room: Room, kind: MeterKind, address: str, **kw: Any) -> Meter:
    await room.fetch_related("floor__building")
    protocol = MeterProtocol.CJT188 if kind is MeterKind.WATER else MeterProtocol.DLT645
    return await Meter.create(**{
        "site_id": room.floor.building.site_id, "room_id": room.id, "kind": kind,  # type: ignore[attr-defined]
        "protocol": protocol, "address": address, "installed_at": datetime(2026, 1, 1, tzinfo=UTC),
        **kw,
    })  # fmt: skip


async def a_room_with_two_meters() -> tuple[Site, Room, Meter, Meter]:
    site = await create_site(await create_organisation())
    room = await vacant_room(site)
    power = await meter_in(room, MeterKind.ELECTRICITY, "000000000101")
    water = await meter_in(room, MeterKind.WATER, "00000000000202")
    return site, room, power, water


async def test_one_wallet_on_water_and_electricity_with_a_cash_opening_balance(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    cash = OpeningBalance(30_000, CounterChannel.CASH, "SJ-0001")
    opened = await open_account(
        [site.id], room.id, TENANT, [water.id, power.id], actor=ACTOR, opening=cash
    )
    account = await Account.get(id=opened.account_id)
    assert (account.number, account.room_id, account.status) == ("H000001", room.id, "open")  # type: ignore[attr-defined]
    assert opened.meter_ids == tuple(sorted([power.id, water.id]))
    for meter in (power, water):
        await meter.refresh_from_db()
        assert (meter.account_id, meter.room_id) == (account.id, room.id)  # type: ignore[attr-defined]
        assert meter.installed_at == datetime(2026, 1, 1, tzinfo=UTC)  # left as it was
    money = await available_balance(account.id)
    assert money.total_fen == 30_000
    assert {u.utility: u.available_fen for u in money.utilities} == {
        "electricity": 30_000, "water": 30_000,
    }  # fmt: skip
    payment = await CounterPayment.get(reference="SJ-0001")
    assert (payment.account_id, payment.amount_fen) == (account.id, 30_000)  # type: ignore[attr-defined]
    follow = await CreditFollowUp.get(credit_key="counter:cash:SJ-0001")
    assert follow.done_at is not None  # run after the commit
    logged = await OperationLog.filter(target_id=str(account.id)).order_by("id")
    assert [log.action for log in logged] == ["account.open", "payment.counter"]
    assert logged[0].actor == ACTOR and "A301" in logged[0].reason
    # the list and the page show the same available balance
    page = await accounts.list_accounts(accounts.AccountFilter([site.id], q="星光"), Paging())
    assert [(r.number, r.meters, r.available.total_fen) for r in page.items] == [  # type: ignore[union-attr]
        ("H000001", 2, 30_000)
    ]
    detail = await accounts.account_detail([site.id], account.id)
    assert detail.account.available.total_fen == 30_000  # type: ignore[union-attr]
    assert [m.address for m in detail.meters] == ["000000000101", "00000000000202"]
    assert [(r.title, r.amount_fen) for r in detail.records] == [("现金充值", 30_000)]


async def test_a_bank_transfer_and_a_given_number(db: None) -> None:
    site, room, power, _ = await a_room_with_two_meters()
    bank = OpeningBalance(123_456, CounterChannel.BANK, "TR-2026-77")
    opened = await open_account(
        [site.id], room.id, Tenant("张伟", type="person"), [power.id], actor=ACTOR,  # type: ignore[arg-type]
        number="B-88", opening=bank,
    )  # fmt: skip
    assert opened.number == "B-88"
    assert (await available_balance(opened.account_id)).total_fen == 123_456
    assert await CounterPayment.filter(channel="bank", reference="TR-2026-77").exists()


async def test_without_an_opening_balance_nothing_is_paid(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    opened = await open_account([site.id], room.id, TENANT, [power.id, water.id], actor=ACTOR)
    assert opened.opening_fen == 0
    assert (await available_balance(opened.account_id)).total_fen == 0
    assert await CounterPayment.all().count() == 0


async def nothing_changed(room: Room, *meters: Meter) -> None:
    assert await Account.filter(room_id=room.id, status=AccountStatus.OPEN).count() <= 1
    for meter in meters:
        before = meter.account_id  # type: ignore[attr-defined]
        await meter.refresh_from_db()
        assert meter.account_id == before  # type: ignore[attr-defined]


async def test_refusals_leave_nothing_behind(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    other_org = await create_site(await create_organisation())
    foreign = await meter_in(await vacant_room(other_org), MeterKind.ELECTRICITY, "000000000909")
    sister = await create_site(site.organisation)  # type: ignore[arg-type]
    elsewhere = await meter_in(await vacant_room(sister), MeterKind.ELECTRICITY, "000000000808")
    next_door = await meter_in(await vacant_room(site, "A302"), MeterKind.WATER, "00000000000303")
    gone = await meter_in(room, MeterKind.ELECTRICITY, "000000000404", status=MeterStatus.REMOVED)
    scope = [site.id, sister.id]
    cases: list[tuple[type[Exception], dict[str, Any], str]] = [
        (NotFound, {"meter_ids": [power.id, foreign.id]}, "表计不存在"),
        (Conflict, {"meter_ids": [power.id, elsewhere.id]}, "属于其他站点"),
        (Conflict, {"meter_ids": [power.id, next_door.id]}, "不在房间 A301"),
        (Conflict, {"meter_ids": [gone.id]}, "不在使用中"),
        (ValidationFailed, {"meter_ids": []}, "请至少选择一块表"),
        (ValidationFailed, {"tenant": Tenant("  ")}, "请填写租户名称"),
        (ValidationFailed, {"number": "户号 1"}, "户号只能由"),
        (ValidationFailed, {"opening": OpeningBalance(100, CounterChannel.CASH, " ")}, "收据号"),
    ]
    for error, change, words in cases:
        args = {"tenant": TENANT, "meter_ids": [power.id, water.id]} | change
        with pytest.raises(error, match=words):
            await open_account(
                scope, room.id, args["tenant"], args["meter_ids"], actor=ACTOR,
                number=change.get("number", ""), opening=change.get("opening"),
            )  # fmt: skip
    with pytest.raises(NotFound, match="房间不存在"):  # a room outside the scope
        await open_account([site.id], (await vacant_room(other_org)).id, TENANT, [foreign.id],
                           actor=ACTOR)  # fmt: skip
    assert await Account.all().count() == 0
    await nothing_changed(room, power, water, foreign, elsewhere, next_door)
    assert await OperationLog.filter(action="account.open").count() == 0


async def test_an_occupied_or_retired_room_and_a_taken_meter_are_refused(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    first = await open_account([site.id], room.id, TENANT, [power.id], actor=ACTOR)
    with pytest.raises(Conflict, match=f"已有在用账户 {first.number}"):
        await open_account([site.id], room.id, Tenant("另一家"), [water.id], actor=ACTOR)
    # the electricity meter moves to the room next door while its account is still open
    next_door = await vacant_room(site, "A302")
    await Meter.filter(id=power.id).update(room_id=next_door.id)
    with pytest.raises(Conflict, match=f"已属于在用账户 {first.number}"):
        await open_account([site.id], next_door.id, Tenant("另一家"), [power.id], actor=ACTOR)
    await Room.filter(id=next_door.id).update(retired_at=datetime.now(UTC))
    with pytest.raises(Conflict, match="已停用"):
        await open_account([site.id], next_door.id, Tenant("另一家"), [power.id], actor=ACTOR)
    with pytest.raises(Conflict, match=f"户号 {first.number} 在本站点已存在"):
        await _taken_number(site, first.number)
    assert await Account.filter(site_id=site.id).count() == 1


async def _taken_number(site: Site, number: str) -> None:
    room = await vacant_room(site, "A303")
    meter = await meter_in(room, MeterKind.ELECTRICITY, "000000000505")
    await open_account([site.id], room.id, TENANT, [meter.id], actor=ACTOR, number=number)


async def test_a_reused_receipt_rolls_the_whole_opening_back(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    other = await create_account(site=site)
    await record_counter_payment(other.id, "cash", 5_000, "SJ-0009", actor=ACTOR)
    cash = OpeningBalance(30_000, CounterChannel.CASH, "SJ-0009")
    with pytest.raises(Conflict):  # ReferenceReused is a Conflict
        await open_account([site.id], room.id, TENANT, [power.id, water.id], actor=ACTOR,
                           opening=cash)  # fmt: skip
    assert await Account.filter(room_id=room.id).count() == 0
    await nothing_changed(room, power, water)
    assert await OperationLog.filter(action="account.open").count() == 0


async def test_the_form_is_prefilled_from_the_room(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    await create_account(site=site, number="H000001")  # the suggested number skips it
    form = await opening_form([site.id], room.id)
    assert form.refusal == "" and form.account is None
    assert sorted(form.ticked) == sorted([power.id, water.id])
    assert form.number == "H000002"
    with pytest.raises(NotFound):
        await opening_form([site.id + 1000], room.id)
    await open_account([site.id], room.id, TENANT, [power.id], actor=ACTOR)
    after = await opening_form([site.id], room.id)
    assert "已有在用账户" in after.refusal
    assert [c.free for c in after.meters if c.meter.id == power.id] == [False]


async def test_the_binding_card_issues_a_one_use_ticket(db: None) -> None:
    site, room, power, _ = await a_room_with_two_meters()
    opened = await open_account([site.id], room.id, TENANT, [power.id], actor=ACTOR)
    card = await accounts.binding_card_for(
        [site.id], opened.account_id, secret=b"k" * 32, hours=72, actor=ACTOR
    )
    assert card.token.startswith("SDB1.") and card.png_data_uri.startswith("data:image/png;base64,")
    assert await BindingTicket.filter(account_id=opened.account_id).count() == 1
    with pytest.raises(NotFound):
        await accounts.binding_card_for(
            [site.id + 1000], opened.account_id, secret=b"k" * 32, hours=72, actor=ACTOR
        )


@pytest.mark.postgres
async def test_two_clerks_opening_one_room_at_once_open_it_once(db: None) -> None:
    site, room, power, water = await a_room_with_two_meters()
    results = await asyncio.gather(
        open_account([site.id], room.id, TENANT, [power.id, water.id], actor=ACTOR,
                     opening=OpeningBalance(10_000, CounterChannel.CASH, "SJ-A")),
        open_account([site.id], room.id, Tenant("另一家"), [power.id, water.id], actor="staff:2",
                     opening=OpeningBalance(20_000, CounterChannel.CASH, "SJ-B")),
        return_exceptions=True,
    )  # fmt: skip
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), results
    assert "已有在用账户" in str(refused[0])
    assert await Account.filter(room_id=room.id).count() == 1
    assert await CounterPayment.all().count() == 1
