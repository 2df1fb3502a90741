"""Batch operations (批量操作): one action on many meters of a site, now or at a set time,
with per-meter results.

    create_batch(site_ids, site_id=…, action=…, params=…, selection=…, run_at=…, actor=…)
    release_due(now) -> int          the worker's step: queue the commands of due batches
    settle(now) -> int               the worker's step: close batches whose commands finished
    retry_failed(site_ids, batch_id, actor=…) -> int
    cancel(site_ids, batch_id, actor=…) -> int
    batch_view(site_ids, batch_id) / batch_items(…) / list_batches(…)

The batch row is the schedule. Nothing is queued when a batch is created: the controller's
pass (workers/controller.py) calls `release_due`, which queues one durable command per item
(`commands.queue_many`, one statement) when `run_at` has come, so a restart of any process
loses no scheduled batch, and two controllers never release one twice (the release is a
conditional update of the row's status, in the transaction that queues the commands).

From then on the commands are ordinary meter commands: the controller runs each meter's
commands one at a time in id order (at most one in flight per meter) and the buses in
parallel. An item's state is its command's (queued / sent / acked / failed / expired), read
through the item's link, never copied; an item is also pending (not released), cancelled (its
command never sent) or skipped (could not be queued: meter removed, nothing to recharge).

Retry queues a new command for the failed and expired items only; cancel fails the commands
not yet sent (one conditional statement against the controller's conditional `mark_sent`).
Every batch is in the operation log: created, released, retried, cancelled, and its outcome
with the meters that failed and why (its commands' own transitions are not logged one by
one: `commands.transition`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from server.audit.service import Entry, record_many
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.excel import read_xlsx
from server.core.money import parse_yuan
from server.core.paging import Page, Paging
from server.ledger.sql import fetch, in_list, is_pg
from server.metering.models import (
    BatchAction,
    BatchItemState,
    BatchStatus,
    CommandOp,
    CommandStatus,
    Meter,
    MeterBatch,
    MeterBatchItem,
    MeterBilling,
    MeterCommand,
    MeterStatus,
)
from server.metering.service import commands as cmds
from server.metering.service.credits import send_wallet_to_meter
from server.metering.vocabulary import MeterKind, RelayState
from server.places.models import Floor

MAX_METERS = 20_000
ACTOR = "system:batches"
BANDS = {1: "尖", 2: "峰", 3: "平", 4: "谷"}

ACTION_LABELS = {
    BatchAction.TRIP: "分闸/关阀", BatchAction.CLOSE: "合闸/开阀",
    BatchAction.PROTECT_ON: "保电开", BatchAction.PROTECT_OFF: "保电关",
    BatchAction.PRICES: "设置电价", BatchAction.ALARM_AMOUNTS: "设置表内告警金额",
    BatchAction.RECHARGE: "下发充值", BatchAction.READ: "点抄",
}  # fmt: skip
STATUS_LABELS = {
    BatchStatus.SCHEDULED: "待执行", BatchStatus.RUNNING: "执行中",
    BatchStatus.DONE: "已完成", BatchStatus.CANCELLED: "已取消",
}  # fmt: skip
# An item as the page shows it: its own state, or its command's once released.
ITEM_LABELS = {
    "pending": "待执行", "queued": "排队中", "sent": "已发送", "acked": "已确认",
    "failed": "失败", "expired": "已过期", "cancelled": "已取消", "skipped": "未执行",
}  # fmt: skip
ITEM_ORDER = tuple(ITEM_LABELS)
METER_BILLED_ONLY = frozenset({BatchAction.PRICES, BatchAction.ALARM_AMOUNTS, BatchAction.RECHARGE})
_OPS = {
    BatchAction.TRIP: CommandOp.TRIP, BatchAction.CLOSE: CommandOp.CLOSE,
    BatchAction.PROTECT_ON: CommandOp.PROTECT_ON, BatchAction.PROTECT_OFF: CommandOp.PROTECT_OFF,
    BatchAction.PRICES: CommandOp.PRICES, BatchAction.ALARM_AMOUNTS: CommandOp.ALARM_AMOUNTS,
    BatchAction.RECHARGE: CommandOp.RECHARGE, BatchAction.READ: CommandOp.READ,
}  # fmt: skip
STATES = {
    "online": "在线",
    "offline": "离线",
    "open": "已分闸",
    "closed": "已合闸",
    "protected": "保电中",
}


def _now() -> datetime:
    return datetime.now(UTC)


# -- choosing meters ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Selection:
    """How the meters of a batch are picked (all given criteria apply together)."""

    site_id: int
    building_id: int | None = None
    floor_id: int | None = None
    kind: MeterKind | None = None
    state: str | None = None  # a key of STATES
    search: str = ""  # meter address or room name contains
    addresses: tuple[str, ...] = ()  # an uploaded list (表地址)
    source: str = ""  # the uploaded file's name, or what picked the meters
    meter_ids: tuple[int, ...] = ()  # picked by another service (a price change's meters)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"site_id": self.site_id}
        for name in ("building_id", "floor_id", "state", "search", "source"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.kind is not None:
            out["kind"] = self.kind.value
        if self.addresses:
            out["addresses"] = len(self.addresses)
        if self.meter_ids:
            out["meters"] = len(self.meter_ids)
        return out


def parse_address_list(data: bytes) -> list[str]:
    """The meter addresses of an uploaded workbook: the column headed 表地址 (or 地址) of its
    first sheet, else its first column; blank cells and repeats are left out."""
    sheets = read_xlsx(data)
    rows = next(iter(sheets.values()), [])
    if not rows:
        raise ValidationFailed("表格是空的")
    header = [str(c or "").strip() for c in rows[0]]
    column = next((i for i, h in enumerate(header) if h in ("表地址", "地址", "仪表地址")), None)
    body = rows[1:] if column is not None else rows
    column = column or 0
    seen: dict[str, None] = {}
    for row in body:
        cell = row[column] if column < len(row) else None
        text = str(cell).strip() if cell is not None else ""
        if text.endswith(".0") and text[:-2].isdigit():
            text = text[:-2]  # a number cell
        if text:
            seen.setdefault(text[:32], None)
    if not seen:
        raise ValidationFailed("表格中没有表地址")
    if len(seen) > MAX_METERS:
        raise ValidationFailed(f"一个批量操作最多 {MAX_METERS} 块表")
    return list(seen)


@dataclass(frozen=True, slots=True)
class FloorChoice:
    site_id: int
    building_id: int
    building: str
    floor_id: int
    floor: str


async def floor_choices(site_ids: Sequence[int]) -> list[FloorChoice]:
    """The buildings and floors of the scope, for picking meters by place."""
    rows = await Floor.filter(building__site_id__in=list(site_ids)).order_by(
        "building__site_id", "building__name", "building_id", "sort_order", "id"
    ).values_list("building__site_id", "building_id", "building__name", "id", "name")  # fmt: skip
    return [FloorChoice(*r) for r in rows]


async def select_meters(selection: Selection, action: BatchAction | None = None) -> list[Meter]:
    """The active meters of the selection (meter-billed ones only for actions that write the
    meter's money or prices), in id order."""
    query = Meter.filter(site_id=selection.site_id, status=MeterStatus.ACTIVE)
    if selection.building_id:
        query = query.filter(room__floor__building_id=selection.building_id)
    if selection.floor_id:
        query = query.filter(room__floor_id=selection.floor_id)
    if selection.kind is not None:
        query = query.filter(kind=selection.kind)
    state = selection.state or ""
    if state == "online":
        query = query.filter(online=True)
    elif state == "offline":
        query = query.filter(online=False)
    elif state == "open":
        query = query.filter(relay_state=RelayState.OPEN)
    elif state == "closed":
        query = query.filter(relay_state=RelayState.CLOSED)
    elif state == "protected":
        query = query.filter(protected=True)
    elif state:
        raise ValidationFailed("未知的仪表状态筛选", state=state)
    if selection.search:
        query = query.filter(
            Q(address__icontains=selection.search) | Q(room__name__icontains=selection.search)
        )
    if action in METER_BILLED_ONLY:
        query = query.filter(billing=MeterBilling.METER)
    if selection.meter_ids:
        query = query.filter(id__in=list(selection.meter_ids))
    if selection.addresses:
        wanted = list(selection.addresses)
        found = await Meter.filter(
            site_id=selection.site_id, status=MeterStatus.ACTIVE, address__in=wanted
        ).values_list("address", flat=True)
        unknown = [a for a in wanted if a not in set(found)]
        if unknown:
            shown = "、".join(unknown[:10]) + ("…" if len(unknown) > 10 else "")
            raise ValidationFailed(
                f"表格中有 {len(unknown)} 个表地址不属于本站点的在用仪表：{shown}",
                unknown=unknown[:50],
            )
        query = query.filter(address__in=wanted)
    return await query.order_by("id").limit(MAX_METERS + 1)


# -- parameters -----------------------------------------------------------------------------
def _fen(raw: Any, label: str) -> int:
    try:
        fen = parse_yuan(str(raw or "").strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(f"{label}格式不正确（元，最多两位小数）") from exc
    if fen < 0:
        raise ValidationFailed(f"{label}不能为负")
    return fen


def check_params(action: BatchAction, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The command parameters of an action from the form's fields, validated."""
    if action is BatchAction.PRICES:
        prices: dict[str, str] = {}
        for band, name in BANDS.items():
            text = str(raw.get(f"price_{band}") or "").strip()
            if not text:
                continue
            try:
                price = Decimal(text)
            except InvalidOperation as exc:
                raise ValidationFailed(f"{name}电价格式不正确") from exc
            if not price.is_finite() or price <= 0 or price > 100 or price.as_tuple().exponent < -4:  # type: ignore[operator]
                raise ValidationFailed(f"{name}电价须大于 0、不超过 100 元，最多四位小数")
            prices[str(band)] = str(price)
        if not prices:
            raise ValidationFailed("请至少填写一个费率的电价")
        return {"prices": prices}
    if action is BatchAction.ALARM_AMOUNTS:
        first = _fen(raw.get("alarm_1"), "告警金额一")
        second = _fen(raw.get("alarm_2"), "告警金额二")
        if first < second:
            raise ValidationFailed("告警金额一须不小于告警金额二")
        return {"alarm_1_fen": first, "alarm_2_fen": second}
    return {}


# -- creating, releasing, settling ----------------------------------------------------------
def _entry(batch: MeterBatch, action: str, actor: str, at: datetime, **detail: Any) -> Entry:
    return Entry(
        actor=actor, action=f"batch.{action}", target_type="meter_batch", target_id=batch.id,
        site_id=batch.site_id, reason=batch.title, detail={"action": batch.action.value, **detail},
        at=at,
    )  # fmt: skip


async def create_batch(
    site_ids: Sequence[int],
    *,
    action: BatchAction | str,
    selection: Selection,
    params: Mapping[str, Any] | None = None,
    run_at: datetime | None = None,
    title: str = "",
    actor: str,
    now: datetime | None = None,
) -> MeterBatch:
    """A batch of `action` on the selected meters, due at `run_at` (now when absent or past);
    its commands are queued by the worker when it is due."""
    now = now or _now()
    if selection.site_id not in set(site_ids):
        raise NotFound("站点不存在", site_id=selection.site_id)
    try:
        action = BatchAction(action)
    except ValueError as exc:
        raise ValidationFailed("未知的批量操作") from exc
    command_params = check_params(action, params or {})
    if run_at is not None and run_at.tzinfo is None:
        raise ValidationFailed("执行时间须带时区")
    if run_at is not None and run_at > now + timedelta(days=366):
        raise ValidationFailed("执行时间不能晚于一年之后")
    meters = await select_meters(selection, action)
    if not meters:
        only = "（该操作只适用于表端计费的仪表）" if action in METER_BILLED_ONLY else ""
        raise ValidationFailed(f"没有符合条件的在用仪表{only}")
    if len(meters) > MAX_METERS:
        raise ValidationFailed(f"一个批量操作最多 {MAX_METERS} 块表，请缩小范围")
    title = (title or "").strip()[:100] or f"{ACTION_LABELS[action]}（{len(meters)} 块表）"
    due = max(run_at or now, now).astimezone(UTC)  # SQLite compares the stored text
    async with in_transaction() as conn:
        batch = await MeterBatch.create(
            site_id=selection.site_id, action=action, params=command_params, title=title,
            selection=selection.describe(), run_at=due, created_by=actor, using_db=conn,
        )  # fmt: skip
        await MeterBatchItem.bulk_create(
            [MeterBatchItem(batch_id=batch.id, meter_id=m.id) for m in meters],
            batch_size=1000, using_db=conn,
        )  # fmt: skip
        await record_many(
            [_entry(batch, "create", actor, now, meters=len(meters), run_at=due.isoformat(),
                    params=command_params, selection=batch.selection)],
            conn=conn,
        )  # fmt: skip
    return batch


async def release_due(now: datetime | None = None, *, limit: int = 20) -> int:
    """Queue the commands of every scheduled batch whose time has come; how many released."""
    now = (now or _now()).astimezone(UTC)
    due = await MeterBatch.filter(status=BatchStatus.SCHEDULED, run_at__lte=now).order_by(
        "run_at", "id"
    ).limit(limit).values_list("id", flat=True)  # fmt: skip
    released = 0
    for batch_id in due:
        released += await _release(int(batch_id), now)
    return released


async def _release(batch_id: int, now: datetime) -> int:
    async with in_transaction() as conn:
        claimed = await MeterBatch.filter(id=batch_id, status=BatchStatus.SCHEDULED).using_db(
            conn
        ).update(status=BatchStatus.RUNNING, released_at=now)  # fmt: skip
        if not claimed:
            return 0  # another worker released it, or it was cancelled
        batch = await MeterBatch.get(id=batch_id).using_db(conn)
        items = await MeterBatchItem.filter(
            batch_id=batch_id, state=BatchItemState.PENDING
        ).using_db(conn).select_related("meter")  # fmt: skip
        queued, skipped = await _queue(conn, batch, items, now, batch.created_by)
        await record_many(
            [_entry(batch, "release", ACTOR, now, queued=queued, skipped=skipped)], conn=conn
        )
    return 1


async def _queue(
    conn: BaseDBAsyncClient,
    batch: MeterBatch,
    items: Sequence[MeterBatchItem],
    now: datetime,
    actor: str,
) -> tuple[int, int]:
    """One command for each item (queued items get its id, the others are skipped with the
    reason); (queued, skipped)."""
    op = _OPS[batch.action]
    ready: list[MeterBatchItem] = []
    skipped: list[tuple[MeterBatchItem, str]] = []
    for item in items:
        meter = item.meter
        if meter.status != MeterStatus.ACTIVE:
            skipped.append((item, "电表已拆除或停用"))
        elif batch.action in METER_BILLED_ONLY and meter.billing != MeterBilling.METER:
            skipped.append((item, "非表端计费仪表"))
        else:
            ready.append(item)
    reason = f"批量操作 #{batch.id}：{batch.title}"
    tag = f"batch:{batch.id}"
    commands: dict[int, int] = {}
    if batch.action is BatchAction.RECHARGE:
        for item in ready:
            cmd = await send_wallet_to_meter(
                item.meter_id, actor=actor, reason=reason,
                key=f"{tag}:meter:{item.meter_id}:try:{item.tries + 1}", now=now,
            )  # fmt: skip
            if cmd is None:
                skipped.append((item, "钱包中没有可下发的金额"))
            else:
                commands[item.meter_id] = cmd.id
        if commands:
            await (
                MeterCommand.filter(id__in=list(commands.values()))
                .using_db(conn)
                .update(batch_id=tag)
            )
    else:
        specs = [cmds.Spec(item.meter_id, op, batch.params) for item in ready]
        log = _entry(batch, "queue", actor, now, meters=len(specs))
        commands = await cmds.queue_many(
            specs, actor=actor, reason=reason, batch_id=tag, log=log, conn=conn, now=now
        )
    await _link(conn, [(i.id, commands[i.meter_id]) for i in ready if i.meter_id in commands])
    for item, error in skipped:
        await (
            MeterBatchItem.filter(id=item.id)
            .using_db(conn)
            .update(state=BatchItemState.SKIPPED, error=error)
        )
    return len(commands), len(skipped)


async def _link(conn: BaseDBAsyncClient, pairs: Sequence[tuple[int, int]]) -> None:
    """Item → its (new) command, released, one more try."""
    if not pairs:
        return
    if is_pg(conn):
        items, commands = (list(c) for c in zip(*pairs, strict=True))
        await conn.execute_query(
            "UPDATE meter_batch_item AS i SET command_id = u.c, state = 'released',"
            " tries = i.tries + 1, error = '' FROM unnest($1::bigint[], $2::bigint[]) AS u(id, c)"
            " WHERE i.id = u.id",
            [items, commands],
        )
        return
    await conn.execute_many(
        "UPDATE meter_batch_item SET command_id = ?, state = 'released', tries = tries + 1,"
        " error = '' WHERE id = ?",
        [[c, i] for i, c in pairs],
    )


async def settle(now: datetime | None = None) -> int:
    """Close the running batches whose every item is finished, with their outcome in the
    operation log; how many were closed."""
    now = now or _now()
    running = await MeterBatch.filter(status=BatchStatus.RUNNING).values_list("id", flat=True)
    if not running:
        return 0
    busy = set(
        await MeterBatchItem.filter(
            batch_id__in=list(running), state=BatchItemState.RELEASED,
            command__status__in=cmds.OPEN,
        ).distinct().values_list("batch_id", flat=True)
    )  # fmt: skip
    closed = 0
    for batch_id in running:
        if batch_id in busy:
            continue
        outcome = await _counts(int(batch_id))
        failures = await _failures(int(batch_id))
        async with in_transaction() as conn:
            done = await MeterBatch.filter(id=batch_id, status=BatchStatus.RUNNING).using_db(
                conn
            ).update(status=BatchStatus.DONE, finished_at=now, outcome=outcome)  # fmt: skip
            if done:
                batch = await MeterBatch.get(id=batch_id).using_db(conn)
                entry = _entry(batch, "done", ACTOR, now, outcome=outcome, failures=failures)
                await record_many([entry], conn=conn)
                closed += 1
    return closed


async def _failures(batch_id: int, limit: int = 200) -> list[list[str]]:
    """[meter address, error] of the batch's failed and expired meters (the first `limit`)."""
    failed = MeterBatchItem.filter(
        batch_id=batch_id, state=BatchItemState.RELEASED,
        command__status__in=[CommandStatus.FAILED, CommandStatus.EXPIRED],
    ).order_by("meter_id").limit(limit)  # fmt: skip
    rows = await failed.values_list("meter__address", "command__last_error")
    return [[str(a), str(e)] for a, e in rows]


async def _counts(batch_id: int) -> dict[str, int]:
    rows = await MeterBatchItem.filter(batch_id=batch_id).values_list("state", "command__status")
    counts = Counter(_item_status(state, status) for state, status in rows)
    return {k: counts[k] for k in ITEM_ORDER if counts[k]}


def _item_status(state: str, command_status: str | None) -> str:
    if state == BatchItemState.RELEASED and command_status:
        return str(CommandStatus(command_status).value)
    return str(BatchItemState(state).value)


# -- retry and cancel -----------------------------------------------------------------------
async def _scoped(site_ids: Sequence[int], batch_id: int) -> MeterBatch:
    batch = await MeterBatch.filter(id=batch_id, site_id__in=list(site_ids)).first()
    if batch is None:
        raise NotFound("批量操作不存在", batch_id=batch_id)
    return batch


async def retry_failed(
    site_ids: Sequence[int], batch_id: int, *, actor: str, now: datetime | None = None
) -> int:
    """A new command for each failed or expired item (the others are left alone); how many."""
    now = now or _now()
    batch = await _scoped(site_ids, batch_id)
    if batch.status in (BatchStatus.SCHEDULED, BatchStatus.CANCELLED):
        raise Conflict("该批量操作尚未执行，没有可重试的仪表")
    async with in_transaction() as conn:
        items = await MeterBatchItem.filter(
            batch_id=batch.id, state=BatchItemState.RELEASED,
            command__status__in=[CommandStatus.FAILED, CommandStatus.EXPIRED],
        ).using_db(conn).select_related("meter")  # fmt: skip
        if not items:
            raise Conflict("没有失败或过期的仪表需要重试")
        queued, skipped = await _queue(conn, batch, items, now, actor)
        await (
            MeterBatch.filter(id=batch.id)
            .using_db(conn)
            .update(status=BatchStatus.RUNNING, finished_at=None)
        )
        await record_many(
            [_entry(batch, "retry", actor, now, queued=queued, skipped=skipped)], conn=conn
        )
    return queued


async def cancel(
    site_ids: Sequence[int], batch_id: int, *, actor: str, now: datetime | None = None
) -> int:
    """Cancel what has not been sent: every item of a batch not yet released, or the items
    whose command is still queued and was never sent; how many items were cancelled."""
    now = now or _now()
    batch = await _scoped(site_ids, batch_id)
    async with in_transaction() as conn:
        took = await MeterBatch.filter(id=batch.id, status=BatchStatus.SCHEDULED).using_db(
            conn
        ).update(status=BatchStatus.CANCELLED, finished_at=now)  # fmt: skip
        if took:
            count = await MeterBatchItem.filter(
                batch_id=batch.id, state=BatchItemState.PENDING
            ).using_db(conn).update(state=BatchItemState.CANCELLED)  # fmt: skip
        else:
            open_ids = await MeterBatchItem.filter(
                batch_id=batch.id, state=BatchItemState.RELEASED,
                command__status=CommandStatus.QUEUED,
            ).using_db(conn).values_list("command_id", flat=True)  # fmt: skip
            gone = await cmds.cancel_queued(
                [int(i) for i in open_ids], error=f"批量操作 #{batch.id} 已取消", now=now, conn=conn
            )
            count = 0
            if gone:
                count = await MeterBatchItem.filter(
                    batch_id=batch.id, command_id__in=gone
                ).using_db(conn).update(state=BatchItemState.CANCELLED)  # fmt: skip
        if not took and not count:
            raise Conflict("没有尚未发送的命令可以取消")
        await record_many([_entry(batch, "cancel", actor, now, cancelled=count)], conn=conn)
    return count


# -- what the pages show --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    site_id: int
    action: BatchAction
    title: str
    status: BatchStatus
    run_at: datetime
    created_by: str
    created_at: datetime
    released_at: datetime | None
    finished_at: datetime | None
    params: dict
    selection: dict
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def action_label(self) -> str:
        return ACTION_LABELS[self.action]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in ("pending", "queued", "sent"))

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0) + self.counts.get("expired", 0)

    @property
    def unsent(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("queued", 0)

    @property
    def live(self) -> bool:
        return self.status in (BatchStatus.SCHEDULED, BatchStatus.RUNNING)

    @property
    def params_text(self) -> str:
        if self.action is BatchAction.PRICES:
            prices = self.params.get("prices", {})
            return "，".join(f"{BANDS[int(b)]} {p} 元" for b, p in sorted(prices.items()))
        if self.action is BatchAction.ALARM_AMOUNTS:
            a1, a2 = self.params.get("alarm_1_fen", 0), self.params.get("alarm_2_fen", 0)
            return f"告警一 {a1 / 100:.2f} 元，告警二 {a2 / 100:.2f} 元"
        return ""


def _row(b: MeterBatch, counts: dict[str, int]) -> BatchRow:
    return BatchRow(
        id=b.id, site_id=b.site_id, action=BatchAction(b.action), title=b.title,
        status=BatchStatus(b.status), run_at=b.run_at, created_by=b.created_by,
        created_at=b.created_at, released_at=b.released_at, finished_at=b.finished_at,
        params=dict(b.params or {}), selection=dict(b.selection or {}), counts=counts,
    )  # fmt: skip


async def batch_view(site_ids: Sequence[int], batch_id: int) -> BatchRow:
    batch = await _scoped(site_ids, batch_id)
    return _row(batch, await _counts(batch.id))


async def list_batches(
    site_ids: Sequence[int], paging: Paging, *, site_id: int | None = None,
    status: str | None = None,
) -> Page[BatchRow]:  # fmt: skip
    query = MeterBatch.filter(site_id__in=list(site_ids))
    if site_id:
        query = query.filter(site_id=site_id)
    if status:
        try:
            query = query.filter(status=BatchStatus(status))
        except ValueError as exc:
            raise ValidationFailed("未知的状态") from exc
    total = await query.count()
    batches = await query.order_by("-id").offset(paging.offset).limit(paging.per_page)
    counts = await _counts_many([b.id for b in batches])
    return Page([_row(b, counts.get(b.id, {})) for b in batches], total, paging)


async def _counts_many(batch_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    if not batch_ids:
        return {}
    conn = connections.get("default")
    where, params = in_list(conn, "i.batch_id", list(batch_ids), 1, "int")
    rows = await fetch(
        conn,
        "SELECT i.batch_id AS b, i.state AS s, c.status AS c, COUNT(*) AS n FROM meter_batch_item i"
        f" LEFT JOIN meter_command c ON c.id = i.command_id WHERE {where}"
        " GROUP BY i.batch_id, i.state, c.status",
        params,
    )
    out: dict[int, Counter[str]] = {}
    for r in rows:
        out.setdefault(int(r["b"]), Counter())[_item_status(r["s"], r["c"])] += int(r["n"])
    return {b: {k: c[k] for k in ITEM_ORDER if c[k]} for b, c in out.items()}


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One meter of a batch and what became of it."""

    id: int
    meter_id: int
    address: str
    kind: MeterKind
    room: str
    status: str
    tries: int
    error: str
    result: dict
    sent_at: datetime | None
    finished_at: datetime | None

    @property
    def status_label(self) -> str:
        return ITEM_LABELS[self.status]

    @property
    def terminal(self) -> bool:
        return self.status not in ("pending", "queued", "sent")

    @property
    def result_text(self) -> str:
        r = self.result
        if not r:
            return ""
        parts = []
        if "relay" in r:
            parts.append(
                {"open": "继电器断开", "closed": "继电器闭合"}.get(r["relay"], str(r["relay"]))
            )
        if r.get("protected"):
            parts.append("保电")
        if "remaining_fen" in r:
            parts.append(f"表内余额 {int(r['remaining_fen']) / 100:.2f} 元")
        if "total" in r:
            parts.append(f"读数 {r['total']}")
        return "，".join(parts)


async def batch_items(
    site_ids: Sequence[int], batch_id: int, paging: Paging, *, status: str | None = None
) -> Page[ItemRow]:
    """The batch's meters in meter order with their state, `status` one key of ITEM_LABELS."""
    batch = await _scoped(site_ids, batch_id)
    query = MeterBatchItem.filter(batch_id=batch.id)
    if status:
        if status not in ITEM_LABELS:
            raise ValidationFailed("未知的状态")
        if status in {s.value for s in CommandStatus}:
            query = query.filter(state=BatchItemState.RELEASED, command__status=status)
        else:
            query = query.filter(state=status)
    total = await query.count()
    items = await query.order_by("meter_id").offset(paging.offset).limit(
        paging.per_page
    ).select_related("meter__room", "command")  # fmt: skip
    rows = []
    for i in items:
        cmd = i.command
        state = _item_status(i.state, cmd.status if cmd is not None else None)
        error = i.error
        if cmd is not None and state in ("failed", "expired", "cancelled", "queued"):
            error = cmd.last_error
        rows.append(ItemRow(
            id=i.id, meter_id=i.meter_id, address=i.meter.address, kind=MeterKind(i.meter.kind),
            room=i.meter.room.name if i.meter.room is not None else "", status=state,
            tries=i.tries, error=error, result=dict(cmd.result or {}) if cmd else {},
            sent_at=cmd.sent_at if cmd else None, finished_at=cmd.finished_at if cmd else None,
        ))  # fmt: skip
    return Page(rows, total, paging)
