"""One writer of money: SQL and ORM writes to wallet balances (`account.balance_fen`), ledger
transactions and legs appear in `server/ledger/` only (DESIGN.md, "money is written by
server/ledger/ alone"; STYLE.md habit 10).

Every Python file of the repository outside `server/ledger/` and `migrations/` is read as a
syntax tree and searched for
- SQL text (string literals, f-strings and `+` concatenations of them): `UPDATE account …
  SET … balance_fen =`, `INSERT INTO` / `UPDATE` / `DELETE FROM` / `COPY` / `TRUNCATE`
  `ledger_transaction` or `ledger_leg`;
- bulk helpers aimed at those tables: `copy_rows`, `insert_rows`, asyncpg's
  `copy_records_to_table` / `copy_to_table` with the table's name as a literal;
- ORM writes: any call on `LedgerTransaction` / `LedgerLeg` that writes (`create`,
  `bulk_create`, `update`, `delete`, …) or builds one; a write call or model constructor with a
  `balance_fen=` keyword; an assignment to an attribute `.balance_fen`; `update_fields`
  naming `balance_fen`.

Files that write around the ledger on purpose are listed in `ALLOWED`, each with its reason;
an entry that no longer writes around the ledger fails too, so the list stays true.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {".venv", ".git", ".cache", "node_modules", "migrations", "__pycache__"}
LEDGER = Path("server/ledger")

# The one place for exceptions: path → why it may write money around the ledger.
ALLOWED: dict[str, str] = {
    "tests/ledger/test_ledger_balance_trigger.py": (
        "inserts unbalanced legs by hand to prove the deferred PostgreSQL trigger refuses them"
    ),
    "tests/ledger/test_ledger_references.py": (
        "writes transactions, legs and a wallet by hand to prove the reference constraints"
        " and the statement checks of migration 0009"
    ),
    "tests/ledger/test_ledger_service.py": (
        "tampers with legs to prove the balance trigger refuses a transaction that no longer"
        " sums to zero"
    ),
    "tests/ledger/test_ledger_check.py": (
        "tampers with a wallet balance to prove `ledger check` reports it"
    ),
    "tests/ledger/backdated.py": (
        "writes usage charges with posting times in the past (the ledger stamps now()) so the"
        " statement tests have a wallet debited over many days"
    ),
    "tests/test_money_writers.py": (
        "this check's own synthetic offenders, which prove that it fails when it should"
    ),
    "bench/park.py": (
        "benchmark set-up: every account's opening recharge in three bulk statements (not"
        " measured; `ledger check` runs over the result)"
    ),
}

_MONEY_TABLE = r'"?(?:ledger_transaction|ledger_leg)"?\b'
_SQL = [
    re.compile(
        rf"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|COPY|TRUNCATE(?:\s+TABLE)?)\s+{_MONEY_TABLE}",
        re.I,
    ),
    re.compile(  # balance_fen set in the SET list (not merely read in WHERE)
        r'\bUPDATE\s+"?account"?(?:\s+(?:AS\s+)?\w+)?\s+SET\b'
        r"(?:(?!\b(?:WHERE|FROM|RETURNING)\b).)*\bbalance_fen\s*=(?!=)",
        re.I | re.S,
    ),
]
_BULK_HELPERS = {"copy_rows", "insert_rows", "copy_records_to_table", "copy_to_table"}
_MONEY_TABLES = {"ledger_transaction", "ledger_leg"}
_LEDGER_MODELS = {"LedgerTransaction", "LedgerLeg"}
_ORM_WRITES = {"create", "bulk_create", "bulk_update", "get_or_create", "update_or_create",
               "update", "delete", "save", "update_from_dict", "raw"}  # fmt: skip
_MONEY_COLUMN = "balance_fen"
# Models whose `balance_fen` is a copy of the balance at an event, not the wallet.
_SNAPSHOT_MODELS = {"AlarmRecord"}


def _text(node: ast.AST) -> str | None:
    """The literal text of a string expression (f-string holes as `{}`), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is not None or right is not None:
            return (left or "{}") + (right or "{}")
    return None


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _rooted_at(node: ast.AST, models: set[str]) -> bool:
    """`LedgerLeg.filter(...).update` and the like: a chain that starts at one of `models`."""
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return isinstance(node, ast.Name) and node.id in models


def _call_offences(node: ast.Call) -> list[str]:
    found = []
    func = _name(node.func)
    if func in _BULK_HELPERS:
        tables = {_text(a) for a in node.args[:2]} | {_text(k.value) for k in node.keywords}
        if tables & _MONEY_TABLES:
            found.append(f"{func} into {', '.join(sorted(tables & _MONEY_TABLES))}")
    if func in _LEDGER_MODELS:
        found.append(f"{func}(…) built")
    if func in _ORM_WRITES and _rooted_at(node.func, _LEDGER_MODELS):
        found.append(f"ORM {func} on a ledger model")
    if (
        (func in _ORM_WRITES or (func or "")[:1].isupper())
        and any(k.arg == _MONEY_COLUMN for k in node.keywords)
        and not _rooted_at(node.func, _SNAPSHOT_MODELS)
    ):
        found.append(f"{func}({_MONEY_COLUMN}=…)")
    for k in node.keywords:
        if k.arg == "update_fields" and _MONEY_COLUMN in ast.unparse(k.value):
            found.append("update_fields with balance_fen")
    return found


def offences(source: str) -> list[tuple[int, str]]:
    """(line, what) for each money write in a module's source."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    inside_text: set[int] = set()  # parts of a string expression already read whole
    for node in ast.walk(tree):
        if id(node) in inside_text:
            continue
        text = _text(node)
        if text is not None:
            inside_text.update(id(n) for n in ast.walk(node))
            sql = " ".join(text.split())
            if any(p.search(sql) for p in _SQL):
                found.append((node.lineno, f"SQL: {sql[:80]}"))
        if isinstance(node, ast.Call):
            found += [(node.lineno, what) for what in _call_offences(node)]
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == _MONEY_COLUMN:
                found.append((node.lineno, f"assignment to .{_MONEY_COLUMN}"))
    return sorted(set(found))


def _sources() -> list[Path]:
    """Every Python file of the repository (relative paths) but the ledger's and migrations."""
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        rel = Path(folder).relative_to(ROOT)
        if rel.is_relative_to(LEDGER):
            continue
        files += [rel / n for n in names if n.endswith(".py")]
    return sorted(files)


def test_money_is_written_by_the_ledger_alone() -> None:
    outside = {}
    for rel in _sources():
        found = offences((ROOT / rel).read_text(encoding="utf-8"))
        if found and rel.as_posix() not in ALLOWED:
            outside[rel.as_posix()] = found
    assert not outside, (
        "money written outside server/ledger/ (post through server.ledger, or list the file"
        f" in ALLOWED with its reason): {outside}"
    )


@pytest.mark.parametrize("path", sorted(ALLOWED))
def test_every_exception_still_writes_around_the_ledger(path: str) -> None:
    assert offences((ROOT / path).read_text(encoding="utf-8")), f"{path}: drop it from ALLOWED"


@pytest.mark.parametrize(
    "source",
    [
        'q = "UPDATE account SET balance_fen = balance_fen + $1 WHERE id = $2"',
        'q = f"update account a set status = $1, balance_fen = {x} where a.id = $2"',
        'q = "UPDATE account AS a SET " + "balance_fen = a.balance_fen - u.d FROM unnest($1)"',
        "q = ('INSERT INTO ledger_transaction (\"key\", kind) '\n     'VALUES ($1, $2)')",
        'q = "insert into ledger_leg (transaction_id) values ($1)"',
        'q = "DELETE FROM ledger_leg WHERE id = $1"',
        'q = "COPY ledger_leg FROM STDIN"',
        'q = f"TRUNCATE ledger_transaction CASCADE"',
        'async def f(c, rows):\n    await copy_rows(c, "ledger_leg", COLS, rows)',
        'async def f(c, rows):\n    await insert_rows(c, "ledger_transaction", COLS, rows)',
        'async def f(raw):\n    await raw.copy_records_to_table("ledger_leg", records=[])',
        "async def f():\n    await LedgerTransaction.create(key='k')",
        "async def f():\n    await LedgerLeg.bulk_create([])",
        "async def f():\n    await LedgerLeg.filter(id=1).update(amount_fen=2)",
        "async def f():\n    await Account.filter(id=1).update(balance_fen=F('balance_fen') + 1)",
        "async def f(a):\n    a.balance_fen = 5\n    await a.save()",
        "async def f(a):\n    a.balance_fen += 5",
        "async def f(a):\n    await a.save(update_fields=['balance_fen'])",
        "a = Account(number='A1', balance_fen=100)",
        "async def f():\n    await Account.create(number='A1', balance_fen=100)",
    ],
)
def test_the_check_finds_a_money_write(source: str) -> None:
    assert offences(source)


@pytest.mark.parametrize(
    "source",
    [
        'q = "SELECT balance_fen FROM account WHERE id = $1"',
        'q = "UPDATE account SET status = $1 WHERE id = $2 AND balance_fen = 0"',
        'q = "SELECT t.id FROM ledger_transaction t JOIN ledger_leg l ON l.transaction_id = t.id"',
        'q = "INSERT INTO ledger_account (code, kind) VALUES ($1, $2)"',
        "async def f():\n    return await LedgerLeg.filter(id=1).count()",
        "async def f():\n    return await Account.filter(balance_fen__lt=0)",
        "low = account.balance_fen < 0",
        "park = register(sim, balance_fen=100)",
        "async def f(a):\n    await AlarmRecord.create(account=a, level=1, balance_fen=-500)",
    ],
)
def test_the_check_leaves_reads_alone(source: str) -> None:
    assert offences(source) == []


def test_the_check_recognises_the_ledgers_own_writes() -> None:
    """The shapes the one writer uses are the shapes the check looks for elsewhere."""
    found = " ".join(what for _, what in offences((ROOT / LEDGER / "write.py").read_text()))
    assert "UPDATE account a SET balance_fen" in found
    assert "INSERT INTO ledger_transaction" in found
    assert "copy_rows into ledger_leg" in found
    assert "insert_rows into ledger_leg" in found
