"""The tenant's own monthly statement (月度对账单) of an account bound to him: the monthly
comprehensive report's row for his account (`server.reports.service.monthly`: use by reading
time per TOU band, what was posted in the month, opening and closing balance), so the staff's
report and the tenant's statement show the same numbers — as JSON for the mini-program and
as an Excel download."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from server.core.errors import ValidationFailed
from server.core.excel import Column, Kind, StreamSheet
from server.reports.periods import Month
from server.reports.service.common import quantity
from server.reports.service.monthly import BAND_NAMES, BANDS, CHANNEL_NAMES, monthly_report
from server.tenant.service.access import bound_account


async def monthly_statement(
    identity_id: int, account_id: int, month: str | None, tz: ZoneInfo
) -> dict[str, Any]:
    """The month's statement (this month when `month` is None); NotFound unless bound."""
    account, _ = await bound_account(identity_id, account_id)
    try:
        now = datetime.now(UTC).astimezone(tz).date()
        asked = Month.parse(month) if month else Month.of(now)
    except ValueError:
        raise ValidationFailed("月份格式应为 YYYY-MM", field="month") from None
    site_id: int = account.site_id  # type: ignore[attr-defined]
    s = (await monthly_report([site_id], asked, tz, account_id=account_id)).total
    return {
        "month": str(asked), "label": asked.label,
        "account": {"number": account.number, "tenant_name": account.tenant_name},
        "opening_fen": s.opening_fen, "closing_fen": s.closing_fen,
        "payments_fen": s.payments_fen,
        "payments": [{"channel": c, "label": CHANNEL_NAMES.get(c, c), "amount_fen": fen}
                     for c, fen in s.payments_by_channel.items() if fen],
        "electricity": {
            "quantity": str(quantity(s.electricity_e4)), "amount_fen": s.electricity_usage_fen,
            "bands": [{"band": b, "label": BAND_NAMES[b],
                       "quantity": str(quantity(s.bands_e4.get(b, 0))),
                       "amount_fen": s.bands_fen.get(b, 0)}
                      for b in BANDS if s.bands_e4.get(b) or s.bands_fen.get(b)],
            "other_fen": s.other_band_fen,
        },
        "water": {"quantity": str(quantity(s.water_e4)), "amount_fen": s.water_usage_fen},
        "posted": {"electricity_fen": s.electricity_fen, "water_fen": s.water_fen,
                   "fees_fen": s.fees_fen, "shares_fen": s.shares_fen,
                   "earlier_usage_fen": s.earlier_usage_fen},
        "late_usage_fen": s.late_usage_fen, "refunds_fen": s.refunds_fen,
        "adjustments_fen": s.adjustments_fen, "transfers_fen": s.transfers_fen,
    }  # fmt: skip


def statement_sheet(found: dict[str, Any]) -> StreamSheet:
    """The statement as one sheet: 项目 / 数量 / 金额(元), in reading order."""
    e, w, p = found["electricity"], found["water"], found["posted"]
    rows: list[list[Any]] = [
        ["户号", f"{found['account']['number']} {found['account']['tenant_name']}", None],
        ["月份", found["label"], None],
        ["期初余额", None, found["opening_fen"]],
        *[[f"{x['label']}缴费", None, x["amount_fen"]] for x in found["payments"]],
        ["缴费合计", None, found["payments_fen"]],
        ["用电量(kWh)与电费（按读数时间）", _q(e["quantity"]), e["amount_fen"]],
        *[[f"  其中{b['label']}时段", _q(b["quantity"]), b["amount_fen"]] for b in e["bands"]],
        ["用水量(m³)与水费（按读数时间）", _q(w["quantity"]), w["amount_fen"]],
        ["本月入账电费", None, p["electricity_fen"]],
        ["  其中上月读数本月入账", None, p["earlier_usage_fen"]],
        ["本月入账水费", None, p["water_fen"]],
        ["其他费用", None, p["fees_fen"]],
        ["公摊与损耗", None, p["shares_fen"]],
        ["退费", None, found["refunds_fen"]],
        ["调账", None, found["adjustments_fen"]],
        ["过户转入转出", None, found["transfers_fen"]],
        ["期末余额", None, found["closing_fen"]],
        ["本月读数次月入账（计入下月）", None, found["late_usage_fen"]],
    ]
    columns = [Column("项目", Kind.TEXT, 32), Column("数量", Kind.TEXT, 30),
               Column("金额(元)", Kind.MONEY, 14)]  # fmt: skip
    return StreamSheet(f"{found['label']}对账单", columns, rows, chunked=False)


def _q(text: str) -> Decimal:
    return Decimal(text)
