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
