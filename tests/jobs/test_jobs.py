"""Durable jobs: enqueue in the event's transaction, claim with a lease, retry, dead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from server.jobs.models import Job, JobStatus
from server.jobs.runner import Runner
from server.jobs.service import Claimed, claim, complete, enqueue, fail, purge, retry_delay

pytestmark = pytest.mark.usefixtures("db")
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_a_job_is_claimed_once_run_and_marked_done() -> None:
    job_id = await enqueue("demo.echo", {"say": "你好"}, run_at=at(0))
    assert await claim(5, kinds=["demo.echo"], worker="w1", now=at(-1)) == []  # not yet due
    assert await claim(5, kinds=["other"], worker="w1", now=at(1)) == []  # not its kind
    (job,) = await claim(5, kinds=["demo.echo"], worker="w1", now=at(1))
    assert (job.id, job.payload, job.attempts) == (job_id, {"say": "你好"}, 1)
    assert await claim(5, kinds=["demo.echo"], worker="w2", now=at(2)) == []  # leased
    assert await complete(job, now=at(3))
    row = await Job.get(id=job_id)
    assert (row.status, row.claimed_by, row.claimed_until) == (JobStatus.DONE, "w1", None)
    assert await claim(5, kinds=["demo.echo"], worker="w2", now=at(9999)) == []


async def test_a_dedupe_key_is_enqueued_once() -> None:
    first = await enqueue("scheduler.daily", {"day": "2026-03-02"}, dedupe_key="daily:2026-03-02")
    again = await enqueue("scheduler.daily", {"day": "x"}, dedupe_key="daily:2026-03-02")
    assert first is not None and again is None
    assert await Job.filter(kind="scheduler.daily").count() == 1


async def test_a_job_commits_and_rolls_back_with_its_transaction() -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with in_transaction() as conn:
            await enqueue("demo.echo", {"n": 1}, conn=conn)
            raise Boom
    async with in_transaction() as conn:
        await enqueue("demo.echo", {"n": 2}, conn=conn)
    assert await Job.all().values_list("payload", flat=True) == [{"n": 2}]


async def test_a_crashed_claimers_job_is_claimed_again_after_the_lease() -> None:
    job_id = await enqueue("demo.echo", run_at=at(0), max_attempts=2)
    (lost,) = await claim(1, kinds=["demo.echo"], worker="dies", lease_s=60, now=at(1))
    assert await claim(1, kinds=["demo.echo"], worker="w2", now=at(60)) == []  # still leased
    (again,) = await claim(1, kinds=["demo.echo"], worker="w2", lease_s=60, now=at(62))
    assert (again.id, again.attempts) == (job_id, 2)
    # The first claimer wakes up: fenced out, it changes nothing.
    assert not await complete(lost, now=at(63))
    assert await fail(lost, "late", now=at(63)) is None
    # The second claimer dies too: its last attempt is used up, so the job is dead.
    assert await claim(1, kinds=["demo.echo"], worker="w3", now=at(200)) == []
    row = await Job.get(id=job_id)
    assert (row.status, row.attempts) == (JobStatus.DEAD, 3)


async def test_failures_back_off_then_the_job_is_dead() -> None:
    job_id = await enqueue("demo.flaky", run_at=at(0), max_attempts=3)
    now = at(0)
    for attempt, expected in ((1, JobStatus.PENDING), (2, JobStatus.PENDING), (3, JobStatus.DEAD)):
        (job,) = await claim(1, kinds=["demo.flaky"], worker="w", now=now)
        assert job.attempts == attempt
        assert await fail(job, f"失败 {attempt}", now=now) is expected
        if expected is JobStatus.PENDING:
            assert await claim(1, kinds=["demo.flaky"], worker="w", now=now) == []
            now += retry_delay(attempt)
    row = await Job.get(id=job_id)
    assert (row.status, row.last_error) == (JobStatus.DEAD, "失败 3")
    assert [retry_delay(a).total_seconds() for a in (1, 2, 3, 20)] == [15, 30, 60, 3600]


async def test_oldest_due_first_and_at_most_n() -> None:
    ids = [await enqueue("demo.echo", {"i": i}, run_at=at(-i)) for i in range(5)]
    jobs = await claim(3, kinds=["demo.echo"], worker="w", now=at(1))
    assert [j.id for j in jobs] == [ids[4], ids[3], ids[2]]


async def test_purge_removes_old_done_and_dead_jobs_only() -> None:
    done_id = await enqueue("demo.echo", run_at=at(0))
    (job,) = await claim(1, kinds=["demo.echo"], worker="w", now=at(0))
    await complete(job, now=at(1))
    await enqueue("demo.echo", run_at=at(0), dedupe_key="waiting")
    assert await purge(done_before=at(0), dead_before=at(0)) == 0
    assert await purge(done_before=at(2), dead_before=at(2)) == 1
    assert not await Job.exists(id=done_id) and await Job.exists(dedupe_key="waiting")


async def test_runner_dispatches_kinds_and_records_outcomes() -> None:
    seen: list[tuple[str, object]] = []

    async def echo(job: Claimed) -> None:
        seen.append((job.kind, job.payload["n"]))

    async def broken(job: Claimed) -> None:
        raise RuntimeError("坏了")

    ok = await enqueue("demo.echo", {"n": 1}, run_at=at(0))
    bad = await enqueue("demo.broken", {"n": 2}, run_at=at(0), max_attempts=1)
    other = await enqueue("not.mine", run_at=at(0))
    runner = Runner({"demo.echo": echo, "demo.broken": broken}, clock=lambda: at(1))
    assert await runner.run_once() == 2
    assert seen == [("demo.echo", 1)]
    statuses = {j.id: j.status for j in await Job.all()}
    assert statuses == {ok: JobStatus.DONE, bad: JobStatus.DEAD, other: JobStatus.PENDING}
    assert "坏了" in (await Job.get(id=bad)).last_error


async def test_runner_loop_stops_and_a_slow_handler_fails_before_its_lease_ends() -> None:
    async def slow(job: Claimed) -> None:
        await asyncio.sleep(5)

    await enqueue("demo.slow", max_attempts=1)
    stop = asyncio.Event()
    runner = Runner({"demo.slow": slow}, leases={"demo.slow": 0.2})
    task = asyncio.create_task(runner.run(stop, idle_s=0.05))
    for _ in range(100):
        if await Job.filter(status=JobStatus.DEAD).exists():
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    (row,) = await Job.all()
    assert row.status is JobStatus.DEAD and "TimeoutError" in row.last_error


@pytest.mark.postgres
async def test_two_claimers_never_get_the_same_job() -> None:
    """Many claimers at once on PostgreSQL (SKIP LOCKED): every job is claimed exactly once."""
    ids = {await enqueue("demo.race", {"i": i}, run_at=at(0)) for i in range(200)}

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        while batch := await claim(7, kinds=["demo.race"], worker=name, now=at(1)):
            got += [j.id for j in batch]
        return got

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(6)))
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed)) == len(ids)
    assert set(claimed) == ids
    assert sum(1 for r in results if r) > 1  # they really ran side by side
