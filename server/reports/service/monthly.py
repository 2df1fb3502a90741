"""The monthly comprehensive report (月度综合报表): per shop (account), for one calendar month
in the park's zone —

- **usage by reading time** (`daily_usage`): electricity per TOU band (尖峰平谷, 深谷) and in
  all, water, and the money billed for it; the money per band is that month's usage money
  split by what each band's lines of the month's bills came to (largest remainder, so the
  bands add up to the whole);
- **money by posting time** (the ledger): every wallet leg posted in the month, classified by
  the other side of its transaction — payments per channel (clearing), usage charges, fees
  (rent, property, service, capacity), shares (公摊, 损耗), refunds, adjustments, transfers
  (过户). Opening (期初) and closing (期末) are the wallet at the month's bounds, so
  opening + the month's movements = closing, and the report's sums equal the ledger's.
- **late readings**: usage charges posted this month for readings of an earlier month
  (上月读数本月入账), and this month's readings posted in a later month (次月入账) — the
  gap between the two views, named.

The wallet at the month's end is today's wallet less everything posted since: the scan walks
the ledger from the month's first instant on (by `created_at`, migration 0028's index), never
the history before it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from server.core.money import split_by_weights
from server.ledger.posting import LedgerAccountKind, TxKind
from server.ledger.sql import fetch, in_list, is_pg
from server.reports.periods import Month
from server.reports.service.common import AccountLabel, account_labels, conn, day_param

BANDS = (1, 2, 3, 4, 5)
BAND_NAMES = {1: "尖", 2: "峰", 3: "平", 4: "谷", 5: "深谷"}
_BAND_OF_LABEL = {f"{name}时段电量": band for band, name in BAND_NAMES.items()}
FEES = ("rent", "property_fee", "service_fee", "capacity")
SHARES = ("common_share", "loss_share")
CHANNEL_NAMES = {"wechat": "微信", "alipay": "支付宝", "cash": "现金", "bank": "银行转账"}


@dataclass
class ShopMonth:
    """One account's month. Quantities in 0.0001 kWh / m³ units, money in fen; charges are
    positive numbers (what left the wallet), the movements' signs are the wallet's."""

    account: AccountLabel
    opening_fen: int = 0
    closing_fen: int = 0
    electricity_e4: int = 0
    bands_e4: dict[int, int] = field(default_factory=dict)
    water_e4: int = 0
    electricity_usage_fen: int = 0  # by reading time (daily usage)
    water_usage_fen: int = 0
    bands_fen: dict[int, int] = field(default_factory=dict)  # electricity money per band
    other_band_fen: int = 0  # electricity money not priced per band (flat, tiers, capacity)
    electricity_fen: int = 0  # usage charges posted this month (ledger)
    water_fen: int = 0
    fees_fen: int = 0
    shares_fen: int = 0
    payments_fen: int = 0  # net of reversed payments
    payments_by_channel: dict[str, int] = field(default_factory=dict)
    refunds_fen: int = 0  # refunds set aside less refunds that failed and came back
    adjustments_fen: int = 0  # signed, + into the wallet
    transfers_fen: int = 0  # signed: 过户 balance carried in (+) or out (−)
    earlier_usage_fen: int = 0  # of the usage charges: readings of an earlier month
    late_usage_fen: int = 0  # this month's readings posted in a later month

    @property
    def charges_fen(self) -> int:
        return self.electricity_fen + self.water_fen + self.fees_fen + self.shares_fen

    @property
    def movement_fen(self) -> int:
        """What the month did to the wallet: closing − opening."""
        return (self.payments_fen - self.refunds_fen + self.adjustments_fen
                + self.transfers_fen - self.charges_fen)  # fmt: skip

    @property
    def active(self) -> bool:
        return bool(self.opening_fen or self.closing_fen or self.electricity_e4
                    or self.water_e4 or self.movement_fen or self.charges_fen
                    or self.payments_fen or self.late_usage_fen)  # fmt: skip


@dataclass
class MonthlyReport:
    month: Month
    rows: list[ShopMonth]
    total: ShopMonth
    channels: list[str]  # the channels that moved money this month, in a fixed order


async def monthly_report(
    site_ids: Sequence[int], month: Month, tz: ZoneInfo, *, account_id: int | None = None
) -> MonthlyReport:
    """The month's report for every account of `site_ids` (or just `account_id`)."""
    labels = await account_labels(site_ids, account_id)
    shops = {i: ShopMonth(label) for i, label in labels.items()}
    if shops:
        await _money(shops, site_ids, month, tz, account_id)
        await _usage(shops, site_ids, month, account_id)
        await _band_money(shops, month, tz)
    rows = [s for s in shops.values() if s.active or s.account.status == "open"]
    total = _total(rows)
    channels = [c for c in CHANNEL_NAMES if total.payments_by_channel.get(c)]
    channels += sorted(set(total.payments_by_channel) - set(CHANNEL_NAMES))
    return MonthlyReport(month, rows, total, channels)


def _reading_time(c: Any) -> str:
    """SQL for the reading time in a usage charge's key `usage:<meter>:<UTC ISO time>` (the
    text compares in time order with another such ISO text)."""
    find = "strpos" if is_pg(c) else "instr"
    return f'substr(t."key", {find}(substr(t."key", 7), \':\') + 7)'


async def _money(
    shops: dict[int, ShopMonth],
    site_ids: Sequence[int],
    month: Month,
    tz: ZoneInfo,
    account_id: int | None,
) -> None:
    c = conn()
    start, end = month.bounds(tz)
    usage = f"t.kind = '{TxKind.CHARGE.value}' AND t.\"key\" LIKE 'usage:%'"
    read = _reading_time(c)
    sites, params = in_list(c, "a.site_id", list(site_ids), 5, "int")
    where = [sites]
    if account_id is not None:
        params.append(account_id)
        where.append(f"a.id = ${4 + len(params)}")
    rows = await fetch(
        c,
        "SELECT a.id AS account_id, oa.code AS code,"
        " CASE WHEN t.created_at < $2 THEN 1 ELSE 0 END AS in_month,"
        f" CASE WHEN {usage} AND {read} <= $3 THEN 1 ELSE 0 END AS read_before,"
        f" CASE WHEN {usage} AND {read} <= $4 THEN 1 ELSE 0 END AS read_in,"
        " SUM(-o.amount_fen) AS amount_fen"
        " FROM ledger_transaction t"
        " JOIN ledger_leg l ON l.transaction_id = t.id"
        " JOIN ledger_account w ON w.id = l.ledger_account_id"
        f"  AND w.kind = '{LedgerAccountKind.WALLET.value}'"
        " JOIN account a ON a.id = w.account_id"
        " JOIN ledger_leg o ON o.transaction_id = t.id AND o.id <> l.id"
        " JOIN ledger_account oa ON oa.id = o.ledger_account_id"
        f" WHERE t.created_at >= $1 AND {' AND '.join(where)}"
        " GROUP BY a.id, oa.code, in_month, read_before, read_in",
        [start, end, start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat(),
         *params],
    )  # fmt: skip
    after: dict[int, int] = defaultdict(int)
    for r in rows:
        shop = shops.get(int(r["account_id"]))
        if shop is None:
            continue
        amount = int(r["amount_fen"])
        if not int(r["in_month"]):
            after[shop.account.id] += amount
            if int(r["read_in"]) and not int(r["read_before"]):
                shop.late_usage_fen -= amount
            continue
        _classify(shop, str(r["code"]), amount)
        if int(r["read_before"]):
            shop.earlier_usage_fen -= amount
    for shop in shops.values():
        shop.closing_fen = shop.account.balance_fen - after[shop.account.id]
        shop.opening_fen = shop.closing_fen - shop.movement_fen


def _classify(shop: ShopMonth, code: str, amount: int) -> None:
    """One wallet movement (`amount`, signed as the wallet sees it) by its other side."""
    kind, _, name = code.partition(":")
    if kind == LedgerAccountKind.CLEARING.value:
        shop.payments_fen += amount
        shop.payments_by_channel[name] = shop.payments_by_channel.get(name, 0) + amount
    elif code == "revenue:electricity":
        shop.electricity_fen -= amount
    elif code == "revenue:water":
        shop.water_fen -= amount
    elif kind == LedgerAccountKind.REVENUE.value and name in SHARES:
        shop.shares_fen -= amount
    elif kind == LedgerAccountKind.REVENUE.value:  # rent, property, service, capacity, …
        shop.fees_fen -= amount
    elif kind == LedgerAccountKind.REFUNDS_PAYABLE.value:
        shop.refunds_fen -= amount
    elif kind == LedgerAccountKind.WALLET.value:
        shop.transfers_fen += amount
    else:  # adjustments, and anything new is at least counted, never lost
        shop.adjustments_fen += amount


async def _usage(
    shops: dict[int, ShopMonth], site_ids: Sequence[int], month: Month, account_id: int | None
) -> None:
    c = conn()
    sites, params = in_list(c, "m.site_id", list(site_ids), 3, "int")
    where = [sites, "du.account_id IS NOT NULL"]
    if account_id is not None:
        params.append(account_id)
        where.append(f"du.account_id = ${2 + len(params)}")
    rows = await fetch(
        c,
        "SELECT du.account_id, m.kind, SUM(du.quantity_e4) AS q, SUM(du.band1_e4) AS b1,"
        " SUM(du.band2_e4) AS b2, SUM(du.band3_e4) AS b3, SUM(du.band4_e4) AS b4,"
        " SUM(du.band5_e4) AS b5, SUM(COALESCE(du.amount_fen, 0)) AS fen"
        " FROM daily_usage du JOIN meter m ON m.id = du.meter_id"
        f" WHERE du.day >= $1 AND du.day < $2 AND {' AND '.join(where)}"
        " GROUP BY du.account_id, m.kind",
        [day_param(c, month.first), day_param(c, month.next().first), *params],
    )
    for r in rows:
        shop = shops.get(int(r["account_id"]))
        if shop is None:
            continue
        if r["kind"] == "water":
            shop.water_e4 += int(r["q"])
            shop.water_usage_fen += int(r["fen"])
            continue
        shop.electricity_e4 += int(r["q"])
        shop.electricity_usage_fen += int(r["fen"])
        for band in BANDS:
            shop.bands_e4[band] = shop.bands_e4.get(band, 0) + int(r[f"b{band}"])


async def _band_money(shops: dict[int, ShopMonth], month: Month, tz: ZoneInfo) -> None:
    """Each shop's electricity usage money split by its month's bills' band lines."""
    wanted = [i for i, s in shops.items() if s.electricity_usage_fen]
    if not wanted:
        return
    c = conn()
    start, end = month.bounds(tz)
    accounts, params = in_list(c, "u.account_id", wanted, 3, "int")
    if is_pg(c):
        sql = (
            "SELECT u.account_id, ln->>0 AS label, SUM((ln->>3)::numeric)::text AS amount"
            " FROM usage_charge u CROSS JOIN LATERAL jsonb_array_elements(u.lines::jsonb) ln"
            " JOIN meter m ON m.id = u.meter_id AND m.kind = 'electricity'"
            f" WHERE u.reading_at > $1 AND u.reading_at <= $2 AND {accounts}"
            " GROUP BY u.account_id, label"
        )
    else:  # embedded: a park's month of lines, summed exactly in Python
        sql = (
            "SELECT u.account_id, json_extract(ln.value, '$[0]') AS label,"
            " json_extract(ln.value, '$[3]') AS amount FROM usage_charge u, json_each(u.lines) ln"
            " JOIN meter m ON m.id = u.meter_id AND m.kind = 'electricity'"
            f" WHERE u.reading_at > $1 AND u.reading_at <= $2 AND {accounts}"
        )
    weights: dict[int, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in await fetch(c, sql, [start, end, *params]):
        band = _BAND_OF_LABEL.get(str(r["label"]), 0)
        weights[int(r["account_id"])][band] += Decimal(str(r["amount"]))
    for account_id in wanted:
        shop, found = shops[account_id], weights.get(account_id)
        if not found or not any(found.values()):
            shop.other_band_fen = shop.electricity_usage_fen
            continue
        shares = [found.get(k, Decimal(0)) for k in (*BANDS, 0)]
        parts = split_by_weights(shop.electricity_usage_fen, shares)
        shop.bands_fen = {b: p for b, p in zip(BANDS, parts[:-1], strict=True)}
        shop.other_band_fen = parts[-1]


def _total(rows: Sequence[ShopMonth]) -> ShopMonth:
    total = ShopMonth(AccountLabel(0, "", "合计", "", "", "", "", "", 0))
    for s in rows:
        for name in ("opening_fen", "closing_fen", "electricity_e4", "water_e4",
                     "electricity_usage_fen", "water_usage_fen", "other_band_fen",
                     "electricity_fen", "water_fen", "fees_fen", "shares_fen", "payments_fen",
                     "refunds_fen", "adjustments_fen", "transfers_fen", "earlier_usage_fen",
                     "late_usage_fen"):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(s, name))
        for band in BANDS:
            total.bands_e4[band] = total.bands_e4.get(band, 0) + s.bands_e4.get(band, 0)
            total.bands_fen[band] = total.bands_fen.get(band, 0) + s.bands_fen.get(band, 0)
        for ch, fen in s.payments_by_channel.items():
            total.payments_by_channel[ch] = total.payments_by_channel.get(ch, 0) + fen
    return total
