"""The order overview (订单总览): every posting that moved a tenant's wallet — recharges
(online and at the counter), usage deductions, fee charges, refunds, adjustments, reversals
and 过户 transfers — read from the ledger, one row per transaction, newest first.

    search(site_ids, wanted, paging, tz) -> Page[OrderRow]      one page of the filter
    totals(site_ids, wanted, tz) -> Totals                        the filter's sums, by type
    chunks(site_ids, wanted, tz) -> async iterator of [OrderRow]  every row, for the export

A row's amount is its wallet leg (credit-positive: + into the wallet, − out), so the rows of
any filter add up to what the ledger moved on those wallets. A refund is one row (its hold:
the money leaving the wallet) whose status says how it ended — 处理中 (held), 已退款 (settled:
the money left the channel) or 已退回 (voided: the money came back, which is its own row);
a transaction reversed later says 已冲正. Times are stored in UTC; the day filters are the
park's local days (`tz`).

The export reads the filter in chunks of `CHUNK` (a server-side cursor on PostgreSQL, keyset
paging on SQLite), so a 100,000-row export never holds more than one chunk
(server.core.excel.stream_xlsx).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.core.excel import Column, Kind
from server.core.paging import Page, Paging
from server.ledger.sql import fetch, fetch_records, in_list, is_pg
from server.staff.service.oplog import actor_names

CHUNK = 5000

TYPE_LABELS = {
    "recharge": "充值",
    "usage": "用量扣费",
    "fee": "费用扣款",
    "refund": "退款",
    "adjustment": "调账",
    "reversal": "冲正",
    "transfer": "过户转移",
}
STATUS_LABELS = {
    "done": "已完成",
    "pending": "退款处理中",
    "refunded": "已退款",
    "returned": "已退回",
    "reversed": "已冲正",
}
CHANNEL_LABELS = {"wechat": "微信支付", "alipay": "支付宝", "cash": "现金", "bank": "对公转账"}
ITEM_LABELS = {
    "electricity": "电费",
    "water": "水费",
    "rent": "租金",
    "property_fee": "物业费",
    "service_fee": "服务费",
    "common_share": "公摊",
    "loss_share": "损耗分摊",
    "capacity": "基本电费",
}

_TYPE = (
    "CASE WHEN t.kind = 'charge' AND t.\"key\" LIKE 'usage:%' THEN 'usage'"
    " WHEN t.kind = 'charge' THEN 'fee'"
    " WHEN t.kind IN ('refund_hold', 'refund_void') THEN 'refund' ELSE t.kind END"
)
_STATUS = (
    "CASE WHEN t.kind = 'refund_hold' AND r.kind = 'refund_settle' THEN 'refunded'"
    " WHEN t.kind = 'refund_hold' AND r.kind = 'refund_void' THEN 'returned'"
    " WHEN t.kind = 'refund_hold' THEN 'pending'"
    " WHEN t.kind = 'refund_void' THEN 'returned'"
    " WHEN v.id IS NOT NULL THEN 'reversed' ELSE 'done' END"
)
# What a charge (or its reversal) was for: its revenue account (every posting has two legs).
_ITEM = (
    "CASE WHEN t.kind IN ('charge', 'reversal') THEN (SELECT MIN(ra.code) FROM ledger_leg rl"
    " JOIN ledger_account ra ON ra.id = rl.ledger_account_id"
    " WHERE rl.transaction_id = t.id AND ra.kind = 'revenue') END"
)
_FROM = (
    " FROM ledger_transaction t"
    " JOIN account a ON a.id = t.account_id"
    " JOIN site s ON s.id = a.site_id"
    " JOIN ledger_account wa ON wa.account_id = t.account_id"
    " JOIN ledger_leg w ON w.transaction_id = t.id AND w.ledger_account_id = wa.id"
    " LEFT JOIN ledger_transaction r ON r.resolves_id = t.id"
    " LEFT JOIN ledger_transaction v ON v.reverses_id = t.id"
)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    site_id: int | None = None  # informational: the caller narrows `site_ids` by it
    channel: str = ""  # a key of CHANNEL_LABELS
    type: str = ""  # a key of TYPE_LABELS
    status: str = ""  # a key of STATUS_LABELS
    account: str = ""  # an account number (exact) or part of the tenant's name
    since: date | None = None  # local days, inclusive
    until: date | None = None

    @classmethod
    def of(
        cls, *, site_id: int | None = None, channel: str = "", type: str = "", status: str = "",
        account: str = "", since: date | None = None, until: date | None = None,
    ) -> OrderFilter:  # fmt: skip
        """From the page's filters; an unknown channel, type or status is as if absent."""
        return cls(
            site_id=site_id,
            channel=channel if channel in CHANNEL_LABELS else "",
            type=type if type in TYPE_LABELS else "",
            status=status if status in STATUS_LABELS else "",
            account=account.strip()[:64], since=since, until=until,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: int
    at: datetime  # in the park's zone
    site: str
    account_id: int
    account_number: str
    tenant_name: str
    type: str
    status: str
    channel: str
    item: str  # charge type (electricity, water, rent…) for charges and their reversals
    amount_fen: int
    memo: str
    actor: str
    actor_name: str
    key: str

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, "")

    @property
    def item_label(self) -> str:
        return ITEM_LABELS.get(self.item, "")


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    in_fen: int = 0  # into the wallets
    out_fen: int = 0  # out of the wallets (a positive number)
    by_type: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (count, net fen)

    @property
    def net_fen(self) -> int:
        return self.in_fen - self.out_fen


def _where(
    conn: BaseDBAsyncClient, site_ids: Sequence[int], wanted: OrderFilter, tz: ZoneInfo
) -> tuple[str, list[Any]]:
    sites, params = in_list(conn, "a.site_id", list(site_ids), 1, "int")
    where = [sites, "t.kind <> 'refund_settle'"]
    if wanted.since is not None:
        params.append(_utc(wanted.since, tz))
        where.append(f"t.created_at >= ${len(params)}")
    if wanted.until is not None:
        params.append(_utc(wanted.until + timedelta(days=1), tz))
        where.append(f"t.created_at < ${len(params)}")
    if wanted.channel:
        params.append(wanted.channel)
        where.append(f"t.channel = ${len(params)}")
    if wanted.type:
        params.append(wanted.type)
        where.append(f"({_TYPE}) = ${len(params)}")
    if wanted.status:
        params.append(wanted.status)
        where.append(f"({_STATUS}) = ${len(params)}")
    if wanted.account:
        params.append(wanted.account)
        like = "%" + wanted.account.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(like + "%")
        where.append(
            f"(a.number = ${len(params) - 1} OR a.tenant_name LIKE ${len(params)} ESCAPE '\\')"
        )
    return " WHERE " + " AND ".join(where), params


def _utc(day: date, tz: ZoneInfo) -> datetime:
    """The start of a local day, in UTC (SQLite compares the stored UTC text)."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


_SELECT = (
    'SELECT t.id, t.created_at, t."key", t.memo, t.actor, t.channel, t.account_id,'
    f" a.number, a.tenant_name, s.name AS site, w.amount_fen, {_TYPE} AS type,"
    f" {_STATUS} AS status, {_ITEM} AS item"
)


async def search(
    site_ids: Sequence[int], wanted: OrderFilter, paging: Paging, tz: ZoneInfo
) -> Page[OrderRow]:
    """One page of the filter, newest first, with the count of all its rows."""
    if not site_ids:
        return Page([], 0, paging)
    conn = connections.get("default")
    where, params = _where(conn, site_ids, wanted, tz)
    (count,) = await fetch(conn, f"SELECT COUNT(*) AS n {_FROM}{where}", params)
    n = len(params)
    rows = await fetch(
        conn,
        f"{_SELECT}{_FROM}{where} ORDER BY t.created_at DESC, t.id DESC"
        f" LIMIT ${n + 1} OFFSET ${n + 2}",
        [*params, paging.per_page, paging.offset],
    )
    return Page(await _rows(rows, tz), int(count["n"]), paging)


async def totals(site_ids: Sequence[int], wanted: OrderFilter, tz: ZoneInfo) -> Totals:
    """The filter's count, money in and out of the wallets, and per type (count, net)."""
    if not site_ids:
        return Totals()
    conn = connections.get("default")
    where, params = _where(conn, site_ids, wanted, tz)
    rows = await fetch(
        conn,
        f"SELECT {_TYPE} AS type, COUNT(*) AS n,"
        " SUM(CASE WHEN w.amount_fen > 0 THEN w.amount_fen ELSE 0 END) AS in_fen,"
        " SUM(CASE WHEN w.amount_fen < 0 THEN -w.amount_fen ELSE 0 END) AS out_fen"
        f"{_FROM}{where} GROUP BY 1",
        params,
    )
    by_type = {
        r["type"]: (int(r["n"]), int(r["in_fen"] or 0) - int(r["out_fen"] or 0)) for r in rows
    }
    ordered = {k: by_type[k] for k in TYPE_LABELS if k in by_type}
    return Totals(
        count=sum(int(r["n"]) for r in rows),
        in_fen=sum(int(r["in_fen"] or 0) for r in rows),
        out_fen=sum(int(r["out_fen"] or 0) for r in rows),
        by_type=ordered,
    )


async def chunks(
    site_ids: Sequence[int], wanted: OrderFilter, tz: ZoneInfo, *, chunk: int = CHUNK
) -> AsyncIterator[list[OrderRow]]:
    """Every row of the filter, newest first, `chunk` rows at a time: on PostgreSQL one
    query read through a server-side cursor (one scan and sort, whatever the row count), on
    SQLite by keyset (posting time, id)."""
    if not site_ids:
        return
    conn = connections.get("default")
    where, params = _where(conn, site_ids, wanted, tz)
    n = len(params)
    if is_pg(conn):
        sql = f"{_SELECT}{_FROM}{where} ORDER BY t.created_at DESC, t.id DESC"
        async with conn.acquire_connection() as raw, raw.transaction(readonly=True):
            cursor = await raw.cursor(sql, *params)
            while part := await cursor.fetch(chunk):
                yield await _rows(part, tz)
        return
    after: tuple[Any, int] | None = None
    while True:
        extra, more = "", []
        if after is not None:
            extra = (
                f" AND (t.created_at < ${n + 1} OR (t.created_at = ${n + 1} AND t.id < ${n + 2}))"
            )
            more = list(after)
        rows = await fetch_records(
            conn,
            f"{_SELECT}{_FROM}{where}{extra} ORDER BY t.created_at DESC, t.id DESC"
            f" LIMIT ${n + len(more) + 1}",
            [*params, *more, chunk],
        )
        if not rows:
            return
        yield await _rows(rows, tz)
        if len(rows) < chunk:
            return
        last = rows[-1]
        after = (last["created_at"], int(last["id"]))


async def _rows(rows: Sequence[Any], tz: ZoneInfo) -> list[OrderRow]:
    names = await actor_names({r["actor"] for r in rows})
    return [_row(r, names, tz) for r in rows]


def _row(r: Any, names: dict[str, str], tz: ZoneInfo) -> OrderRow:
    return OrderRow(
        int(r["id"]), _datetime(r["created_at"]).astimezone(tz), r["site"],
        int(r["account_id"]), r["number"], r["tenant_name"], r["type"], r["status"],
        r["channel"] or "", (r["item"] or "").partition(":")[2], int(r["amount_fen"]),
        r["memo"], r["actor"], names.get(r["actor"], r["actor"]), r["key"],
    )  # fmt: skip


def _datetime(value: Any) -> datetime:
    """asyncpg gives datetimes; SQLite the text stored (UTC)."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# The export's columns and a row's cells, shared by the page's Excel and bench/export.py.
EXPORT_COLUMNS = (
    Column("时间", Kind.DATETIME, 20),
    Column("园区", Kind.TEXT, 14),
    Column("账户号", Kind.TEXT, 12),
    Column("租户", Kind.TEXT, 20),
    Column("类型", Kind.TEXT, 10),
    Column("项目", Kind.TEXT, 10),
    Column("渠道", Kind.TEXT, 10),
    Column("状态", Kind.TEXT, 10),
    Column("金额（元）", Kind.MONEY, 14),
    Column("说明", Kind.TEXT, 30),
    Column("操作人", Kind.TEXT, 18),
    Column("流水号", Kind.NUMBER, 12),
)


def export_cells(r: OrderRow) -> tuple[Any, ...]:
    return (
        r.at, r.site, r.account_number, r.tenant_name, r.type_label, r.item_label,
        r.channel_label, r.status_label, r.amount_fen, r.memo, r.actor_name, r.id,
    )  # fmt: skip


async def export_chunks(
    site_ids: Sequence[int], wanted: OrderFilter, tz: ZoneInfo
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The export's rows (EXPORT_COLUMNS), a chunk at a time."""
    async for rows in chunks(site_ids, wanted, tz):
        yield [export_cells(r) for r in rows]
