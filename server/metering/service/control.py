"""Remote control of meters by staff (房间详情 / 仪表页的控制面板): 分闸, 合闸, 保电开/关, 点抄,
and for meter-billed meters 设置表内告警金额 and 下发充值 — and the state of the commands they
queued, for the panel that watches them (queued → sent → acked / failed / expired).

Every action goes through the durable command service (`commands.queue_command`, which also
writes the operation log with the staff member as actor: nothing is logged twice here);
下发充值 goes through `credits.send_wallet_to_meter`, the same rule a payment's follow-up
uses, so staff never choose an amount the wallet does not hold.

Double clicks: each rendered button carries a random token; the command's idempotency key
is built from the staff member, the meter, the action and that token, so a form submitted
twice queues one command. Scope: a meter or room outside the staff member's site ids is
NotFound, checked before anything is queued.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import InvalidOperation
from enum import StrEnum

from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.money import parse_yuan
from server.core.paging import Page, Paging, paginate
from server.metering.alarms import TripCause
from server.metering.models import (
    TERMINAL,
    CommandOp,
    CommandStatus,
    Meter,
    MeterBilling,
    MeterCommand,
    MeterStatus,
)
from server.metering.service.commands import queue_command
from server.metering.service.credits import read_now, send_wallet_to_meter, sendable_fen
from server.metering.service.devices.meter_views import (
    BILLING_LABELS,
    COMMAND_STATUS_LABELS,
    OP_LABELS,
    RELAY_LABELS,
    room_label,
)
from server.metering.vocabulary import KIND_LABELS, MeterKind, RelayState
from server.places.models import Room

LAST = 5  # commands shown in a meter's panel; the rest on its history page
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class ControlAction(StrEnum):
    """What the panel's buttons ask for (the form's `op`)."""

    TRIP = "trip"
    CLOSE = "close"
    PROTECT_ON = "protect_on"
    PROTECT_OFF = "protect_off"
    READ = "read"
    ALARM_AMOUNTS = "alarm_amounts"
    RECHARGE = "recharge"


METER_BILLED_ONLY = frozenset({ControlAction.ALARM_AMOUNTS, ControlAction.RECHARGE})
_REASONS = {
    ControlAction.TRIP: "后台人工分闸",
    ControlAction.CLOSE: "后台人工合闸",
    ControlAction.PROTECT_ON: "后台开启保电",
    ControlAction.PROTECT_OFF: "后台解除保电",
    ControlAction.READ: "后台点抄",
    ControlAction.ALARM_AMOUNTS: "后台设置表内告警金额",
    ControlAction.RECHARGE: "后台下发充值（钱包余额转入表端）",
}


def action_label(action: ControlAction | str, kind: MeterKind) -> str:
    """The button's words (a water meter's relay is a valve)."""
    water = kind is MeterKind.WATER
    return {
        ControlAction.TRIP: "关阀" if water else "分闸",
        ControlAction.CLOSE: "开阀" if water else "合闸",
        ControlAction.PROTECT_ON: "保电开",
        ControlAction.PROTECT_OFF: "保电关",
        ControlAction.READ: "点抄",
        ControlAction.ALARM_AMOUNTS: "设置表内告警金额",
        ControlAction.RECHARGE: "下发充值",
    }[ControlAction(action)]


@dataclass(frozen=True, slots=True)
class CommandLine:
    """One command as the panel and the history show it."""

    id: int
    kind: MeterKind
    op: CommandOp
    status: CommandStatus
    actor: str
    reason: str
    params: dict
    result: dict
    attempts: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None

    @property
    def op_label(self) -> str:
        words = _OP_WORDS.get(self.op)
        if words is not None:
            return words[self.kind is MeterKind.WATER]
        return OP_LABELS.get(self.op, self.op.value)

    @property
    def status_label(self) -> str:
        return COMMAND_STATUS_LABELS[self.status]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def badge(self) -> str:
        """Bootstrap colour of the state."""
        return {
            CommandStatus.QUEUED: "secondary", CommandStatus.SENT: "info",
            CommandStatus.ACKED: "success", CommandStatus.FAILED: "danger",
            CommandStatus.EXPIRED: "warning",
        }[self.status]  # fmt: skip

    @property
    def detail(self) -> str:
        """What was asked and, at the end, why it failed (Chinese)."""
        bits = []
        if "amount_fen" in self.params:
            bits.append(f"金额 ¥{int(self.params['amount_fen']) / 100:,.2f}")
        if "alarm_1_fen" in self.params:
            a1, a2 = int(self.params["alarm_1_fen"]), int(self.params["alarm_2_fen"])
            bits.append(f"告警 1 ¥{a1 / 100:,.2f}，告警 2 ¥{a2 / 100:,.2f}")
        if self.status in (CommandStatus.FAILED, CommandStatus.EXPIRED) and self.last_error:
            bits.append(self.last_error)
        elif self.last_error and not self.terminal:
            bits.append(f"重试中（第 {self.attempts} 次）：{self.last_error}")
        return "；".join(bits)


_OP_WORDS = {  # (electricity, water): the words of the buttons
    CommandOp.TRIP: ("分闸", "关阀"),
    CommandOp.CLOSE: ("合闸", "开阀"),
    CommandOp.CLOSE_ALLOWED: ("允许合闸", "允许开阀"),
    CommandOp.PROTECT_ON: ("保电开", "保电开"),
    CommandOp.PROTECT_OFF: ("保电关", "保电关"),
}


def _line(c: MeterCommand, kind: MeterKind) -> CommandLine:
    return CommandLine(
        c.id, kind, CommandOp(c.op), CommandStatus(c.status), c.actor, c.reason,
        dict(c.params or {}), dict(c.result or {}), c.attempts, c.last_error, c.created_at,
        c.sent_at, c.finished_at,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MeterPanel:
    """One meter's control card: its confirmed state, its last commands, what may be sent."""

    id: int
    address: str
    kind: MeterKind
    billing: MeterBilling
    status: MeterStatus
    room: str
    online: bool
    relay_state: RelayState
    protected: bool
    trip_cause: str | None
    relay_confirmed_at: datetime | None
    money_fen: int | None  # meter-billed: the register as the meter last confirmed it
    sendable_fen: int  # meter-billed: what 下发充值 would send now
    commands: list[CommandLine]
    token: str  # for this rendering's buttons (idempotency)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def billing_label(self) -> str:
        return BILLING_LABELS[self.billing]

    @property
    def relay_label(self) -> str:
        if self.kind is MeterKind.WATER:
            valve = {RelayState.CLOSED: "开阀", RelayState.OPEN: "关阀"}
            return valve.get(self.relay_state, "未知")
        return {RelayState.OPEN: "断开"}.get(self.relay_state, RELAY_LABELS[self.relay_state])

    @property
    def meter_billed(self) -> bool:
        return self.billing is MeterBilling.METER

    @property
    def active(self) -> bool:
        return self.status is MeterStatus.ACTIVE

    @property
    def in_flight(self) -> bool:
        """A command of this meter is not finished: the panel keeps polling."""
        return any(not c.terminal for c in self.commands)

    def actions(self) -> list[tuple[ControlAction, str]]:
        """The buttons of this meter, with their words."""
        return [
            (a, action_label(a, self.kind))
            for a in ControlAction
            if self.meter_billed or a not in METER_BILLED_ONLY
        ]


def new_token() -> str:
    return secrets.token_urlsafe(18)


async def _panel(meter: Meter, last: int) -> MeterPanel:
    rows = await MeterCommand.filter(meter_id=meter.id).order_by("-id").limit(last)
    # Only a finished look at the newest `last`: an older open command (rare: the controller
    # runs a meter's commands in order) still shows on the history page.
    room = room_label(meter.room) if meter.room_id else ""  # type: ignore[attr-defined]
    billed = meter.billing == MeterBilling.METER
    return MeterPanel(
        meter.id, meter.address, MeterKind(meter.kind), MeterBilling(meter.billing),
        MeterStatus(meter.status), room, meter.online, RelayState(meter.relay_state),
        meter.protected, meter.trip_cause, meter.relay_confirmed_at, meter.money_fen,
        await sendable_fen(meter.id) if billed and meter.status == MeterStatus.ACTIVE else 0,
        [_line(c, MeterKind(meter.kind)) for c in rows], new_token(),
    )  # fmt: skip


def _scoped(site_ids: Sequence[int]):  # type: ignore[no-untyped-def]
    return Meter.filter(site_id__in=list(site_ids)).select_related("room__floor__building")


async def _meter(site_ids: Sequence[int], meter_id: int) -> Meter:
    meter = await _scoped(site_ids).filter(id=meter_id).first()
    if meter is None:
        raise NotFound("仪表不存在")
    return meter


async def meter_panel(site_ids: Sequence[int], meter_id: int, *, last: int = LAST) -> MeterPanel:
    """One meter's control card (NotFound outside the scope)."""
    return await _panel(await _meter(site_ids, meter_id), last)


async def room_panels(
    site_ids: Sequence[int], room_id: int, *, last: int = LAST
) -> list[MeterPanel]:
    """The control cards of a room's meters in service (NotFound outside the scope)."""
    in_scope = await Room.filter(id=room_id, floor__building__site_id__in=list(site_ids)).exists()
    if not in_scope:
        raise NotFound("房间不存在")
    meters = (
        await _scoped(site_ids)
        .filter(room_id=room_id, status=MeterStatus.ACTIVE)
        .order_by("kind", "address", "id")
    )
    return [await _panel(m, last) for m in meters]


async def command_history(
    site_ids: Sequence[int], meter_id: int, paging: Paging
) -> tuple[MeterPanel, Page[CommandLine]]:
    """A meter's card and every command it was sent, newest first, paged."""
    meter = await _meter(site_ids, meter_id)
    page = await paginate(MeterCommand.filter(meter_id=meter.id).order_by("-id"), paging)
    return await _panel(meter, 0), page.map(lambda c: _line(c, MeterKind(meter.kind)))


def _fen(text: str, label: str) -> int:
    try:
        fen = parse_yuan(text)
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{label}请填写金额（元，最多两位小数）") from None
    if fen < 0 or fen > 100_000_000:
        raise ValidationFailed(f"{label}应在 0 到 1,000,000 元之间")
    return fen


async def send(
    site_ids: Sequence[int],
    meter_id: int,
    action: str,
    *,
    actor: str,
    token: str,
    alarm_1: str = "",
    alarm_2: str = "",
    now: datetime | None = None,
) -> CommandLine:
    """Queue what a panel button asks for; a repeat of the same `token` returns the first
    command. NotFound outside the scope (nothing queued); 422 for an unknown action, a bad
    token or amount, an action the meter's billing does not have; 409 for 下发充值 with
    nothing to send."""
    meter = await _meter(site_ids, meter_id)
    try:
        what = ControlAction(action)
    except ValueError:
        raise ValidationFailed("未知的控制命令", op=action) from None
    if not TOKEN.match(token):
        raise ValidationFailed("页面已过期，请刷新页面后重试")
    if meter.status != MeterStatus.ACTIVE:
        raise Conflict("仪表已拆除或未启用，不能下发命令")
    if what in METER_BILLED_ONLY and meter.billing != MeterBilling.METER:
        raise ValidationFailed(f"只有表端计费的仪表可以{action_label(what, MeterKind(meter.kind))}")
    kind = MeterKind(meter.kind)
    key = f"staff-control:{actor}:{meter.id}:{what.value}:{token}"
    reason = _REASONS[what]
    if what is ControlAction.RECHARGE:
        cmd = await send_wallet_to_meter(meter.id, actor=actor, reason=reason, key=key, now=now)
        if cmd is None:
            raise Conflict("钱包中没有可下发到表端的余额（或已在下发中）")
        return _line(cmd, kind)
    if what is ControlAction.READ:
        return _line(await read_now(meter.id, actor=actor, key=key, reason=reason, now=now), kind)
    params: dict[str, object] = {}
    if what is ControlAction.TRIP:
        params = {"cause": TripCause.STAFF.value}
    elif what is ControlAction.ALARM_AMOUNTS:
        a1, a2 = _fen(alarm_1, "告警金额 1"), _fen(alarm_2, "告警金额 2")
        if a2 > a1:
            raise ValidationFailed("告警金额 2 不能高于告警金额 1（先报 1 级，再报 2 级）")
        params = {"alarm_1_fen": a1, "alarm_2_fen": a2}
    cmd = await queue_command(
        meter.id, CommandOp(what.value), params, actor=actor, reason=reason, key=key, now=now
    )
    return _line(cmd, kind)
