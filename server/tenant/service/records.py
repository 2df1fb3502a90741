"""A tenant's records (交易记录): the wallet's statement from the ledger, newest first —
recharges, refunds, adjustments, fees and money written to a meter one by one, usage
charges one record per day (server.ledger.statement sums them in SQL).

Paging is by an opaque cursor: the sort key of the last record given (its newest
transaction id) and the oldest day already given as a deduction record, so a day is never
listed twice even while new charges add to it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from server.core.errors import ValidationFailed
from server.ledger.posting import TxKind
from server.ledger.statement import DayTotal, Entry, entries, usage_days
from server.metering.service.daily_usage import zone
from server.tenant.service.access import bound_account

RecordType = Literal["all", "recharge", "deduction", "refund", "fee", "adjustment"]
METER_RECHARGE = "meter-recharge:%"  # the controller's key when a meter confirms a recharge
KINDS: dict[str, list[TxKind]] = {
    "recharge": [TxKind.RECHARGE],
    "refund": [TxKind.REFUND_HOLD, TxKind.REFUND_VOID],
    "adjustment": [TxKind.ADJUSTMENT, TxKind.REVERSAL],
    "fee": [TxKind.CHARGE],
}
CHANNEL_TITLES = {"wechat": "微信充值", "alipay": "支付宝充值", "cash": "现金充值",
                  "bank": "银行转账充值"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Cursor:
    before_id: int | None = None
    before_day: date | None = None


def encode_cursor(cursor: Cursor) -> str:
    day = cursor.before_day.isoformat() if cursor.before_day else None
    raw = json.dumps({"i": cursor.before_id, "d": day}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> Cursor:
    """The cursor a previous page gave; 422 naming `cursor` when it is not one."""
    if not text:
        return Cursor()
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        before_id = data["i"]
        if before_id is not None and not isinstance(before_id, int):
            raise ValueError("id")
        day = date.fromisoformat(data["d"]) if data["d"] else None
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed("分页游标无效", field="cursor") from exc
    return Cursor(before_id, day)


async def account_records(
    identity_id: int, account_id: int, kind: RecordType, limit: int, cursor: Cursor
) -> dict[str, Any]:
    """One page of the bound account's records and the cursor of the next (None: the end)."""
    await bound_account(identity_id, account_id)
    found: list[Entry | DayTotal] = []
    if kind != "deduction":
        # a fee is a charge that is neither usage nor money written to a meter
        found += await entries(account_id, before_id=cursor.before_id, kinds=KINDS.get(kind),
                               key_not_like=METER_RECHARGE if kind == "fee" else None,
                               limit=limit + 1)  # fmt: skip
    else:
        found += await entries(account_id, before_id=cursor.before_id, kinds=[TxKind.CHARGE],
                               key_like=METER_RECHARGE, limit=limit + 1)  # fmt: skip
    if kind in ("all", "deduction"):
        found += await usage_days(account_id, tz=zone(), before_id=cursor.before_id,
                                  before_day=cursor.before_day, limit=limit + 1)  # fmt: skip
    found.sort(key=_sort_key, reverse=True)
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        days = [r.day for r in page if isinstance(r, DayTotal)]
        oldest_day = min(days) if days else cursor.before_day
        next_cursor = encode_cursor(Cursor(_sort_key(page[-1]), oldest_day))
    return {"items": [_record(r) for r in page], "next_cursor": next_cursor}


def _sort_key(record: Entry | DayTotal) -> int:
    return record.last_id if isinstance(record, DayTotal) else record.id


def _to_meter(entry: Entry) -> bool:
    return entry.kind is TxKind.CHARGE and entry.key.startswith(METER_RECHARGE.rstrip("%"))


def _record(r: Entry | DayTotal) -> dict[str, Any]:
    if isinstance(r, DayTotal):
        return {
            "id": f"d{r.day.isoformat()}", "type": "deduction", "title": "用量扣费",
            "amount_fen": r.amount_fen, "at": r.last_at.astimezone(zone()).isoformat(),
            "day": r.day.isoformat(), "detail": f"当日 {r.count} 笔计费合计",
        }  # fmt: skip
    kind, title = _kind_title(r)
    return {
        "id": f"t{r.id}", "type": kind, "title": title, "amount_fen": r.amount_fen,
        "at": r.at.astimezone(zone()).isoformat(),
        "day": r.at.astimezone(zone()).date().isoformat(), "detail": r.memo,
    }  # fmt: skip


def _kind_title(e: Entry) -> tuple[str, str]:
    if e.kind is TxKind.RECHARGE:
        return "recharge", CHANNEL_TITLES.get(e.channel or "", "充值")
    if e.kind is TxKind.REFUND_HOLD:
        return "refund", "退款"
    if e.kind is TxKind.REFUND_VOID:
        return "refund", "退款失败，退回余额"
    if e.kind is TxKind.ADJUSTMENT:
        return "adjustment", "调账"
    if e.kind is TxKind.REVERSAL:
        return "adjustment", "冲正"
    if _to_meter(e):
        return "deduction", "充值到表"
    return "fee", e.memo or "费用"
