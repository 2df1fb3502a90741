"""The period's common-area sharing (公摊): price each pool's master meter use at its tariff,
split the money over its open members, and charge each wallet through the ledger.

`preview(…)` computes without writing; `run_sharing(period, …)` posts, idempotently: one
ledger charge per member under `share:<pool>:<period>:<account>` (COMMON_SHARE, in arrears
if need be: the common area's energy was used already) and one `SharingRun` row per pool and
period. Running a period again finds the row and posts nothing; the figures shown are the
ones posted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from server.audit.service import record
from server.billing.usage import settle
from server.ledger import posting
from server.ledger.batch import post_batch
from server.ledger.posting import ChargeType, Posting, TxKind
from server.sharing.allocation import Member, Share, allocate
from server.sharing.models import SharingPool, SharingRun
from server.sharing.periods import Period, period_of
from server.sharing.service.pools import MemberView, PoolView, pool_row, pools
from server.sharing.service.usage import account_use, meter_use
from server.tariffs.pricing import UsageSlice, price_usage
from server.tariffs.service import load_tariff

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ShareLine:
    account_id: int
    number: str
    tenant_name: str
    weight: Decimal
    quantity: Decimal
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Computed:
    """One pool's period, computed (preview) or as posted (`posted`)."""

    pool: PoolView
    period: str
    quantity: Decimal
    exact_yuan: Decimal
    amount_fen: int
    lines: tuple[ShareLine, ...]
    posted: bool = False

    @property
    def shared_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def _line(share: Share, member: MemberView) -> ShareLine:
    return ShareLine(
        share.account_id, member.number, member.tenant_name, share.weight, share.quantity,
        share.amount_fen,
    )  # fmt: skip


async def _compute(view: PoolView, period: Period) -> Computed:
    use = (await meter_use([view.meter_id], period)).get(view.meter_id)
    quantity = use.quantity if use else ZERO
    bands = dict(use.bands) if use else {}
    tariff = await load_tariff(view.plan_id)
    priced = price_usage(
        tariff,
        UsageSlice(period.start.astimezone(UTC), period.end.astimezone(UTC), quantity, bands),
    )
    amount_fen, _ = settle(priced.total, ZERO)  # sub-fen of the whole: the operator's
    members = [m for m in view.members if m.open]
    if not members:
        return Computed(view, period.code, quantity, priced.total, amount_fen, ())
    usage = await account_use([m.account_id for m in members], period)
    shares = allocate(
        view.method,
        [
            Member(
                m.account_id,
                m.ratio,
                m.area_m2,
                usage[m.account_id].kwh if m.account_id in usage else ZERO,
            )
            for m in members
        ],
        amount_fen,
        quantity,
    )
    lines = tuple(_line(s, m) for s, m in zip(shares, members, strict=True))
    return Computed(view, period.code, quantity, priced.total, amount_fen, lines)


def _stored(view: PoolView, run: SharingRun) -> Computed:
    lines = tuple(
        ShareLine(
            int(x["account_id"]),
            x["number"],
            x["tenant_name"],
            Decimal(x["weight"]),
            Decimal(x["quantity"]),
            int(x["amount_fen"]),
        )
        for x in run.lines
    )
    return Computed(
        view, run.period, Decimal(run.quantity), Decimal(run.exact_yuan), run.amount_fen, lines,
        posted=True,
    )  # fmt: skip


async def preview(site_ids: Sequence[int], pool_id: int, period: str, tz: ZoneInfo) -> Computed:
    """The pool's period as it would post now, or as it was posted."""
    row = await pool_row(site_ids, pool_id)
    (view,) = [p for p in await pools(site_ids, site_id=row.site_id) if p.id == pool_id]  # type: ignore[attr-defined]
    p = period_of(period, tz)
    run = await SharingRun.get_or_none(pool_id=pool_id, period=p.code)
    return _stored(view, run) if run else await _compute(view, p)


CHUNK = 2000


async def charge_all(
    lines: Sequence[tuple[int, int, str]], charge_type: ChargeType, *, memo: str, actor: str
) -> None:
    """Each (account, fen, key) with fen > 0 charged to its wallet, in arrears if need be
    (the energy was used already), as ledger batches in the caller's transaction: a pool or
    a site of thousands of accounts is a few statements a chunk, not a round trip each."""
    postings = [
        Posting(key, TxKind.CHARGE, posting.charge_legs(account_id, charge_type, fen), memo,
                actor, allow_arrears=True, require_open=True)
        for account_id, fen, key in lines
        if fen > 0
    ]  # fmt: skip
    for i in range(0, len(postings), CHUNK):
        await post_batch(postings[i : i + CHUNK])


def share_key(pool_id: int, period: str, account_id: int) -> str:
    return f"share:{pool_id}:{period}:{account_id}"


async def run_sharing(
    period: str,
    *,
    site_ids: Sequence[int],
    tz: ZoneInfo,
    actor: str,
    pool_ids: Sequence[int] | None = None,
) -> list[Computed]:
    """Post the period's sharing of every pool of `site_ids` (or only `pool_ids`), once."""
    p = period_of(period, tz)
    done = []
    for view in await pools(site_ids):
        if pool_ids is not None and view.id not in pool_ids:
            continue
        done.append(await _post_pool(view, p, actor))
    return done


async def site_month(
    site_id: int, period: str, *, tz: ZoneInfo, actor: str, post: bool
) -> list[tuple[Computed, bool]]:
    """Every pool of the site with members, its month computed or (`post`) posted once, each
    with whether it had been posted before (the monthly run's sharing step). The pools are
    read once, whatever their number."""
    p = period_of(period, tz)
    found = [v for v in await pools([site_id], site_id=site_id) if v.members]
    posted = dict(
        await SharingRun.filter(pool_id__in=[v.id for v in found], period=p.code).values_list(
            "pool_id", "id"
        )
    )
    done: list[tuple[Computed, bool]] = []
    for view in found:
        if view.id in posted:
            run = await SharingRun.get(id=posted[view.id])
            done.append((_stored(view, run), True))
        elif post:
            done.append((await _post_pool(view, p, actor), False))
        else:
            done.append((await _compute(view, p), False))
    return done


async def _post_pool(view: PoolView, period: Period, actor: str) -> Computed:
    async with in_transaction():
        await SharingPool.select_for_update().filter(id=view.id).first()  # one run at a time
        run = await SharingRun.get_or_none(pool_id=view.id, period=period.code)
        if run is not None:
            return _stored(view, run)
        computed = await _compute(view, period)
        await charge_all(
            [(x.account_id, x.amount_fen, share_key(view.id, period.code, x.account_id))
             for x in computed.lines],
            ChargeType.COMMON_SHARE, memo=f"{period.code} 公摊：{view.name}", actor=actor,
        )  # fmt: skip
        await SharingRun.create(
            pool_id=view.id, period=period.code, method=view.method,
            quantity=str(computed.quantity), exact_yuan=str(computed.exact_yuan),
            amount_fen=computed.amount_fen, created_by=actor,
            lines=[
                {
                    "account_id": x.account_id, "number": x.number, "tenant_name": x.tenant_name,
                    "weight": str(x.weight), "quantity": str(x.quantity),
                    "amount_fen": x.amount_fen,
                }
                for x in computed.lines
            ],
        )  # fmt: skip
        await record(
            actor, "sharing.run", target_type="sharing_pool", target_id=view.id,
            site_id=view.site_id,
            detail={"period": period.code, "amount_fen": computed.amount_fen,
                    "accounts": len(computed.lines)},
        )  # fmt: skip
    return Computed(
        view, computed.period, computed.quantity, computed.exact_yuan, computed.amount_fen,
        computed.lines, posted=True,
    )  # fmt: skip


async def runs(site_ids: Sequence[int], pool_id: int) -> list[SharingRun]:
    """The pool's posted periods, newest first."""
    row = await pool_row(site_ids, pool_id)
    return await SharingRun.filter(pool=row).order_by("-period")
