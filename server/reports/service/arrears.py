"""Accounts in arrears (欠费账户): open accounts whose available balance (the one rule,
`server.metering.service.balance`: wallet and confirmed meter registers) is below zero, the
most owed first — with since when the wallet has been negative (the first posting after its
last non-negative balance, from the ledger's `balance_after_fen`) and the last payment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from server.ledger.posting import TxKind
from server.ledger.sql import fetch, in_list
from server.metering.service.balance import available_balances
from server.reports.service.common import AccountLabel, account_labels, as_time, conn


@dataclass(frozen=True, slots=True)
class Debtor:
    account: AccountLabel
    owed_fen: int  # positive: what the tenant owes
    wallet_fen: int
    since: datetime | None  # the wallet negative since (None: not from the ledger)
    last_payment_at: datetime | None

    def days(self, now: datetime) -> int | None:
        return None if self.since is None else max(0, (now - self.since).days)


@dataclass(frozen=True, slots=True)
class ArrearsReport:
    debtors: list[Debtor]
    owed_fen: int
    by_building: dict[str, int]  # owed per building (the chart), the most first


async def arrears_report(site_ids: Sequence[int], *, min_owed_fen: int = 1) -> ArrearsReport:
    labels = {
        i: a for i, a in (await account_labels(site_ids)).items()
        if a.status == "open" and a.balance_fen < 0
    }  # fmt: skip
    balances = await available_balances(labels)
    owing = {i: -b.total_fen for i, b in balances.items() if -b.total_fen >= max(1, min_owed_fen)}
    since, paid = await _dates(sorted(owing))
    debtors = sorted(
        (Debtor(labels[i], owed, labels[i].balance_fen, since.get(i), paid.get(i))
         for i, owed in owing.items()),
        key=lambda d: (-d.owed_fen, d.account.number),
    )  # fmt: skip
    by_building: dict[str, int] = {}
    for d in debtors:
        name = d.account.building or "（未分配房间）"
        by_building[name] = by_building.get(name, 0) + d.owed_fen
    ordered = dict(sorted(by_building.items(), key=lambda kv: -kv[1]))
    return ArrearsReport(debtors, sum(d.owed_fen for d in debtors), ordered)


async def _dates(account_ids: list[int]) -> tuple[dict[int, datetime], dict[int, datetime]]:
    if not account_ids:
        return {}, {}
    c = conn()
    accounts, params = in_list(c, "t.account_id", account_ids, 1, "int")
    negative = await fetch(
        c,
        "SELECT t.account_id, MIN(t.created_at) AS since FROM ledger_transaction t"
        f" WHERE {accounts} AND t.balance_after_fen < 0 AND NOT EXISTS (SELECT 1"
        " FROM ledger_transaction u WHERE u.account_id = t.account_id"
        " AND u.balance_after_fen >= 0 AND u.created_at > t.created_at)"
        " GROUP BY t.account_id",
        params,
    )
    paid = await fetch(
        c,
        f"SELECT t.account_id, MAX(t.created_at) AS at FROM ledger_transaction t WHERE {accounts}"
        f" AND t.kind = '{TxKind.RECHARGE.value}' GROUP BY t.account_id",
        params,
    )
    return (
        {int(r["account_id"]): as_time(r["since"]) for r in negative if r["since"]},
        {int(r["account_id"]): as_time(r["at"]) for r in paid if r["at"]},
    )  # type: ignore[return-value]
