"""The tenant's bills and real-time bill (实时账单), for accounts bound to the caller only
(`bound_account`: anything else is NotFound), and paying a bill from the wallet after an
online recharge (server.property does the money, through the ledger)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.core.errors import NotFound, ValidationFailed
from server.property.service import bills
from server.property.service.statement import realtime_bill
from server.tenant.service.access import bound_account


def _bill(b: bills.BillView, today: date, *, lines: bool = False) -> dict[str, Any]:
    return {
        "id": b.id, "number": b.number, "kind": b.kind.value,
        "period": b.period_start.strftime("%Y-%m"), "status": b.status.value,
        "overdue": b.overdue(today), "total_fen": b.total_fen, "paid_fen": b.paid_fen,
        "owed_fen": b.owed_fen, "due_date": b.due_date.isoformat() if b.due_date else None,
        "lines": [{"label": label, "amount_fen": fen} for label, fen in b.lines] if lines else [],
    }  # fmt: skip


async def account_bills(identity_id: int, account_id: int, tz: ZoneInfo) -> dict[str, Any]:
    await bound_account(identity_id, account_id)
    today = datetime.now(UTC).astimezone(tz).date()
    found = await bills.account_bills(account_id)
    owed = sum(b.owed_fen for b in found if b.status is bills.BillStatus.ISSUED)
    return {"items": [_bill(b, today) for b in found], "owed_fen": owed}


async def _own_bill(identity_id: int, account_id: int, bill_id: int) -> bills.BillView:
    account, _ = await bound_account(identity_id, account_id)
    bill = await bills.get_bill([account.site_id], bill_id)  # type: ignore[attr-defined]
    if bill.account_id != account_id or bill.status not in (
        bills.BillStatus.ISSUED, bills.BillStatus.PAID,
    ):  # fmt: skip
        raise NotFound("账单不存在", bill_id=bill_id)
    return bill


async def bill_detail(identity_id: int, account_id: int, bill_id: int, tz: ZoneInfo) -> dict:
    today = datetime.now(UTC).astimezone(tz).date()
    return _bill(await _own_bill(identity_id, account_id, bill_id), today, lines=True)


async def pay_from_wallet(
    identity_id: int,
    openid: str,
    account_id: int,
    bill_id: int,
    tz: ZoneInfo,
    amount_fen: int | None = None,
) -> dict[str, Any]:
    """Pay what the wallet covers of the bill, or `amount_fen` of it (recharge online first
    for the rest)."""
    bill = await _own_bill(identity_id, account_id, bill_id)
    paid = await bills.pay_bill(
        [bill.site_id], bill.id, actor=f"tenant:{openid}", amount_fen=amount_fen
    )
    today = datetime.now(UTC).astimezone(tz).date()
    return _bill(paid, today, lines=True)


async def statement(
    identity_id: int, account_id: int, month: str | None, tz: ZoneInfo
) -> dict[str, Any]:
    """The month's real-time bill (this month when `month` is None)."""
    await bound_account(identity_id, account_id)
    if month is None:
        month = datetime.now(UTC).astimezone(tz).strftime("%Y-%m")
    try:
        found = await realtime_bill(account_id, month, tz)
    except ValueError:
        raise ValidationFailed("月份格式应为 YYYY-MM", field="month") from None
    return {
        "month": found.month, "opening_fen": found.opening_fen, "closing_fen": found.closing_fen,
        "lines": [{"section": ln.section, "label": ln.label, "amount_fen": ln.amount_fen}
                  for ln in found.lines],
        "bands": [{"label": b.label, "quantity": str(b.quantity), "amount_yuan": str(b.amount)}
                  for b in found.bands],
    }  # fmt: skip
