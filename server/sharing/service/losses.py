"""A site's period of line and transformer losses (线变损): staff enter the grid meter's
readings and the grid bill; the tenants' and common meters' use comes from daily usage; the
loss (`server.sharing.losses.balance`) is shared over the open accounts that used electricity
in the period, by usage (default), area or equally, and charged through the ledger
(LOSS_SHARE, key `loss:<site>:<period>:<account>`, in arrears if need be) — once: a
`LossPeriod` row per site and period keeps what was posted, and posting it again returns it.
Closed accounts' use counts in the balance but they bear no share (they cannot be charged).

Staff may also enter a period's figures ahead (`enter_losses`, 录入): the property monthly
run's losses step (server.property.service.shares) previews and posts them (`entered`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
from server.core.money import parse_yuan
from server.ledger.posting import ChargeType
from server.places.models import Site
from server.sharing.allocation import METHOD_LABELS, Member, Method, allocate
from server.sharing.losses import Balance, GridEntry, balance
from server.sharing.models import LossEntryRecord, LossPeriod, SharingPool
from server.sharing.periods import Period, period_of
from server.sharing.service.sharing import charge_all
from server.sharing.service.usage import meter_use, site_account_use

ZERO = Decimal(0)
LOSS_METHODS = (Method.USAGE, Method.AREA, Method.EQUAL)


@dataclass(frozen=True, slots=True)
class LossEntry:
    """What staff entered: the grid figures, the rule and the cap."""

    period: str
    grid: GridEntry
    method: Method
    cap: Decimal


@dataclass(frozen=True, slots=True)
class LossLine:
    account_id: int
    number: str
    tenant_name: str
    kwh: Decimal
    loss_kwh: Decimal
    amount_fen: int


@dataclass(frozen=True, slots=True)
class LossView:
    site_id: int
    site: str
    entry: LossEntry
    balance: Balance
    lines: tuple[LossLine, ...]
    posted: bool
    id: int | None = None

    @property
    def method_label(self) -> str:
        return METHOD_LABELS[self.entry.method]


def _decimal(raw: str, label: str) -> Decimal:
    try:
        value = Decimal((raw or "").strip())
    except InvalidOperation:
        raise ValidationFailed(f"{label}应为数字") from None
    if not value.is_finite() or value < 0 or value > Decimal("999999999999"):
        raise ValidationFailed(f"{label}应为不小于 0 的数字")
    return value


def entry_of(form: Mapping[str, str]) -> LossEntry:
    """The entry from a form (readings and own use in kWh, the bill in yuan, the cap in %)."""
    method = form.get("method") or Method.USAGE.value
    if method not in {m.value for m in LOSS_METHODS}:
        raise ValidationFailed("损耗分摊方式应为按用量、按面积或平均分摊")
    multiplier = (form.get("multiplier") or "1").strip()
    if not multiplier.isdigit() or not 1 <= int(multiplier) <= 100_000:
        raise ValidationFailed("倍率应为 1–100000 的整数")
    try:
        bill_fen = parse_yuan(form.get("bill") or "")
    except (ValueError, InvalidOperation):
        raise ValidationFailed("电网账单金额应为元，最多两位小数") from None
    if not 0 <= bill_fen <= 10**13:
        raise ValidationFailed("电网账单金额超出范围")
    cap = _decimal(form.get("cap_pct") or "10", "损耗上限") / 100
    grid = GridEntry(
        _decimal(form.get("start_reading", ""), "关口表期初读数"),
        _decimal(form.get("end_reading", ""), "关口表期末读数"),
        int(multiplier),
        bill_fen,
        _decimal(form.get("own_use") or "0", "自用电量"),
    )
    return LossEntry((form.get("period") or "").strip(), grid, Method(method), cap)


async def _site(site_ids: Sequence[int], site_id: int) -> Site:
    site = await Site.get_or_none(id=site_id) if site_id in site_ids else None
    if site is None:
        raise NotFound("园区不存在", site_id=site_id)
    return site


async def _compute(site: Site, entry: LossEntry, period: Period) -> LossView:
    use = await site_account_use(site.id, period)
    masters = await SharingPool.filter(site_id=site.id).values_list("master_meter_id", flat=True)
    common = await meter_use(set(masters), period)  # type: ignore[arg-type]
    b = balance(
        entry.grid,
        sum((u.kwh for u in use.values()), ZERO),
        sum((u.quantity for u in common.values()), ZERO),
    )
    # The site's open accounts that used electricity (by site, not by an IN list of ids: a
    # park of 100,000 accounts is over a statement's parameters).
    accounts = [
        a
        for a in await Account.filter(site_id=site.id, status=AccountStatus.OPEN)
        .order_by("id")
        .values("id", "number", "tenant_name", "room__area_m2")
        if a["id"] in use
    ]
    if not accounts:
        return LossView(site.id, site.name, entry, b, (), False)
    members = [
        Member(a["id"], area_m2=Decimal(a["room__area_m2"] or 0), usage=use[a["id"]].kwh)
        for a in accounts
    ]
    shares = allocate(entry.method, members, b.loss_fen, b.loss_kwh)
    lines = tuple(
        LossLine(a["id"], a["number"], a["tenant_name"], use[a["id"]].kwh, s.quantity, s.amount_fen)
        for a, s in zip(accounts, shares, strict=True)
    )
    return LossView(site.id, site.name, entry, b, lines, False)


async def preview_losses(
    site_ids: Sequence[int], site_id: int, entry: LossEntry, tz: ZoneInfo
) -> LossView:
    """The period as it would post with `entry` (or as posted, if it was)."""
    site = await _site(site_ids, site_id)
    period = period_of(entry.period, tz)
    stored = await LossPeriod.get_or_none(site_id=site.id, period=period.code)
    if stored is not None:
        return _stored(site, stored)
    return await _compute(site, LossEntry(period.code, entry.grid, entry.method, entry.cap), period)


def loss_key(site_id: int, period: str, account_id: int) -> str:
    return f"loss:{site_id}:{period}:{account_id}"


async def run_losses(
    site_ids: Sequence[int], site_id: int, entry: LossEntry, *, tz: ZoneInfo, actor: str
) -> LossView:
    """Post the period's loss shares once (see the module docstring)."""
    site = await _site(site_ids, site_id)
    period = period_of(entry.period, tz)
    entry = LossEntry(period.code, entry.grid, entry.method, entry.cap)
    async with in_transaction():
        await Site.select_for_update().filter(id=site.id).first()  # one run per site at a time
        stored = await LossPeriod.get_or_none(site_id=site.id, period=period.code)
        if stored is not None:
            return _stored(site, stored)
        view = await _compute(site, entry, period)
        await charge_all(
            [(x.account_id, x.amount_fen, loss_key(site.id, period.code, x.account_id))
             for x in view.lines],
            ChargeType.LOSS_SHARE, memo=f"{period.code} 线变损分摊", actor=actor,
        )  # fmt: skip
        row = await LossPeriod.create(
            site_id=site.id, period=period.code, start_reading=str(entry.grid.start_reading),
            end_reading=str(entry.grid.end_reading), multiplier=entry.grid.multiplier,
            bill_fen=entry.grid.bill_fen, own_use_kwh=str(entry.grid.own_use_kwh),
            method=entry.method, cap=str(entry.cap), figures=_figures(view.balance),
            lines=[_line_json(x) for x in view.lines], created_by=actor,
        )  # fmt: skip
        await record(
            actor, "losses.run", target_type="loss_period", target_id=row.id, site_id=site.id,
            detail={"period": period.code, "loss_fen": view.balance.loss_fen,
                    "loss_rate": str(view.balance.loss_rate), "accounts": len(view.lines)},
        )  # fmt: skip
    return LossView(site.id, site.name, entry, view.balance, view.lines, True, row.id)


_FIGURES = ("grid_kwh", "tenant_kwh", "common_kwh", "own_use_kwh", "loss_kwh")
_FEN = ("bill_fen", "tenant_fen", "common_fen", "own_use_fen", "loss_fen")


def _figures(b: Balance) -> dict[str, str | int]:
    return {name: str(getattr(b, name)) for name in _FIGURES} | {n: getattr(b, n) for n in _FEN}


def _line_json(x: LossLine) -> dict[str, str | int]:
    return {
        "account_id": x.account_id, "number": x.number, "tenant_name": x.tenant_name,
        "kwh": str(x.kwh), "loss_kwh": str(x.loss_kwh), "amount_fen": x.amount_fen,
    }  # fmt: skip


def _stored(site: Site, row: LossPeriod) -> LossView:
    f = row.figures
    b = Balance(*(Decimal(f[n]) for n in _FIGURES), *(int(f[n]) for n in _FEN))
    grid = GridEntry(
        Decimal(row.start_reading), Decimal(row.end_reading), row.multiplier, row.bill_fen,
        Decimal(row.own_use_kwh),
    )  # fmt: skip
    lines = tuple(
        LossLine(
            int(x["account_id"]),
            x["number"],
            x["tenant_name"],
            Decimal(x["kwh"]),
            Decimal(x["loss_kwh"]),
            int(x["amount_fen"]),
        )
        for x in row.lines
    )
    entry = LossEntry(row.period, grid, Method(row.method), Decimal(row.cap))
    return LossView(site.id, site.name, entry, b, lines, True, row.id)


async def loss_periods(site_ids: Sequence[int], *, site_id: int | None = None) -> list[LossView]:
    """The posted periods of the scope, newest first."""
    query = LossPeriod.filter(site_id__in=list(site_ids))
    if site_id is not None:
        query = query.filter(site_id=site_id)
    rows = await query.order_by("-period", "site_id").prefetch_related("site")
    return [_stored(r.site, r) for r in rows]  # type: ignore[attr-defined]


async def loss_period(site_ids: Sequence[int], loss_id: int) -> LossView:
    row = (
        await LossPeriod.filter(id=loss_id, site_id__in=list(site_ids))
        .prefetch_related("site")
        .first()
    )
    if row is None:
        raise NotFound("线损账期不存在", loss_id=loss_id)
    return _stored(row.site, row)  # type: ignore[attr-defined]


async def posted_period(site_id: int, period: str) -> LossView | None:
    """The site's posted period, if any (for the compliance statement)."""
    row = await LossPeriod.filter(site_id=site_id, period=period).prefetch_related("site").first()
    return _stored(row.site, row) if row else None  # type: ignore[attr-defined]


async def enter_losses(
    site_ids: Sequence[int], site_id: int, entry: LossEntry, *, tz: ZoneInfo, actor: str
) -> LossEntry:
    """Keep the period's figures for the monthly run (replacing an earlier entry; a period
    posted already is refused)."""
    site = await _site(site_ids, site_id)
    period = period_of(entry.period, tz)
    if await LossPeriod.exists(site_id=site.id, period=period.code):
        raise ValidationFailed(f"{period.code} 的线变损已入账，不能再录入")
    g = entry.grid
    values = {
        "start_reading": str(g.start_reading), "end_reading": str(g.end_reading),
        "multiplier": g.multiplier, "bill_fen": g.bill_fen, "own_use_kwh": str(g.own_use_kwh),
        "method": entry.method, "cap": str(entry.cap), "entered_by": actor,
    }  # fmt: skip
    async with in_transaction():
        await LossEntryRecord.update_or_create(values, site_id=site.id, period=period.code)
        await record(
            actor, "losses.enter", target_type="site", target_id=site.id, site_id=site.id,
            reason=f"{period.code} 线变损录入（随月度计费入账）",
            detail={"period": period.code, "bill_fen": g.bill_fen},
        )  # fmt: skip
    return LossEntry(period.code, g, entry.method, entry.cap)


async def entered(site_id: int, period: str) -> LossEntry | None:
    """The figures entered for the site's period, if any."""
    row = await LossEntryRecord.get_or_none(site_id=site_id, period=period)
    if row is None:
        return None
    grid = GridEntry(
        Decimal(row.start_reading), Decimal(row.end_reading), row.multiplier, row.bill_fen,
        Decimal(row.own_use_kwh),
    )  # fmt: skip
    return LossEntry(row.period, grid, Method(row.method), Decimal(row.cap))
