"""The control panel over the real app (admin/control.py): the room page loads it, a button
queues its command once however often the form is sent, the card polls while a command is in
flight and stops when all are finished; another organisation's meter or room is 404 with
nothing queued; roles without the control action get 403 with nothing queued; meter-billed
actions (表内告警金额, 下发充值) check what they are given. And the rule behind 保电: the
automatic trip at zero balance skips a protected meter."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from io import BytesIO

import httpx
from openpyxl import load_workbook

from server.audit.models import OperationLog
from server.ledger import service as ledger
from server.ledger.posting import Channel, ChargeType
from server.metering.models import (
    CommandOp,
    CommandStatus,
    Meter,
    MeterBilling,
    MeterCommand,
)
from server.metering.service.alarm_service import evaluate_accounts
from server.metering.service.commands import transition
from server.metering.vocabulary import RelayState
from server.places.models import Organisation
from server.staff.models import StaffRole
from tests.admin.conftest import AdminApp, Browser, create_staff, signed_in
from tests.factories import create_account, create_meter, create_organisation, create_site


def _token(panel: httpx.Response, meter_id: int) -> str:
    card = panel.text.split(f'id="control-meter-{meter_id}"', 1)[1]
    found = re.search(r'name="token" value="([^"]+)"', card)
    assert found, card[:800]
    return found.group(1)


async def _send(b: Browser, meter_id: int, op: str, token: str, **more: str) -> httpx.Response:
    form = {"csrf_token": await b.csrf(), "op": op, "token": token, **more}
    return await b.post(f"/admin/meters/{meter_id}/command", data=form)


async def _park(org: Organisation, **meter: object) -> tuple[Meter, int]:
    account = await create_account(site=await create_site(org))
    m = await create_meter(account, relay_state=RelayState.CLOSED, online=True, **meter)
    return m, account.room_id  # type: ignore[attr-defined]


async def test_trip_from_the_room_page_once_then_watch_it_finish(admin_app: AdminApp) -> None:
    org = await create_organisation()
    meter, room_id = await _park(org)
    user = await create_staff("ops", StaffRole.OPERATOR, org)
    async with signed_in(admin_app, "ops") as b:
        room = await b.get(f"/admin/rooms/{room_id}")
        assert f'hx-get="/admin/rooms/{room_id}/control"' in room.text
        panel = await b.get(f"/admin/rooms/{room_id}/control")
        assert panel.status_code == 200 and "远程控制" in panel.text
        for label in ("分闸", "合闸", "保电开", "保电关", "点抄"):
            assert f">{label}</button>" in panel.text
        assert "设置表内告警金额" not in panel.text and "下发充值" not in panel.text  # platform
        token = _token(panel, meter.id)
        first = await _send(b, meter.id, "trip", token, back=f"room:{room_id}")
        again = await _send(b, meter.id, "trip", token, back=f"room:{room_id}")  # double click
        assert first.status_code == again.status_code == 303
        assert first.headers["location"] == f"/admin/rooms/{room_id}#control-meter-{meter.id}"
        cmds = await MeterCommand.filter(meter_id=meter.id)
        assert len(cmds) == 1 and cmds[0].op == CommandOp.TRIP
        cmd = cmds[0]
        assert cmd.actor == f"staff:{user.id}" and cmd.params == {"cause": "staff"}
        card = await b.get(f"/admin/meters/{meter.id}/control")
        assert 'data-in-flight="yes"' in card.text and 'hx-trigger="every 1s"' in card.text
        assert "排队中" in card.text
        await transition(cmd, CommandStatus.SENT, now=datetime.now(UTC), log_action="x.sent")
        assert "已发送" in (await b.get(f"/admin/meters/{meter.id}/control")).text
        await transition(cmd, CommandStatus.FAILED, now=datetime.now(UTC), error="表计拒绝: 保电")
        card = await b.get(f"/admin/meters/{meter.id}/control")
        assert 'data-in-flight="no"' in card.text and "hx-trigger" not in card.text
        assert "失败" in card.text and "表计拒绝: 保电" in card.text  # the reason shows
        other = _token(card, meter.id)
        assert other != token  # a fresh rendering, a fresh command
        assert (
            (await _send(b, meter.id, "close", other))
            .headers["location"]
            .startswith(f"/admin/meters/{meter.id}")
        )
        assert await MeterCommand.filter(meter_id=meter.id).count() == 2
        page = await b.get(f"/admin/meters/{meter.id}")  # the meter page loads the same card
        assert f'hx-get="/admin/meters/{meter.id}/control"' in page.text
        history = await b.get(f"/admin/meters/{meter.id}/commands", params={"per_page": 1})
        assert history.status_code == 200 and "共 2 条" in history.text
        sheet = await b.get(f"/admin/meters/{meter.id}/commands", params={"format": "xlsx"})
        rows = list(load_workbook(BytesIO(sheet.content)).active.iter_rows(values_only=True))
        assert [r[2] for r in rows[1:]] == ["合闸", "分闸"]
    logged = await OperationLog.filter(action="command.trip", target_id=str(meter.id))
    assert [(e.actor, e.site_id) for e in logged] == [(f"staff:{user.id}", meter.site_id)]


async def test_another_organisations_meter_is_404_and_nothing_is_queued(
    admin_app: AdminApp,
) -> None:
    mine, theirs = await create_organisation(), await create_organisation()
    meter, room_id = await _park(theirs)
    await create_staff("ops", StaffRole.ORG_ADMIN, mine)
    async with signed_in(admin_app, "ops") as b:
        for url in (f"/admin/rooms/{room_id}/control", f"/admin/meters/{meter.id}/control",
                    f"/admin/meters/{meter.id}/commands"):  # fmt: skip
            assert (await b.get(url)).status_code == 404, url
        for op in ("trip", "protect_on", "read"):
            answer = await _send(b, meter.id, op, "x" * 24)
            assert answer.status_code == 404
    assert await MeterCommand.filter(meter_id=meter.id).count() == 0


async def test_roles_without_control_get_403_and_queue_nothing(admin_app: AdminApp) -> None:
    org = await create_organisation()
    meter, room_id = await _park(org)
    for role in (StaffRole.VIEWER, StaffRole.FINANCE):
        await create_staff(role.value, role, org)
        async with signed_in(admin_app, role.value) as b:
            panel = await b.get(f"/admin/rooms/{room_id}/control")
            assert panel.status_code == 200 and 'name="token"' not in panel.text  # no buttons
            for op in ("trip", "close", "protect_on"):
                assert (await _send(b, meter.id, op, "y" * 24)).status_code == 403
    assert await MeterCommand.filter(meter_id=meter.id).count() == 0


async def test_meter_billed_actions_check_what_they_are_given(admin_app: AdminApp) -> None:
    org = await create_organisation()
    meter, _ = await _park(org, billing=MeterBilling.METER, money_fen=1_000)
    platform, _ = await _park(org)
    await ledger.recharge(meter.account_id, Channel.CASH, 8_000, key="t-1", actor="staff:1")
    await create_staff("boss", StaffRole.SITE_ADMIN, org)
    async with signed_in(admin_app, "boss") as b:
        card = await b.get(f"/admin/meters/{meter.id}/control")
        assert "钱包可下发：¥80.00" in card.text and "下发充值" in card.text
        token = _token(card, meter.id)
        bad = await _send(b, meter.id, "alarm_amounts", token, alarm_1="5", alarm_2="20")
        assert bad.status_code == 422 and "不能高于" in bad.text
        bad = await _send(b, meter.id, "alarm_amounts", token, alarm_1="abc", alarm_2="1")
        assert bad.status_code == 422
        ok = await _send(b, meter.id, "alarm_amounts", token, alarm_1="20", alarm_2="5.50")
        assert ok.status_code == 303
        for _ in range(2):  # a double click sends the wallet once
            assert (await _send(b, meter.id, "recharge", token)).status_code == 303
        nothing = await _send(b, meter.id, "recharge", _token(await b.get(
            f"/admin/meters/{meter.id}/control"), meter.id))  # fmt: skip
        assert nothing.status_code == 409  # the free money is already on its way
        refused = await _send(b, platform.id, "alarm_amounts", "z" * 24, alarm_1="2", alarm_2="1")
        assert refused.status_code == 422 and "表端计费" in refused.text
        unknown = await _send(b, meter.id, "explode", "z" * 24)
        assert unknown.status_code == 422
        stale = await _send(b, meter.id, "read", "short")
        assert stale.status_code == 422
    sent = await MeterCommand.filter(meter_id=meter.id).order_by("id")
    assert [(c.op, c.params) for c in sent] == [
        (CommandOp.ALARM_AMOUNTS, {"alarm_1_fen": 2000, "alarm_2_fen": 550}),
        (CommandOp.RECHARGE, {"amount_fen": 8000, "account_id": meter.account_id}),
    ]
    assert await MeterCommand.filter(meter_id=platform.id).count() == 0


async def test_protect_makes_the_automatic_trip_at_zero_skip_the_meter(db: None) -> None:
    """保电 (meter.protected, as the meter confirmed it) defers the platform's trip; the same
    account state without it trips. Outside any no-cut window (a Tuesday 10:00)."""
    at = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    guarded, _ = await _park(await create_organisation(), protected=True)
    plain, _ = await _park(await create_organisation())
    for m in (guarded, plain):
        await ledger.recharge(m.account_id, Channel.CASH, 500, key=f"r{m.id}", actor="staff:1")
        await ledger.charge(
            m.account_id, ChargeType.ELECTRICITY, 500, key=f"c{m.id}", actor="staff:1"
        )
    await evaluate_accounts([guarded.account_id, plain.account_id], now=at)
    assert await MeterCommand.filter(meter_id=guarded.id).count() == 0
    trip = await MeterCommand.get(meter_id=plain.id)
    assert trip.op == CommandOp.TRIP and trip.actor == "system:alarms"
    deferred = await OperationLog.get(action="meter.trip_deferred", target_id=str(guarded.id))
    assert "保电" in deferred.reason
