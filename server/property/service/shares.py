"""The monthly run's sharing steps, through server.sharing's services:

- `sharing_step`: each common-area pool of the site (公摊) — its month previewed, or posted
  with `run_sharing` (one ledger charge per member, `share:<pool>:<month>:<account>`);
- `losses_step`: the site's line and transformer losses (线变损) — the figures staff entered
  for the month (`enter_losses`) previewed, or posted with `run_losses`
  (`loss:<site>:<month>:<account>`); a month without figures is skipped and says so.

Each share becomes a run line (`property_run_share_line`: 公摊 or 线变损, the amount, charged,
preview, or "already" when the month was posted before — on the sharing pages or by an
earlier run). Posting a share twice is impossible: sharing keeps one row per pool or site
and month and the ledger one transaction per key. A month is posted only once it has ended
(its readings are in); before that the step previews.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from server.core.errors import ShuidianError
from server.ledger.sql import Col, insert_rows
from server.property.models import LineOutcome
from server.property.service.context import RunContext
from server.sharing.service import losses, sharing


@dataclass(frozen=True, slots=True)
class _Share:
    account_id: int
    label: str
    amount_fen: int
    outcome: LineOutcome


_COLS = [
    Col("run_id", "int"),
    Col("account_id", "int"),
    Col("step", "text"),
    Col("label", "text"),
    Col("amount_fen", "bigint"),
    Col("outcome", "text"),
]


def _ended(ctx: RunContext) -> bool:
    return ctx.now >= ctx.local_start(ctx.span.end)


async def _write(ctx: RunContext, step: str, shares: Sequence[_Share]) -> dict[str, Any]:
    rows = [(ctx.run_id, s.account_id, step, s.label[:100], s.amount_fen, s.outcome.value)
            for s in shares if s.amount_fen]  # fmt: skip
    await insert_rows(connections.get("default"), "property_run_share_line", _COLS, rows)
    total = {o: sum(s.amount_fen for s in shares if s.outcome is o) for o in LineOutcome}
    return {
        "lines": len(rows),
        "charged_fen": total[LineOutcome.CHARGED],
        "preview_fen": total[LineOutcome.PREVIEW],
        "already_fen": total[LineOutcome.ALREADY],
    }


async def sharing_step(ctx: RunContext) -> dict[str, Any]:
    """Each pool's month (see the module docstring)."""
    posting = not ctx.preview and _ended(ctx)
    done = await sharing.site_month(
        ctx.site_id, ctx.label, tz=ctx.tz, actor=ctx.actor, post=posting
    )
    shares: list[_Share] = []
    for computed, before in done:
        if before:
            outcome = LineOutcome.ALREADY
        else:
            outcome = LineOutcome.CHARGED if posting else LineOutcome.PREVIEW
        label = f"公摊：{computed.pool.name}（{computed.quantity} kWh）"
        shares += [_Share(x.account_id, label, x.amount_fen, outcome) for x in computed.lines]
    summary = await _write(ctx, "sharing", shares) | {"pools": len(done)}
    if done and not ctx.preview and not posting:
        summary["skipped"] = "月份未结束，公摊仅试算"
    return summary


async def losses_step(ctx: RunContext) -> dict[str, Any]:
    """The site's losses of the month (see the module docstring)."""
    site_ids = [ctx.site_id]
    posted = await losses.posted_period(ctx.site_id, ctx.label)
    if posted is not None:
        view, outcome = posted, LineOutcome.ALREADY
    else:
        entry = await losses.entered(ctx.site_id, ctx.label)
        if entry is None:
            return {"skipped": "未录入关口表读数与电网账单"}
        try:
            if ctx.preview or not _ended(ctx):
                view = await losses.preview_losses(site_ids, ctx.site_id, entry, ctx.tz)
                outcome = LineOutcome.PREVIEW
            else:
                view = await losses.run_losses(
                    site_ids, ctx.site_id, entry, tz=ctx.tz, actor=ctx.actor
                )
                outcome = LineOutcome.CHARGED
        except ShuidianError as refused:  # a loss not above zero, …: staff see why
            return {"skipped": refused.message}
    rate = f"{view.balance.loss_rate * 100:.2f}%"
    label = f"线变损分摊（损耗率 {rate}）"
    shares = [_Share(x.account_id, label, x.amount_fen, outcome) for x in view.lines]
    summary = await _write(ctx, "losses", shares) | {"loss_rate": rate}
    if not ctx.preview and outcome is LineOutcome.PREVIEW:
        summary["skipped"] = "月份未结束，线变损仅试算"
    return summary
