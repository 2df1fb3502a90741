"""Bills (账单) and arrears (欠费): fees bills (催缴账单) issued by the monthly run, postpaid
period bills (后付费: drafted by the run, reviewed and confirmed by staff, then issued),
payments and the overdue list.

A bill is in the ledger from its issue: its lines' revenue against the tenant's receivable
(`ledger.issue_bill`, under the bill's own key); a postpaid bill also moves the month's usage,
already charged to the wallet, onto the receivable (`carried_fen`). Paying settles the
receivable: from the wallet (`ledger.settle_bill`), or at the counter and online as a
recharge of the amount then the same settlement, in one database transaction, so income
statistics count it as money in through its channel. An issued bill past its due date and
not paid is arrears; the tenant hears of the bill when issued and of arrears once a day
(server.notify's reminders).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.ledger import posting
from server.ledger import service as ledger
from server.ledger.posting import Channel, Posting, TxKind
from server.ledger.sql import Col, fetch, in_list, insert_rows, is_pg
from server.metering.service.balance import available_balances
from server.notify.service.reminders import ArrearsNotice, BillNotice, arrears_due, bills_issued
from server.property.models import Bill, BillKind, BillLine, BillStatus, PropertySettings
from server.property.service.context import RunContext

STATUS_LABELS = {
    BillStatus.DRAFT: "待审核",
    BillStatus.CONFIRMED: "已审核",
    BillStatus.ISSUED: "待缴费",
    BillStatus.PAID: "已结清",
}
KIND_LABELS = {BillKind.FEES: "催缴账单", BillKind.PERIOD: "后付费账单"}
USAGE_LABEL = "本期用电用水费用"


@dataclass
class BillDraft:
    """A bill about to be written (the run builds these; `create_bills` writes them)."""

    key: str
    number: str
    kind: BillKind
    site_id: int
    account_id: int
    period_start: date
    period_end: date
    status: BillStatus = BillStatus.DRAFT
    lines: list[tuple[str, str, int]] = field(default_factory=list)  # label, code, fen
    carried_fen: int = 0
    due: date | None = None

    @classmethod
    def fees(cls, ctx: RunContext, account_id: int) -> BillDraft:
        span = ctx.span
        return cls(
            f"bill:fees:{ctx.run_id}:{account_id}",
            f"CJ-{ctx.run_id}-{account_id}",
            BillKind.FEES,
            ctx.site_id,
            account_id,
            span.start,
            span.end,
        )

    @property
    def total_fen(self) -> int:
        return sum(amount for _, _, amount in self.lines)

    def posting(self, actor: str) -> Posting:
        """The bill's issue in the ledger (lines with a revenue code; the usage is carried)."""
        lines = [(code, amount) for _, code, amount in self.lines if code]
        legs = posting.bill_legs(self.account_id, lines, self.carried_fen)
        return Posting(
            self.key, TxKind.BILL, legs, f"账单 {self.number}", actor, account_id=self.account_id
        )


_BILL_COLS = [
    Col("key", "text"),
    Col("number", "text"),
    Col("kind", "text"),
    Col("site_id", "int"),
    Col("account_id", "int"),
    Col("period_start", "date"),
    Col("period_end", "date"),
    Col("status", "text"),
    Col("total_fen", "bigint"),
    Col("carried_fen", "bigint"),
    Col("paid_fen", "bigint"),
    Col("due_date", "date"),
    Col("confirmed_by", "text"),
    Col("issued_at", "timestamptz"),
    Col("created_at", "timestamptz"),
]
_LINE_COLS = [
    Col("bill_id", "int"),
    Col("label", "text"),
    Col("revenue_code", "text"),
    Col("amount_fen", "bigint"),
]


async def create_bills(
    conn: BaseDBAsyncClient, drafts: Sequence[BillDraft], *, now: datetime
) -> dict[str, int]:
    """Write the bills and their lines; {key: bill id}."""
    if not drafts:
        return {}
    rows = [
        (
            d.key,
            d.number,
            d.kind.value,
            d.site_id,
            d.account_id,
            d.period_start,
            d.period_end,
            d.status.value,
            d.total_fen,
            d.carried_fen,
            0,
            d.due,
            "",
            now if d.status is BillStatus.ISSUED else None,
            now,
        )
        for d in drafts
    ]
    ids = {
        r["key"]: r["id"]
        for r in await insert_rows(
            conn, "property_bill", _BILL_COLS, rows, suffix='RETURNING id, "key"'
        )
    }
    await insert_rows(
        conn,
        "property_bill_line",
        _LINE_COLS,
        [(ids[d.key], label, code, amount) for d in drafts for label, code, amount in d.lines],
    )
    notices = [
        BillNotice(d.account_id, _period_text(d.period_start), d.total_fen, d.due, ids[d.key])
        for d in drafts
        if d.status is BillStatus.ISSUED and d.due
    ]
    if notices:
        await bills_issued(conn, notices, now=now)
    return ids


def _period_text(start: date) -> str:
    return f"{start.year}年{start.month}月"


# -- postpaid: the period bill ---------------------------------------------------------------


async def postpaid_step(ctx: RunContext) -> dict[str, Any]:
    """Draft each postpaid account's period bill: the month's usage and its waiting fee lines
    (a bill already issued for the month gets a supplementary bill for lines claimed since)."""
    from tortoise import connections

    conn = connections.get("default")
    accounts = [
        r["id"]
        for r in await fetch(
            conn,
            "SELECT id FROM account WHERE site_id = $1 AND status = 'open'"
            " AND billing_mode = 'postpaid' ORDER BY id",
            [ctx.site_id],
        )
    ]
    if not accounts:
        return {"bills": 0, "total_fen": 0}
    if ctx.preview:
        usage = await _usage(conn, ctx, accounts)
        return {"bills": sum(1 for a in accounts if usage.get(a)), "total_fen": sum(usage.values())}
    async with in_transaction() as tx:
        return await _draft_period_bills(tx, ctx, accounts)


async def _usage(conn: BaseDBAsyncClient, ctx: RunContext, accounts: list[int]) -> dict[int, int]:
    """The month's usage charges per account: readings in (month start, month end], as a
    charge covers (previous reading, its reading] — a reading at midnight on the 1st is the
    month before's."""
    span = ctx.span
    where, params = in_list(conn, "account_id", accounts, 3, "int")
    rows = await fetch(
        conn,
        "SELECT account_id, SUM(amount_fen) AS fen FROM usage_charge WHERE reading_at > $1"
        f" AND reading_at <= $2 AND {where} GROUP BY account_id",
        [ctx.local_start(span.start), ctx.local_start(span.end), *params],
    )
    return {r["account_id"]: int(r["fen"]) for r in rows if int(r["fen"] or 0) > 0}


async def _draft_period_bills(
    conn: BaseDBAsyncClient, ctx: RunContext, accounts: list[int]
) -> dict[str, Any]:
    from server.property.fees import FeeKind
    from server.property.service.items import revenue_code

    where, params = in_list(conn, "l.account_id", accounts, 1, "int")
    pending = await fetch(
        conn,
        "SELECT l.id, l.account_id, l.billed_fen, l.period_start, l.days, l.period_days,"
        " i.id AS item_id, i.name, i.kind FROM property_fee_run_line l"
        " JOIN property_fee_item i ON i.id = l.item_id"
        f" WHERE {where} AND l.outcome = 'charged' AND l.billed_fen > 0 AND l.bill_id IS NULL"
        " ORDER BY l.id",
        params,
    )
    waiting: dict[int, list[dict[str, Any]]] = {}
    for r in pending:
        waiting.setdefault(r["account_id"], []).append(r)
    usage = await _usage(conn, ctx, accounts)
    span, label = ctx.span, ctx.label.replace("-", "")
    keys = [f"bill:period:{a}:{ctx.label}" for a in accounts]
    kin, kparams = in_list(conn, '"key"', keys, 1, "text")
    existing = {
        r["key"]: r
        for r in await fetch(
            conn, f'SELECT id, "key", status FROM property_bill WHERE {kin}', kparams
        )
    }
    drafts: list[BillDraft] = []
    line_bills: list[tuple[int, str]] = []  # run line id → bill key
    appended: list[tuple[int, dict[str, Any]]] = []  # existing draft bill id, line
    for a in accounts:
        key = f"bill:period:{a}:{ctx.label}"
        lines = waiting.get(a, [])
        found = existing.get(key)
        if found is not None and found["status"] == BillStatus.DRAFT.value:
            appended += [(found["id"], ln) for ln in lines]
            continue
        carried = usage.get(a, 0) if found is None else 0
        if not lines and not carried:
            continue
        if found is not None:
            key = f"{key}:{ctx.run_id}"
        number = f"HF-{label}-{a}" + ("" if found is None else f"-{ctx.run_id}")
        draft = BillDraft(
            key, number, BillKind.PERIOD, ctx.site_id, a, span.start, span.end, carried_fen=carried
        )
        if carried:
            draft.lines.append((USAGE_LABEL, "", carried))
        for ln in lines:
            draft.lines.append(
                (
                    _fee_label(ln),
                    revenue_code(FeeKind(ln["kind"]), ln["item_id"]),
                    int(ln["billed_fen"]),
                )
            )
            line_bills.append((ln["id"], key))
        drafts.append(draft)
    ids = await create_bills(conn, drafts, now=ctx.now)
    await _set_bills(conn, [(line_id, ids[key]) for line_id, key in line_bills])
    for bill_id, ln in appended:
        await BillLine.create(
            bill_id=bill_id,
            label=_fee_label(ln),
            amount_fen=ln["billed_fen"],
            revenue_code=revenue_code(FeeKind(ln["kind"]), ln["item_id"]),
            using_db=conn,
        )
        await conn.execute_query(
            *_sql(
                conn,
                "UPDATE property_bill SET total_fen = total_fen + $1 WHERE id = $2",
                [int(ln["billed_fen"]), bill_id],
            )
        )
        await conn.execute_query(
            *_sql(
                conn,
                "UPDATE property_fee_run_line SET bill_id = $1 WHERE id = $2",
                [bill_id, ln["id"]],
            )
        )
    return {
        "bills": len(drafts),
        "total_fen": sum(d.total_fen for d in drafts),
        "appended": len(appended),
    }


async def _set_bills(conn: BaseDBAsyncClient, pairs: Sequence[tuple[int, int]]) -> None:
    """Each run line's bill: one statement on PostgreSQL, one per line on SQLite."""
    if not pairs:
        return
    if is_pg(conn):
        await conn.execute_query(
            "UPDATE property_fee_run_line l SET bill_id = u.b FROM unnest($1::bigint[],"
            " $2::int[]) AS u(id, b) WHERE l.id = u.id",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
        return
    for line_id, bill_id in pairs:
        await conn.execute_query(
            *_sql(conn, "UPDATE property_fee_run_line SET bill_id = $1 WHERE id = $2",
                  [bill_id, line_id])
        )  # fmt: skip


def _sql(conn: BaseDBAsyncClient, sql: str, params: list[Any]) -> tuple[str, list[Any]]:
    from server.ledger.sql import q

    return q(conn, sql), params


def _fee_label(ln: dict[str, Any]) -> str:
    start = ln["period_start"]
    start = start if isinstance(start, date) else date.fromisoformat(str(start))
    days = "" if ln["days"] == ln["period_days"] else f"，{ln['days']}/{ln['period_days']}天"
    return f"{ln['name']}（{start.isoformat()}起{days}）"


# -- staff: review, confirm, issue; payments --------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillView:
    id: int
    number: str
    kind: BillKind
    site_id: int
    account_id: int
    account_number: str
    tenant_name: str
    period_start: date
    period_end: date
    status: BillStatus
    total_fen: int
    paid_fen: int
    due_date: date | None
    issued_at: datetime | None
    lines: tuple[tuple[str, int], ...] = ()

    @property
    def owed_fen(self) -> int:
        return self.total_fen - self.paid_fen

    def overdue(self, today: date) -> bool:
        return (
            self.status is BillStatus.ISSUED and self.due_date is not None and self.due_date < today
        )

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


def _view(b: Bill, lines: Sequence[BillLine] = ()) -> BillView:
    return BillView(
        b.id,
        b.number,
        BillKind(b.kind),
        b.site_id,
        b.account_id,
        b.account.number,  # type: ignore[attr-defined]
        b.account.tenant_name,
        b.period_start,
        b.period_end,
        BillStatus(b.status),
        b.total_fen,
        b.paid_fen,
        b.due_date,
        b.issued_at,
        tuple((ln.label, ln.amount_fen) for ln in lines),
    )


@dataclass(frozen=True, slots=True)
class BillFilter:
    site_ids: Sequence[int]
    status: str = ""  # a BillStatus value, "overdue", or "" (all)
    account_id: int | None = None
    search: str = ""  # account number or tenant name


async def list_bills(wanted: BillFilter, *, today: date, limit: int | None = 500) -> list[BillView]:
    query = Bill.filter(site_id__in=list(wanted.site_ids)).select_related("account")
    if wanted.status == "overdue":
        query = query.filter(status=BillStatus.ISSUED, due_date__lt=today)
    elif wanted.status in BillStatus._value2member_map_:
        query = query.filter(status=wanted.status)
    if wanted.account_id is not None:
        query = query.filter(account_id=wanted.account_id)
    if wanted.search:
        from tortoise.expressions import Q

        query = query.filter(
            Q(account__number__icontains=wanted.search)
            | Q(account__tenant_name__icontains=wanted.search)
        )
    query = query.order_by("-id")
    if limit is not None:
        query = query.limit(limit)
    return [_view(b) for b in await query]


async def get_bill(site_ids: Sequence[int], bill_id: int) -> BillView:
    bill = await Bill.get_or_none(id=bill_id, site_id__in=list(site_ids)).select_related("account")
    if bill is None:
        raise NotFound("账单不存在")
    return _view(bill, await BillLine.filter(bill_id=bill.id).order_by("id"))


async def _locked(conn: BaseDBAsyncClient, site_ids: Sequence[int], bill_id: int) -> Bill:
    bill = await (
        Bill.filter(id=bill_id, site_id__in=list(site_ids))
        .select_for_update()
        .using_db(conn)
        .first()
    )
    if bill is None:
        raise NotFound("账单不存在")
    return bill


async def confirm_bill(site_ids: Sequence[int], bill_id: int, *, actor: str) -> None:
    """审核: a draft period bill checked by staff."""
    async with in_transaction() as tx:
        bill = await _locked(tx, site_ids, bill_id)
        if bill.status is not BillStatus.DRAFT:
            raise Conflict("只有待审核的账单可以审核")
        await (
            Bill.filter(id=bill.id)
            .using_db(tx)
            .update(status=BillStatus.CONFIRMED, confirmed_by=actor)
        )
        await record(
            actor,
            "property.bill.confirm",
            target_type="bill",
            target_id=bill.id,
            site_id=bill.site_id,
            reason=bill.number,
        )  # type: ignore[attr-defined]


async def issue_bill(
    site_ids: Sequence[int], bill_id: int, *, actor: str, tz: Any, now: datetime | None = None
) -> None:
    """出账: a confirmed bill onto the tenant's receivable, due after the site's days."""
    now = now or datetime.now(UTC)
    async with in_transaction() as tx:
        bill = await _locked(tx, site_ids, bill_id)
        if bill.status is not BillStatus.CONFIRMED:
            raise Conflict("账单须先审核再出账")
        settings = await PropertySettings.get_or_none(site_id=bill.site_id).using_db(tx)  # type: ignore[attr-defined]
        due = now.astimezone(tz).date() + timedelta(days=settings.due_days if settings else 15)
        lines = await BillLine.filter(bill_id=bill.id).using_db(tx).order_by("id")
        draft = BillDraft(
            bill.key,
            bill.number,
            BillKind(bill.kind),
            bill.site_id,  # type: ignore[attr-defined]
            bill.account_id,
            bill.period_start,
            bill.period_end,  # type: ignore[attr-defined]
            lines=[(ln.label, ln.revenue_code, ln.amount_fen) for ln in lines],
            carried_fen=bill.carried_fen,
        )
        p = draft.posting(actor)
        await ledger.issue_bill(
            bill.account_id,
            [leg for leg in _lines_of(draft)],  # type: ignore[attr-defined]
            key=p.key,
            actor=actor,
            memo=p.memo,
            carried_fen=bill.carried_fen,
        )
        await (
            Bill.filter(id=bill.id)
            .using_db(tx)
            .update(
                status=BillStatus.ISSUED, issued_at=now, due_date=due, total_fen=draft.total_fen
            )
        )
        await bills_issued(
            tx,
            [
                BillNotice(
                    bill.account_id,
                    _period_text(bill.period_start),  # type: ignore[attr-defined]
                    draft.total_fen,
                    due,
                    bill.id,
                )
            ],
            now=now,
        )
        await record(
            actor,
            "property.bill.issue",
            target_type="bill",
            target_id=bill.id,
            site_id=bill.site_id,
            reason=bill.number,  # type: ignore[attr-defined]
            detail={"total_fen": draft.total_fen, "due": due.isoformat()},
        )


def _lines_of(draft: BillDraft) -> list[tuple[str, int]]:
    return [(code, amount) for _, code, amount in draft.lines if code]


async def pay_bill(
    site_ids: Sequence[int],
    bill_id: int,
    *,
    actor: str,
    channel: Channel | None = None,
    amount_fen: int | None = None,
    now: datetime | None = None,
) -> BillView:
    """Pay an issued bill: from the wallet (`channel` None: what the free wallet covers, at
    most what is owed or `amount_fen`) or with money in at the counter / online (`channel`,
    the amount given, at most what is owed). Idempotent on the bill's state: the
    settlement's key names how much had been paid before it."""
    now = now or datetime.now(UTC)
    async with in_transaction() as tx:
        bill = await _locked(tx, site_ids, bill_id)
        if bill.status is not BillStatus.ISSUED:
            raise Conflict("账单已结清或尚未出账")
        owed = bill.total_fen - bill.paid_fen
        account_id = bill.account_id  # type: ignore[attr-defined]
        key = f"{bill.key}:pay:{bill.paid_fen}"
        if channel is None:
            free = (await available_balances([account_id], conn=tx))[account_id].free_wallet_fen
            amount = min(owed, max(0, free), amount_fen or owed)
            if amount <= 0:
                raise Conflict("余额不足，请先充值再缴费")
            await ledger.settle_bill(
                account_id, amount, key=key, actor=actor, memo=f"账单 {bill.number} 余额缴费"
            )
        else:
            amount = owed if amount_fen is None else amount_fen
            if not 0 < amount <= owed:
                raise ValidationFailed("缴费金额须大于 0 且不超过欠费金额")
            await ledger.recharge(
                account_id,
                Channel(channel),
                amount,
                key=f"{key}:in",
                actor=actor,
                memo=f"账单 {bill.number} 缴费",
            )
            await ledger.settle_bill(
                account_id,
                amount,
                key=key,
                actor=actor,
                allow_arrears=True,
                memo=f"账单 {bill.number} 缴费",
            )
        paid = bill.paid_fen + amount
        done = paid == bill.total_fen
        await (
            Bill.filter(id=bill.id)
            .using_db(tx)
            .update(
                paid_fen=paid,
                status=BillStatus.PAID if done else BillStatus.ISSUED,
                paid_at=now if done else None,
            )
        )
        await record(
            actor,
            "property.bill.pay",
            target_type="bill",
            target_id=bill.id,
            site_id=bill.site_id,
            reason=bill.number,  # type: ignore[attr-defined]
            detail={"amount_fen": amount, "channel": channel.value if channel else "wallet"},
        )
    return await get_bill(site_ids, bill_id)


async def remind_overdue(*, today: date, now: datetime | None = None) -> int:
    """Once a day: an arrears reminder per account with an overdue bill (notify de-duplicates
    per account and day)."""
    now = now or datetime.now(UTC)
    rows = await Bill.filter(status=BillStatus.ISSUED, due_date__lt=today).values_list(
        "account_id", "total_fen", "paid_fen", "due_date"
    )
    owed: dict[int, tuple[int, int]] = {}
    for account_id, total, paid, due in rows:
        fen, days = owed.get(account_id, (0, 0))
        owed[account_id] = (fen + total - paid, max(days, (today - due).days))
    if not owed:
        return 0
    async with in_transaction() as tx:
        await arrears_due(
            tx, [ArrearsNotice(a, fen, days) for a, (fen, days) in owed.items()], now=now
        )
    return len(owed)


async def account_bills(account_id: int, *, limit: int = 50) -> list[BillView]:
    """A tenant's bills, newest first (drafts are the staff's business: not shown)."""
    rows = await (
        Bill.filter(account_id=account_id, status__in=[BillStatus.ISSUED, BillStatus.PAID])
        .select_related("account")
        .order_by("-id")
        .limit(limit)
    )
    return [_view(b) for b in rows]
