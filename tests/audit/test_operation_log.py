"""The operation log is append-only and tamper-evident."""

from __future__ import annotations

import asyncio

import pytest

from server.audit.models import OperationLog
from server.audit.service import Entry, record, record_many, verify_chain

pytestmark = pytest.mark.usefixtures("db")


async def test_rows_chain_and_verify() -> None:
    await record("staff:1", "meter.trip", target_type="meter", target_id=7, reason="欠费停电")
    await record(
        "system:alarms", "alarm.raise", target_type="account", target_id=3, detail={"level": 1}
    )
    assert await verify_chain() == []


async def test_an_edited_row_is_detected() -> None:
    await record("staff:1", "meter.trip", target_type="meter", target_id=7)
    row = await record("staff:1", "meter.close", target_type="meter", target_id=7)
    await OperationLog.filter(id=row.id).update(actor="staff:2")
    breaks = await verify_chain()
    assert [b.row_id for b in breaks] == [row.id]


async def test_a_deleted_row_is_detected() -> None:
    first = await record("staff:1", "a")
    middle = await record("staff:1", "b")
    await record("staff:1", "c")
    await OperationLog.filter(id=middle.id).delete()
    assert first.id not in [b.row_id for b in await verify_chain()]
    assert len(await verify_chain()) == 1


@pytest.mark.postgres
async def test_concurrent_writers_keep_one_chain() -> None:
    await asyncio.gather(*(record(f"staff:{i}", "x") for i in range(20)))
    assert await OperationLog.all().count() == 20
    assert await verify_chain() == []


async def test_a_batch_extends_the_chain_in_order() -> None:
    await record("staff:1", "before")
    entries = [
        Entry("system:alarms", f"alarm.{i}", "account", i, None, "余额不足", {"level": i % 3})
        for i in range(5)
    ]
    assert await record_many(entries) == 5
    await record("staff:1", "after")
    rows = await OperationLog.all().order_by("id").values_list("action", flat=True)
    assert rows == ["before", *(f"alarm.{i}" for i in range(5)), "after"]
    assert await verify_chain() == []
    await OperationLog.filter(action="alarm.2").update(reason="改过")
    await OperationLog.filter(action="alarm.3").update(detail={"level": 9})
    breaks = await verify_chain()
    assert [b.problem for b in breaks] == ["记录内容与哈希不符（记录被修改）"] * 2


@pytest.mark.postgres
async def test_concurrent_batches_and_single_rows_keep_one_chain() -> None:
    batch = [Entry("system:collector", "meter.online", "meter", i) for i in range(50)]
    await asyncio.gather(
        *(record_many(batch) for _ in range(4)), *(record(f"staff:{i}", "x") for i in range(10))
    )
    assert await OperationLog.all().count() == 210
    assert await verify_chain() == []
