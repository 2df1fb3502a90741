"""Dialect-aware raw SQL for migrations: constraints and triggers Tortoise does not emit.

Usage in a migration: `per_dialect(postgres=[...], sqlite=[...])`. Each list runs in order on
its own database kind; another dialect fails loudly rather than silently skipping a guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise.migrations import operations as ops


def per_dialect(*, postgres: Sequence[str], sqlite: Sequence[str]) -> ops.RunPython:
    statements = {"postgres": list(postgres), "sqlite": list(sqlite)}

    async def forward(apps: Any, schema_editor: Any) -> None:
        dialect = schema_editor.client.capabilities.dialect
        if dialect not in statements:
            raise RuntimeError(f"no SQL written for database dialect {dialect!r}")
        for sql in statements[dialect]:
            await schema_editor.client.execute_script(sql)

    return ops.RunPython(forward)


class StateOnlyAlterField(ops.AlterField):
    """An AlterField the database does not need — only Tortoise's record of the model changes
    (an enum's choices in the field's description). A real AlterField on SQLite rebuilds the
    table and drops the triggers and indexes raw SQL made there (the ledger's guards)."""

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None
