"""`shuidian ledger check`: recompute every ledger invariant from the rows and list what
does not hold. Read-only; safe to run on a live database.

Checked (DESIGN.md invariants 1–3, payments.md "Money invariants to test" 1, 2, 4):
- every transaction has at least two legs and its legs sum to zero;
- all legs together sum to zero;
- each account's stored wallet balance (account.balance_fen) equals the sum of its wallet legs;
- no idempotency key appears twice (the UNIQUE constraint should make this impossible: the
  check is there to catch a dropped constraint);
- every wallet ledger account is linked to the tenant account its code names.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import connections

from server.ledger.sql import fetch


@dataclass(frozen=True, slots=True)
class Discrepancy:
    rule: str  # which invariant: unbalanced, too_few_legs, total, wallet, duplicate_key, chart
    subject: str  # what it is about: "transaction 12", "account 7", "key wx:1"
    detail: str  # Chinese, for the staff member running the check

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.detail}"


async def check_ledger() -> list[Discrepancy]:
    """Every discrepancy found, in a stable order; empty when the ledger is sound."""
    conn = connections.get("default")
    found: list[Discrepancy] = []
    for r in await fetch(
        conn,
        "SELECT t.id, COUNT(l.id) AS n, COALESCE(SUM(l.amount_fen), 0) AS s"
        " FROM ledger_transaction t LEFT JOIN ledger_leg l ON l.transaction_id = t.id"
        " GROUP BY t.id HAVING COUNT(l.id) < 2 OR COALESCE(SUM(l.amount_fen), 0) <> 0"
        " ORDER BY t.id",
    ):
        subject = f"transaction {r['id']}"
        if int(r["n"]) < 2:
            found.append(Discrepancy("too_few_legs", subject, f"只有{r['n']}条分录（至少两条）"))
        if int(r["s"]) != 0:
            found.append(Discrepancy("unbalanced", subject, f"分录合计 {r['s']} 分，不为零"))
    total = await fetch(conn, "SELECT COALESCE(SUM(amount_fen), 0) AS s FROM ledger_leg")
    if int(total[0]["s"]) != 0:
        found.append(Discrepancy("total", "ledger", f"全部分录合计 {total[0]['s']} 分，不为零"))
    for r in await fetch(
        conn,
        "SELECT a.id, a.balance_fen, COALESCE(w.s, 0) AS legs FROM account a LEFT JOIN ("
        "  SELECT la.account_id, SUM(l.amount_fen) AS s FROM ledger_leg l"
        "  JOIN ledger_account la ON la.id = l.ledger_account_id"
        "  WHERE la.kind = 'wallet' GROUP BY la.account_id"
        ") w ON w.account_id = a.id WHERE a.balance_fen <> COALESCE(w.s, 0) ORDER BY a.id",
    ):
        found.append(
            Discrepancy(
                "wallet",
                f"account {r['id']}",
                f"账户余额 {r['balance_fen']} 分，但钱包分录合计 {r['legs']} 分"
                f"（差 {int(r['balance_fen']) - int(r['legs'])} 分）",
            )
        )
    for r in await fetch(
        conn,
        'SELECT "key", COUNT(*) AS n FROM ledger_transaction GROUP BY "key"'
        ' HAVING COUNT(*) > 1 ORDER BY "key"',
    ):
        found.append(Discrepancy("duplicate_key", f"key {r['key']}", f"幂等键出现{r['n']}次"))
    for r in await fetch(
        conn,
        "SELECT id, code, account_id FROM ledger_account WHERE kind = 'wallet'"
        " AND (account_id IS NULL OR code <> 'wallet:' || CAST(account_id AS TEXT)) ORDER BY id",
    ):
        found.append(
            Discrepancy("chart", f"ledger account {r['code']}", "钱包科目未关联到对应账户")
        )
    return found


async def run_check() -> int:
    """Print the check's findings; 0 when sound, 1 otherwise. Needs an initialised database."""
    found = await check_ledger()
    if not found:
        print("账本检查通过：所有不变量成立。")
        return 0
    print(f"账本检查发现 {len(found)} 处不一致：")
    for d in found:
        print(f"  {d}")
    return 1
