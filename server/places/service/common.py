"""What the structure services share: the status filter, checked names and areas, the
refusal to retire rooms that still have an open account, and the write boundary that turns a
unique-name race into a Conflict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.core.errors import Conflict, ValidationFailed
from server.places.models import Floor, Room

MAX_AREA = Decimal("99999999.99")


class Status(StrEnum):
    """Which objects a list shows: in use (default), retired, or both."""

    ACTIVE = "active"
    RETIRED = "retired"
    ALL = "all"

    @classmethod
    def of(cls, raw: str) -> Status:
        return cls(raw) if raw in cls._value2member_map_ else cls.ACTIVE


def now() -> datetime:
    return datetime.now(UTC)


def by_status(query: QuerySet[Any], status: Status) -> QuerySet[Any]:
    if status is Status.ACTIVE:
        return query.filter(retired_at__isnull=True)
    if status is Status.RETIRED:
        return query.filter(retired_at__isnull=False)
    return query


def checked_name(value: str, label: str, max_length: int) -> str:
    """A name as staff typed it, trimmed; empty or too long is refused in words."""
    name = (value or "").strip()
    if not name:
        raise ValidationFailed(f"请填写{label}")
    if len(name) > max_length:
        raise ValidationFailed(f"{label}最多 {max_length} 个字符")
    return name


def checked_area(value: str | Decimal | None) -> Decimal:
    """An area in m² with at most two decimals; blank is 0."""
    text = str(value if value is not None else "").strip() or "0"
    try:
        area = Decimal(text)
    except InvalidOperation:
        raise ValidationFailed(f"面积“{text}”不是数字") from None
    if not area.is_finite() or area < 0 or area > MAX_AREA or area != round(area, 2):
        raise ValidationFailed("面积须为 0 到 99999999.99 之间的数，最多两位小数")
    return area


async def name_free(
    siblings: QuerySet[Any], name: str, message: str, except_id: int | None = None
) -> None:
    """A name is unique among its siblings, retired ones included (their history keeps it)."""
    query = siblings.filter(name=name)
    if except_id is not None:
        query = query.exclude(id=except_id)
    if await query.exists():
        raise Conflict(message)


async def refuse_open_accounts(what: str, **room_filter: Any) -> None:
    """Retiring must not strand money: refuse while a room it covers has an open account."""
    account = (
        await Account.filter(status=AccountStatus.OPEN, room_id__isnull=False, **room_filter)
        .select_related("room")
        .order_by("id")
        .first()
    )
    if account is not None:
        raise Conflict(
            f"{what}的房间 {account.room.name} 有在用账户 {account.number}"  # type: ignore[attr-defined]
            f"（{account.tenant_name}），请先销户再停用"
        )


async def retire_floors(at: datetime, **floor_filter: Any) -> None:
    """Retire the floors `floor_filter` selects and their rooms still in use."""
    floor_ids = await Floor.filter(**floor_filter).values_list("id", flat=True)
    await Room.filter(floor_id__in=floor_ids, retired_at__isnull=True).update(retired_at=at)
    await Floor.filter(id__in=floor_ids, retired_at__isnull=True).update(retired_at=at)


@asynccontextmanager
async def writing(conflict: str) -> AsyncIterator[BaseDBAsyncClient]:
    """One transaction; a unique name taken meanwhile (a race past the checks) is `conflict`."""
    try:
        async with in_transaction() as conn:
            yield conn
    except IntegrityError as exc:
        raise Conflict(conflict) from exc
