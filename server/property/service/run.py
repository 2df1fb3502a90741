"""The monthly run (月度计费): a site's month, previewed or posted, in steps.

    run_month(site_id, "2026-11", preview=True, actor=…) -> RunView

`STEPS` is the run's list of steps, in order: this module's fee step, common-area sharing
and line losses (shares.py, through server.sharing's services), the capacity levy, the
postpaid bills; other modules may add theirs with `add_step(name, step)`. Each step gets the
`RunContext` and returns a small summary (JSON-able) that the run stores in
`fee_run.steps[name]` for the staff's page; the sharing steps also write per-account lines
(`RunShareLine`), which `get_run` lists after the fee lines.

The fee step charges each active fee item's periods that start in the month (fees.py) to
each account open in the site, prorated by the days the tenant held the room:

- prepaid, item "deduct": from the wallet, down to one fen above the site's trip threshold
  (a fee never trips the relay), the rest onto a fees bill (催缴账单) issued at once — the
  tenant's receivable in the ledger. A site that lets fees cut supply deducts all of it.
- prepaid, item "bill": onto the fees bill.
- postpaid: onto the month's period bill (draft, for staff to review, confirm and issue),
  with the month's usage charges.

Idempotent per account, item and period: each line claims `fee:<account>:<item>:<period
start>` (UNIQUE) in the same database transaction as its postings; a claimed key is
"already" on every later run. Accounts are done in chunks, one transaction and one ledger
batch each (`post_batch`): the month of 100,000 accounts is a few hundred statements a chunk
of 1,000 (bench/monthly.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import ValidationFailed
from server.ledger import posting
from server.ledger.batch import post_batch
from server.ledger.posting import Posting, TxKind
from server.ledger.sql import Col, fetch, in_list, insert_rows, is_pg
from server.metering.models import MeteringPolicy
from server.metering.service.balance import available_balances
from server.metering.service.config import site_config
from server.metering.service.reading_store import as_datetime
from server.property import fees
from server.property.fees import FeeCollection
from server.property.models import (
    BillStatus,
    FeeItem,
    FeeRun,
    FeeRunLine,
    LineOutcome,
    PropertySettings,
    RunShareLine,
    RunStatus,
)
from server.property.service.bills import BillDraft, create_bills, postpaid_step
from server.property.service.context import RunContext
from server.property.service.items import ItemView, view
from server.property.service.shares import losses_step, sharing_step
from server.tariffs.levy import levy_capacity

CHUNK = 2000
FAR = date(9999, 1, 1)


Step = Callable[[RunContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    site_id: int
    month: str
    status: RunStatus
    accounts: int
    charged_fen: int
    billed_fen: int
    already: int
    steps: dict[str, Any]
    created_by: str
    created_at: datetime


@dataclass
class _Account:
    id: int
    billing_mode: str
    held: fees.Span
    area: Decimal
    free_fen: int = 0


@dataclass
class _Tally:
    accounts: set[int] = field(default_factory=set)
    charged: int = 0
    billed: int = 0
    already: int = 0
    lines: int = 0


def parse_month_or_refuse(text: str) -> tuple[int, int]:
    try:
        return fees.parse_month(text)
    except ValueError:
        raise ValidationFailed("月份格式应为 YYYY-MM，例如 2026-11") from None


async def run_month(
    site_id: int,
    month: str,
    *,
    preview: bool,
    actor: str,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> RunView:
    """Run every step for the site's month (the caller checked the site is in scope)."""
    year, mon = parse_month_or_refuse(month)
    now = now or datetime.now(UTC)
    status = RunStatus.PREVIEW if preview else RunStatus.POSTED
    run = await FeeRun.create(
        site_id=site_id, month=f"{year:04d}-{mon:02d}", status=status, created_by=actor
    )
    ctx = RunContext(site_id, year, mon, preview, actor, run.id, tz, now)
    summaries: dict[str, Any] = {}
    for name, step in STEPS:
        summaries[name] = await step(ctx)
    fee = summaries.get("fees", {})
    shared = sum(
        summaries.get(name, {}).get(part, 0)
        for name in ("sharing", "losses")
        for part in ("charged_fen", "preview_fen")
    )
    await FeeRun.filter(id=run.id).update(
        steps=summaries,
        accounts=fee.get("accounts", 0),
        charged_fen=fee.get("charged_fen", 0) + shared,
        billed_fen=fee.get("billed_fen", 0),
        already=fee.get("already", 0),
    )
    await record(
        actor,
        "property.run.preview" if preview else "property.run.post",
        target_type="fee_run",
        target_id=run.id,
        site_id=site_id,
        reason=f"{ctx.label} {'试算' if preview else '正式计费'}",
        detail={"month": ctx.label, **{k: str(v) for k, v in fee.items()}},
    )
    return _run_view(await FeeRun.get(id=run.id))


def _run_view(r: FeeRun) -> RunView:
    return RunView(
        r.id,
        r.site_id,
        r.month,
        RunStatus(r.status),
        r.accounts,
        r.charged_fen,  # type: ignore[attr-defined]
        r.billed_fen,
        r.already,
        dict(r.steps or {}),
        r.created_by,
        r.created_at,
    )


def fee_key(account_id: int, item_id: int, period_start: date) -> str:
    return f"fee:{account_id}:{item_id}:{period_start.isoformat()}"


async def fee_step(ctx: RunContext) -> dict[str, Any]:
    """The fee step (see the module docstring)."""
    items = [view(i) for i in await FeeItem.filter(site_id=ctx.site_id, active=True).order_by("id")]
    plans = [
        (item, rule, p)
        for item, rule in ((item, item.rule) for item in items)
        for p in fees.periods_starting_in(rule, ctx.year, ctx.month)
    ]
    tally = _Tally()
    settings = await PropertySettings.get_or_none(site_id=ctx.site_id)
    may_cut = bool(settings and settings.fees_may_cut)
    due_days = settings.due_days if settings else 15
    floor = None if may_cut else await _fee_floor(ctx.site_id)
    conn = connections.get("default")
    ids = [
        r["id"]
        for r in await fetch(
            conn,
            "SELECT id FROM account WHERE site_id = $1 AND status = 'open' ORDER BY id",
            [ctx.site_id],
        )
    ]
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        if ctx.preview:
            await _chunk(connections.get("default"), ctx, chunk, plans, floor, due_days, tally)
        else:
            async with in_transaction() as tx:
                await _chunk(tx, ctx, chunk, plans, floor, due_days, tally)
    return {
        "accounts": len(tally.accounts),
        "lines": tally.lines,
        "charged_fen": tally.charged,
        "billed_fen": tally.billed,
        "already": tally.already,
    }


async def _fee_floor(site_id: int) -> int:
    """The lowest balance a fee may leave: one fen above the site's trip threshold."""
    policy = await MeteringPolicy.get_or_none(site_id=site_id)
    config = site_config(policy.alarm if policy else None)
    return max(0, config.trip_level.threshold_fen) + 1


async def _accounts(conn: BaseDBAsyncClient, ctx: RunContext, ids: Sequence[int]) -> list[_Account]:
    where, params = in_list(conn, "a.id", list(ids), 1, "int")
    lock = " FOR UPDATE OF a" if is_pg(conn) and not ctx.preview else ""
    rows = await fetch(
        conn,
        "SELECT a.id, a.billing_mode, a.opened_at, r.area_m2 FROM account a"
        f" LEFT JOIN room r ON r.id = a.room_id WHERE {where} AND a.status = 'open'"
        f" ORDER BY a.id{lock}",
        params,
    )
    free = await available_balances([r["id"] for r in rows], conn=conn)
    out = []
    for r in rows:
        opened = as_datetime(r["opened_at"]).astimezone(ctx.tz).date()
        area = Decimal(str(r["area_m2"] if r["area_m2"] is not None else 0))
        account = _Account(r["id"], r["billing_mode"], fees.Span(opened, FAR), area)
        account.free_fen = free[r["id"]].free_wallet_fen if r["id"] in free else 0
        out.append(account)
    return out


@dataclass
class _Line:
    account: _Account
    item: ItemView
    charge: fees.Charge
    key: str
    outcome: LineOutcome = LineOutcome.PREVIEW
    deducted: int = 0
    billed: int = 0


async def _chunk(
    conn: BaseDBAsyncClient,
    ctx: RunContext,
    ids: Sequence[int],
    plans: Sequence[tuple[ItemView, fees.Rule, fees.Span]],
    floor: int | None,
    due_days: int,
    tally: _Tally,
) -> None:
    accounts = await _accounts(conn, ctx, ids)
    lines: list[_Line] = []
    for account in accounts:
        for item, rule, period in plans:
            found = fees.charge(rule, account.area, period, account.held)
            if found is not None and found.amount_fen > 0:
                key = fee_key(account.id, item.id, period.start)
                lines.append(_Line(account, item, found, key))
    taken = await _taken(conn, [line.key for line in lines])
    balance = {a.id: a.free_fen for a in accounts}
    for line in lines:
        tally.lines += 1
        if line.key in taken:
            line.outcome = LineOutcome.ALREADY
            tally.already += 1
            continue
        line.outcome = LineOutcome.PREVIEW if ctx.preview else LineOutcome.CHARGED
        tally.accounts.add(line.account.id)
        amount = line.charge.amount_fen
        if line.account.billing_mode == "postpaid" or line.item.collection is FeeCollection.BILL:
            line.deducted, line.billed = 0, amount
        else:
            line.deducted, line.billed = fees.split_deduction(
                amount, balance[line.account.id], floor
            )
            balance[line.account.id] -= line.deducted
        tally.charged += line.deducted
        tally.billed += line.billed
    charged = [ln for ln in lines if ln.outcome is LineOutcome.CHARGED]
    bills = await _post(conn, ctx, charged, floor is None, due_days) if charged else {}
    await _write_lines(conn, ctx, lines, bills)


async def _taken(conn: BaseDBAsyncClient, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    where, params = in_list(conn, "posted_key", list(keys), 1, "text")
    rows = await fetch(conn, f"SELECT posted_key FROM property_fee_run_line WHERE {where}", params)
    return {r["posted_key"] for r in rows}


_LINE_COLS = [
    Col("run_id", "int"),
    Col("account_id", "int"),
    Col("item_id", "int"),
    Col("period_start", "date"),
    Col("period_end", "date"),
    Col("days", "int"),
    Col("period_days", "int"),
    Col("full_fen", "bigint"),
    Col("amount_fen", "bigint"),
    Col("deducted_fen", "bigint"),
    Col("billed_fen", "bigint"),
    Col("outcome", "text"),
    Col("posted_key", "text"),
    Col("bill_id", "int"),
]


async def _write_lines(
    conn: BaseDBAsyncClient, ctx: RunContext, lines: Sequence[_Line], bills: dict[int, int]
) -> None:
    rows = [
        (
            ctx.run_id,
            ln.account.id,
            ln.item.id,
            ln.charge.period.start,
            ln.charge.period.end,
            ln.charge.days,
            ln.charge.period_days,
            ln.charge.full_fen,
            ln.charge.amount_fen,
            ln.deducted,
            ln.billed,
            ln.outcome.value,
            ln.key if ln.outcome is LineOutcome.CHARGED else None,
            bills.get(ln.account.id)
            if ln.billed and ln.account.billing_mode != "postpaid"
            else None,
        )
        for ln in lines
    ]
    await insert_rows(conn, "property_fee_run_line", _LINE_COLS, rows)


def _period_label(line: _Line) -> str:
    c = line.charge
    if c.period.start == c.period.end:
        return f"{line.item.name}（{c.period.start.isoformat()}）"
    last = c.period.end - timedelta(days=1)
    days = "" if c.days == c.period_days else f"，{c.days}/{c.period_days}天"
    return f"{line.item.name}（{c.period.start.isoformat()}至{last.isoformat()}{days}）"


async def _post(
    conn: BaseDBAsyncClient,
    ctx: RunContext,
    lines: Sequence[_Line],
    may_cut: bool,
    due_days: int,
) -> dict[int, int]:
    """The ledger batch of one chunk (deductions, fees bills issued) and the fees bills'
    rows; {account id: its fees bill id}. Postpaid lines wait for the period bill."""
    postings: list[Posting] = []
    drafts: dict[int, BillDraft] = {}
    due = ctx.now.astimezone(ctx.tz).date() + timedelta(days=due_days)
    for ln in lines:
        if ln.deducted:
            postings.append(
                Posting(
                    ln.key,
                    TxKind.CHARGE,
                    posting.fee_legs(ln.account.id, ln.item.revenue_code, ln.deducted),
                    _period_label(ln),
                    ctx.actor,
                    allow_arrears=may_cut,
                    require_open=True,
                )
            )
        if ln.billed and ln.account.billing_mode != "postpaid":
            draft = drafts.get(ln.account.id)
            if draft is None:
                draft = drafts[ln.account.id] = BillDraft.fees(ctx, ln.account.id)
                draft.status, draft.due = BillStatus.ISSUED, due
            draft.lines.append((_period_label(ln), ln.item.revenue_code, ln.billed))
    postings += [d.posting(ctx.actor) for d in drafts.values()]
    if postings:
        await post_batch(postings)
    ids = await create_bills(conn, list(drafts.values()), now=ctx.now)
    return {account_id: ids[d.key] for account_id, d in drafts.items()}


async def capacity_step(ctx: RunContext) -> dict[str, Any]:
    """The basic charge of two-part plans (server.tariffs.levy, once per account and month;
    the scheduler levies it too, and the second call charges nothing)."""
    if ctx.preview:
        return {"skipped": "试算不征收基本电费"}
    try:
        report = await levy_capacity(ctx.label, site_ids=[ctx.site_id], now=ctx.now,
                                     actor=ctx.actor)  # fmt: skip
    except ValidationFailed as refused:
        return {"skipped": refused.message}
    return {"charged": report.charged, "charged_fen": report.charged_fen,
            "already": report.already, "skipped": len(report.skipped)}  # fmt: skip


STEPS: list[tuple[str, Step]] = [
    ("fees", fee_step), ("sharing", sharing_step), ("losses", losses_step),
    ("capacity", capacity_step), ("postpaid", postpaid_step),
]  # fmt: skip


def add_step(name: str, step: Step, *, before: str | None = None) -> None:
    """Add a step to every run (by name, once): at the end, or before the step `before`."""
    if any(n == name for n, _ in STEPS):
        return
    at = next((i for i, (n, _) in enumerate(STEPS) if n == before), len(STEPS))
    STEPS.insert(at, (name, step))


async def list_runs(site_ids: Sequence[int], *, limit: int = 100) -> list[RunView]:
    rows = await FeeRun.filter(site_id__in=list(site_ids)).order_by("-id").limit(limit)
    return [_run_view(r) for r in rows]


@dataclass(frozen=True, slots=True)
class LineView:
    account_id: int
    account_number: str
    tenant_name: str
    item_name: str
    period_start: date
    period_end: date
    days: int
    period_days: int
    full_fen: int
    amount_fen: int
    deducted_fen: int
    billed_fen: int
    outcome: LineOutcome
    bill_id: int | None


OUTCOME_LABELS = {LineOutcome.CHARGED: "已入账", LineOutcome.ALREADY: "此前已入账（跳过）",
                  LineOutcome.PREVIEW: "试算"}  # fmt: skip
STATUS_LABELS = {RunStatus.PREVIEW: "试算", RunStatus.POSTED: "正式计费"}


async def get_run(site_ids: Sequence[int], run_id: int) -> tuple[RunView, list[LineView]]:
    """A run of the scope with its per-account lines (NotFound outside the scope)."""
    from server.core.errors import NotFound

    run = await FeeRun.get_or_none(id=run_id, site_id__in=list(site_ids))
    if run is None:
        raise NotFound("计费批次不存在")
    rows = await (
        FeeRunLine.filter(run_id=run.id)
        .select_related("account", "item")
        .order_by("account_id", "item_id", "period_start")
    )
    lines = [
        LineView(
            r.account_id, r.account.number, r.account.tenant_name, r.item.name,  # type: ignore[attr-defined]
            r.period_start, r.period_end, r.days, r.period_days, r.full_fen, r.amount_fen,
            r.deducted_fen, r.billed_fen, LineOutcome(r.outcome), r.bill_id,  # type: ignore[attr-defined]
        )
        for r in rows
    ]  # fmt: skip
    year, month = fees.parse_month(run.month)
    span = fees.month_span(year, month)
    days = (span.end - span.start).days
    shares = await RunShareLine.filter(run_id=run.id).select_related("account").order_by("id")
    lines += [
        LineView(
            r.account_id, r.account.number, r.account.tenant_name, r.label,  # type: ignore[attr-defined]
            span.start, span.end, days, days, r.amount_fen, r.amount_fen,
            0 if r.outcome == LineOutcome.ALREADY else r.amount_fen, 0,
            LineOutcome(r.outcome), None,
        )
        for r in shares
    ]  # fmt: skip
    return _run_view(run), lines
