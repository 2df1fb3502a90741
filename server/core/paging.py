"""One page of a list: what every admin list (and its Excel export) asks a service for.

A service filters a queryset by scope and search, then calls `paginate`; an export asks for
the same filter with `Paging.everything()` (up to `EXPORT_LIMIT` rows)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.queryset import QuerySet

T = TypeVar("T")
R = TypeVar("R")

PER_PAGE = 50
MAX_PER_PAGE = 200
EXPORT_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Paging:
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def of(cls, args: Mapping[str, Any]) -> Paging:
        """From query arguments (`page`, `per_page`); nonsense falls back to the defaults."""
        return cls(
            page=_positive(args.get("page"), 1),
            per_page=min(_positive(args.get("per_page"), PER_PAGE), MAX_PER_PAGE),
        )

    @classmethod
    def everything(cls) -> Paging:
        return cls(page=1, per_page=EXPORT_LIMIT)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _positive(raw: Any, default: int) -> int:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return default
    return value if 0 < value < 1_000_000 else default


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    paging: Paging

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.paging.per_page))

    @property
    def page(self) -> int:
        return self.paging.page

    def map(self, fn: Callable[[T], R]) -> Page[R]:
        return Page([fn(item) for item in self.items], self.total, self.paging)


async def paginate(query: QuerySet[Any], paging: Paging) -> Page[Any]:
    """The page of `query` (already ordered) and the count of all its rows."""
    total = await query.count()
    items = await query.offset(paging.offset).limit(paging.per_page)
    return Page(items, total, paging)
