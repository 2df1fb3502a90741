"""What happens after a credit: the metering context re-evaluates alarms (closing a tripped
relay) and queues meter-side recharges.

Durability: the `CreditFollowUp` row is written in the same database transaction as the
ledger credit, so a process killed between the commit and the follow-up leaves a pending row;
`run_pending_followups` (the poller calls it) finishes it. `on_wallet_credited` is safe to
call twice for one credit (it is keyed on `credit_key`), so a follow-up that ran but was not
marked done is simply run again.

Batches: `run_followups` reads a batch's rows in one query, hands metering the batch's
accounts in one `on_wallets_credited` call (its work is per account: alarms on the balance,
the wallet's free money to the meter, so the latest credit of an account covers every credit
of that account in the batch), and marks the batch done in one statement, in the
transaction that also queues each recharge's 充值到账 message (server.notify.service.
recharges). A `handler` given instead (tests, tools) is called once per account, a few
accounts at a time. In the web
process a `FollowUpDrainer` collects the keys of committed credits and runs them every
~100 ms, instead of one task per credit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from server.metering.service import WalletCredit, on_wallet_credited, on_wallets_credited
from server.notify.service import recharges
from server.payments.models import CreditFollowUp

log = logging.getLogger(__name__)

FollowUpHandler = Callable[[int, str, str], Awaitable[None]]
CONCURRENCY = 8  # accounts handled at once: enough to hide round trips, few connections


async def metering_seam(account_id: int, reason: str, credit_key: str) -> None:
    """Metering's follow-up of one credit (top up a meter-billed meter, alarms)."""
    await on_wallet_credited(account_id, reason=reason, credit_key=credit_key)


async def run_followup(credit_key: str, handler: FollowUpHandler | None = None) -> bool:
    """Run one pending follow-up; True when it is done (now or before)."""
    return await run_followups([credit_key], handler) == 1


async def run_followups(keys: Iterable[str], handler: FollowUpHandler | None = None) -> int:
    """Run the follow-ups of credits that just committed; returns how many are done (now or
    before). Unknown keys count as not done."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return 0
    items = await CreditFollowUp.filter(credit_key__in=wanted)
    already = sum(1 for item in items if item.done_at is not None)
    return already + await _run_batch([i for i in items if i.done_at is None], handler)


async def run_pending_followups(
    *,
    older_than_s: float = 30.0,
    limit: int = 500,
    now: datetime | None = None,
    handler: FollowUpHandler | None = None,
) -> int:
    """Finish follow-ups left pending (process killed, metering down). Only rows older than
    `older_than_s`, so the web process's own drainer is not raced on every round."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
    pending = (
        await CreditFollowUp.filter(done_at=None, created_at__lte=cutoff)
        .order_by("id")
        .limit(limit)
    )
    return await _run_batch(pending, handler)


async def _run_batch(items: Sequence[CreditFollowUp], handler: FollowUpHandler | None) -> int:
    """The follow-ups once per account (its latest credit names the call), then one UPDATE
    for everything done. A failing account stays pending with its error; the rest go on.
    Without a `handler`, the whole batch is one call of metering's `on_wallets_credited`."""
    by_account: dict[int, list[CreditFollowUp]] = {}
    for item in sorted(items, key=lambda i: i.id):
        by_account.setdefault(item.account_id, []).append(item)  # type: ignore[attr-defined]
    if not by_account:
        return 0
    if handler is None:
        failed = await _metering_batch(by_account)
    else:
        failed = await _per_account(by_account, handler)
    for account_id, exc in failed.items():  # kept pending: the poller retries them
        group = by_account[account_id]
        log.warning("credit follow-up %s failed: %r", group[-1].credit_key, exc)
        await CreditFollowUp.filter(id__in=[i.id for i in group]).update(
            attempts=F("attempts") + 1, last_error=repr(exc)[:300]
        )
    finished = [i for a, group in by_account.items() if a not in failed for i in group]
    if finished:
        now = datetime.now(UTC)
        async with in_transaction() as conn:  # 充值到账 commits with the follow-up's end
            await (
                CreditFollowUp.filter(id__in=[i.id for i in finished], done_at=None)
                .using_db(conn)
                .update(done_at=now, attempts=F("attempts") + 1)
            )
            credits = [(i.account_id, i.credit_key, i.reason) for i in finished]  # type: ignore[attr-defined]
            await recharges.credited(conn, credits, now=now)
    return len(finished)


async def _metering_batch(by_account: dict[int, list[CreditFollowUp]]) -> dict[int, Exception]:
    """One `on_wallets_credited` call for the batch; an error there fails every account."""
    credits = [WalletCredit(a, g[-1].reason, g[-1].credit_key) for a, g in by_account.items()]
    try:
        return await on_wallets_credited(credits)
    except Exception as exc:
        return dict.fromkeys(by_account, exc)


async def _per_account(
    by_account: dict[int, list[CreditFollowUp]], handler: FollowUpHandler
) -> dict[int, Exception]:
    """`handler` once per account, a few accounts at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)
    failed: dict[int, Exception] = {}

    async def one(account_id: int, last: CreditFollowUp) -> None:
        async with gate:
            try:
                await handler(account_id, last.reason, last.credit_key)
            except Exception as exc:
                failed[account_id] = exc

    await asyncio.gather(*(one(a, g[-1]) for a, g in by_account.items()))
    return failed


class FollowUpDrainer:
    """The web process's follow-up runner: `submit` the keys of committed credits (cheap,
    no I/O); every `interval_s` everything submitted runs as one batch (`run_followups`).

    Memory only speeds things up: every key is also a pending row, so keys lost with the
    process (or in a failed batch) are finished by the poller's `run_pending_followups`.
    """

    def __init__(
        self,
        handler: FollowUpHandler | None = None,
        *,
        interval_s: float = 0.1,
        batch: int = 500,
    ) -> None:
        self.handler = handler
        self.interval_s = interval_s
        self.batch = batch
        self.done = 0
        self._keys: list[str] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def submit(self, keys: Iterable[str]) -> None:
        if self._closing:
            return  # shutting down: the pending rows wait for the poller
        self._keys.extend(keys)
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="payments-followups")
        return self._task

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Run what was submitted, then end; after `timeout_s` the rest is left pending (the
        poller finishes it), so a long backlog does not hold up a shutdown."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            try:
                await asyncio.wait_for(task, timeout_s)
            except TimeoutError:
                log.warning("credit follow-ups left pending at shutdown: %d", len(self._keys))

    @property
    def backlog(self) -> int:
        return len(self._keys)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closing:
                await asyncio.sleep(self.interval_s)  # let a batch gather
            self._wake.clear()
            while self._keys:
                keys, self._keys = self._keys[: self.batch], self._keys[self.batch :]
                await self._drain(keys)
            if self._closing:
                return

    async def _drain(self, keys: list[str]) -> None:
        try:
            self.done += await run_followups(keys, self.handler)
        except Exception:  # the rows stay pending; the poller finishes them
            log.exception("credit follow-up batch of %d failed", len(keys))
