"""The two-part plan's basic charge (基本电费), levied once per account and month.

    levy_capacity(month, organisation_id=None) -> LevyReport

For each open account whose electricity plan is two-part (`TwoPartPlan`) in the month, the
basic charge is `basic_charge(plan, quantity)` — the one pricing path — where the quantity
is the account's transformer capacity in kVA (`AccountCapacity`, recorded by staff) for a
plan by capacity, or the month's maximum demand in kW (`DemandEntry`, entered by staff or
read from the meter) for a plan by demand. The plan is the version in force at the month's
last instant, so a price change during the month applies to that month's basic charge.

Money moves through the ledger alone: `ledger.charge(…, ChargeType.CAPACITY, key=
"levy:<account>:<YYYY-MM>")`, in arrears if need be (the capacity was available, as energy
already used is). The key makes the levy idempotent per account and month: a re-run, a
second scheduler or the property-billing run calling it again charges nothing twice, and a
`CapacityLevy` row (UNIQUE account + month) records what was levied and on what. Exact yuan
are rounded to the fen half up, once per account and month.

A month's maximum demand comes from staff (`enter_demand`) or from the meter: before the
levy, the scheduler reads the previous settlement period's maximum demand (DL/T 645
01010001) of the one demand-capable meter of each account on a plan by demand
(`demand_meters`) and stores it (`store_meter_demand`), never over what staff entered.

A month is levied once it has ended (a maximum demand is only known then). An account
without its kVA or the month's demand is skipped and reported, not charged zero: staff
record it and run the levy again; the accounts already charged are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.ledger import service as ledger
from server.ledger.posting import ChargeType
from server.metering.models import Meter, MeterStatus
from server.metering.vocabulary import DEMAND_PROTOCOLS, MeterKind
from server.tariffs.calendar import LOCAL_TZ, next_period_start
from server.tariffs.models import (
    AccountCapacity,
    CapacityLevy,
    DemandEntry,
    DemandSource,
    TariffAssignment,
    TariffKind,
)
from server.tariffs.plans import ChargeBasis, TierPeriod, TwoPartPlan
from server.tariffs.pricing import basic_charge
from server.tariffs.service import load_tariffs

ACTOR = "system:levy"
_BASIS_TEXT = {ChargeBasis.CAPACITY: "按容量", ChargeBasis.DEMAND: "按最大需量"}
_UNITS = {ChargeBasis.CAPACITY: "kVA", ChargeBasis.DEMAND: "kW"}


@dataclass(frozen=True, slots=True)
class Skipped:
    account_id: int
    number: str
    reason: str


@dataclass(slots=True)
class LevyReport:
    month: str
    charged: int = 0  # accounts charged by this run
    charged_fen: int = 0
    already: int = 0  # accounts charged for the month before (left alone)
    skipped: list[Skipped] = field(default_factory=list)


def parse_month(month: str | date) -> date:
    """The first day of `month` ("YYYY-MM" or a date)."""
    if isinstance(month, date):
        return month.replace(day=1)
    try:
        return date.fromisoformat(f"{month.strip()}-01")
    except ValueError:
        raise ValidationFailed("月份格式应为 YYYY-MM", month=month) from None


def month_bounds(first: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in business time (Asia/Shanghai)."""
    start = datetime(first.year, first.month, 1, tzinfo=LOCAL_TZ)
    return start, next_period_start(TierPeriod.MONTH, start)


def to_fen(amount_yuan: Decimal) -> int:
    """Exact yuan to fen, half up (the levy's one rounding)."""
    return int((amount_yuan * 100).to_integral_value(rounding=ROUND_HALF_UP))


async def levy_capacity(
    month: str | date,
    organisation_id: int | None = None,
    *,
    site_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    actor: str = ACTOR,
) -> LevyReport:
    """Charge the basic charge of two-part plans for `month` ("YYYY-MM") to every open account
    (of one organisation, or of `site_ids`, or all) not yet charged for it."""
    first = parse_month(month)
    _, end = month_bounds(first)
    now = now or datetime.now(UTC)
    if now < end:
        raise ValidationFailed("该月尚未结束，不能征收基本电费", month=first.isoformat()[:7])
    label = first.isoformat()[:7]
    report = LevyReport(label)
    query = TariffAssignment.filter(
        kind=TariffKind.ELECTRICITY, account__status=AccountStatus.OPEN,
        account__opened_at__lt=end,
    )  # fmt: skip
    if organisation_id is not None:
        query = query.filter(account__site__organisation_id=organisation_id)
    if site_ids is not None:
        query = query.filter(account__site_id__in=list(site_ids))
    assigned = await query.values_list("account_id", "plan_id", "account__number")
    tariffs = await load_tariffs({plan_id for _, plan_id, _ in assigned})
    at = end - timedelta(microseconds=1)
    due: list[tuple[int, int, str, TwoPartPlan]] = []
    for account_id, plan_id, number in assigned:
        tariff = tariffs.get(plan_id)
        if tariff is None or tariff.versions[0].effective_from > at:
            continue
        plan = tariff.plan_at(at)
        if isinstance(plan, TwoPartPlan):
            due.append((account_id, plan_id, number, plan))
    ids = [d[0] for d in due]
    done = set(
        await CapacityLevy.filter(account_id__in=ids, month=label).values_list(
            "account_id", flat=True
        )
    )
    kva = dict(await AccountCapacity.filter(account_id__in=ids).values_list("account_id", "kva"))
    demand = dict(
        await DemandEntry.filter(account_id__in=ids, month=label).values_list("account_id", "kw")
    )
    for account_id, plan_id, number, plan in due:
        if account_id in done:
            report.already += 1
            continue
        by_capacity = plan.basis is ChargeBasis.CAPACITY
        quantity = (kva if by_capacity else demand).get(account_id)
        if quantity is None:
            reason = "未登记变压器容量" if by_capacity else f"未录入{label}的最大需量"
            report.skipped.append(Skipped(account_id, number, reason))
            continue
        await _levy_one(account_id, plan_id, plan, Decimal(quantity), label, actor, report)
    if report.charged or report.skipped:
        await record(
            actor, "征收基本电费", target_type="levy", target_id=label,
            detail={"month": label, "organisation_id": organisation_id,
                    "charged": report.charged, "charged_fen": report.charged_fen,
                    "already": report.already, "skipped": len(report.skipped)},
        )  # fmt: skip
    return report


async def _levy_one(
    account_id: int,
    plan_id: int,
    plan: TwoPartPlan,
    quantity: Decimal,
    month: str,
    actor: str,
    report: LevyReport,
) -> None:
    price = basic_charge(plan, quantity)
    fen = to_fen(price.total)
    key = f"levy:{account_id}:{month}"
    unit = _UNITS[plan.basis]
    memo = f"{month} 基本电费（{_BASIS_TEXT[plan.basis]} {quantity} {unit} × ¥{plan.rate}）"
    try:
        async with in_transaction():
            transaction_id = None
            if fen > 0:
                posted = await ledger.charge(
                    account_id, ChargeType.CAPACITY, fen, key=key, actor=actor, memo=memo,
                    allow_arrears=True,
                )  # fmt: skip
                transaction_id = posted.transaction_id
            await CapacityLevy.create(
                account_id=account_id, month=month, plan_id=plan_id, basis=plan.basis.value,
                quantity=quantity, rate=plan.rate, amount=price.total, amount_fen=fen,
                ledger_key=key, transaction_id=transaction_id, levied_by=actor,
            )  # fmt: skip
    except IntegrityError:  # a concurrent run levied it first; its charge stands alone
        report.already += 1
        return
    report.charged += 1
    report.charged_fen += fen


# -- what staff record: transformer kVA per account, a month's maximum demand ----------------


def _quantity(value: Decimal | str, label: str, places: int) -> Decimal:
    try:
        quantity = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValidationFailed(f"{label}必须是数字", value=value) from None
    if not quantity.is_finite() or quantity < 0 or quantity >= Decimal(10) ** 8:
        raise ValidationFailed(f"{label}必须是不小于零的数字", value=value)
    if quantity.as_tuple().exponent < -places:  # type: ignore[operator]
        raise ValidationFailed(f"{label}最多保留{places}位小数", value=value)
    return quantity


async def _scoped_account(site_ids: Sequence[int], account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id, site_id__in=list(site_ids))
    if account is None:
        raise NotFound("账户不存在", account_id=account_id)
    return account


async def set_capacity(
    site_ids: Sequence[int], account_id: int, kva: Decimal | str, *, actor: str
) -> AccountCapacity:
    """Record an account's transformer capacity (kVA) for plans by capacity."""
    account = await _scoped_account(site_ids, account_id)
    quantity = _quantity(kva, "变压器容量", 2)
    row, _ = await AccountCapacity.update_or_create(
        defaults={"kva": quantity, "updated_by": actor}, account_id=account.id
    )
    await record(
        actor, "登记变压器容量", target_type="account", target_id=account.id,
        site_id=account.site_id, detail={"kva": str(quantity)},  # type: ignore[attr-defined]
    )  # fmt: skip
    return row


async def enter_demand(
    site_ids: Sequence[int],
    account_id: int,
    month: str | date,
    kw: Decimal | str,
    *,
    actor: str,
    source: DemandSource = DemandSource.STAFF,
) -> DemandEntry:
    """Record an account's maximum demand (kW) in a month, entered by staff or read from its
    meter; a month already levied keeps what it was charged on (409)."""
    account = await _scoped_account(site_ids, account_id)
    label = parse_month(month).isoformat()[:7]
    quantity = _quantity(kw, "最大需量", 3)
    if await CapacityLevy.filter(account_id=account.id, month=label).exists():
        raise Conflict("该月基本电费已征收，不能再修改最大需量", month=label)
    row, _ = await DemandEntry.update_or_create(
        defaults={"kw": quantity, "source": source, "entered_by": actor},
        account_id=account.id, month=label,
    )  # fmt: skip
    await record(
        actor, "录入最大需量", target_type="account", target_id=account.id,
        site_id=account.site_id,  # type: ignore[attr-defined]
        detail={"month": label, "kw": str(quantity), "source": source.value},
    )  # fmt: skip
    return row


@dataclass(frozen=True, slots=True)
class BasisRow:
    """An account on a two-part plan, with what its basic charge is levied on."""

    account_id: int
    number: str
    tenant_name: str
    kva: Decimal | None
    demand_kw: Decimal | None  # in the month shown
    levied_fen: int | None  # that month's levy, if any
    demand_source: DemandSource | None = None  # entered by staff or read from the meter
    demand_by: str = ""

    @property
    def demand_label(self) -> str:
        return {DemandSource.STAFF: "人工录入", DemandSource.METER: "电表读取"}.get(
            self.demand_source,  # type: ignore[arg-type]
            "",
        )


async def basis_rows(site_ids: Sequence[int], plan_id: int, month: str | date) -> list[BasisRow]:
    """The open accounts on a plan with their kVA, the month's demand and its levy."""
    label = parse_month(month).isoformat()[:7]
    rows = await TariffAssignment.filter(
        plan_id=plan_id, plan__site_id__in=list(site_ids), account__status=AccountStatus.OPEN
    ).order_by("account__number").values_list("account_id", "account__number",
                                               "account__tenant_name")  # fmt: skip
    ids = [r[0] for r in rows]
    kva = dict(await AccountCapacity.filter(account_id__in=ids).values_list("account_id", "kva"))
    demand = {
        a: (kw, DemandSource(source), by)
        for a, kw, source, by in await DemandEntry.filter(account_id__in=ids, month=label)
        .values_list("account_id", "kw", "source", "entered_by")
    }  # fmt: skip
    levied = dict(
        await CapacityLevy.filter(account_id__in=ids, month=label).values_list(
            "account_id", "amount_fen"
        )
    )
    none: tuple[None, None, str] = (None, None, "")
    return [
        BasisRow(i, number, name, kva.get(i), demand.get(i, none)[0], levied.get(i),
                 demand.get(i, none)[1], demand.get(i, none)[2])
        for i, number, name in rows
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LevyRow:
    account_id: int
    number: str
    tenant_name: str
    site: str
    plan: str
    basis: str  # 按容量 / 按最大需量
    quantity: Decimal
    unit: str
    rate: Decimal
    amount_fen: int
    levied_at: datetime
    levied_by: str

    @property
    def rate_text(self) -> str:
        """The rate without trailing zeros ("40", "42.5")."""
        return f"{self.rate.normalize():f}"


async def levies(site_ids: Sequence[int], month: str | date) -> list[LevyRow]:
    """What was levied for `month` on the accounts of `site_ids`."""
    label = parse_month(month).isoformat()[:7]
    rows = (
        await CapacityLevy.filter(account__site_id__in=list(site_ids), month=label)
        .order_by("account__site__name", "account__number")
        .values(
            "account_id", "account__number", "account__tenant_name", "account__site__name",
            "plan__name", "basis", "quantity", "rate", "amount_fen", "levied_at", "levied_by",
        )
    )  # fmt: skip
    return [
        LevyRow(
            r["account_id"], r["account__number"], r["account__tenant_name"],
            r["account__site__name"], r["plan__name"], _BASIS_TEXT[ChargeBasis(r["basis"])],
            r["quantity"], _UNITS[ChargeBasis(r["basis"])], r["rate"], r["amount_fen"],
            r["levied_at"], r["levied_by"],
        )
        for r in rows
    ]  # fmt: skip


async def plan_basis(plan_id: int, month: str | date) -> ChargeBasis | None:
    """What a plan's basic charge for `month` is levied on (kVA or kW), None when the plan
    in force at the month's end is not two-part."""
    _, end = month_bounds(parse_month(month))
    at = end - timedelta(microseconds=1)
    tariff = (await load_tariffs([plan_id])).get(plan_id)
    if tariff is None or tariff.versions[0].effective_from > at:
        return None
    plan = tariff.plan_at(at)
    return plan.basis if isinstance(plan, TwoPartPlan) else None


# -- the maximum demand read from meters -----------------------------------------------------


async def demand_meters(month: str | date) -> dict[int, list[Meter]]:
    """The open accounts on a plan by demand in `month` (as the levy finds them) without a
    demand entered by staff, each with its active meters whose protocol reports the maximum
    demand (gateway loaded), to read before the levy."""
    first = parse_month(month)
    label = first.isoformat()[:7]
    _, end = month_bounds(first)
    at = end - timedelta(microseconds=1)
    assigned = await TariffAssignment.filter(
        kind=TariffKind.ELECTRICITY, account__status=AccountStatus.OPEN,
        account__opened_at__lt=end,
    ).values_list("account_id", "plan_id")  # fmt: skip
    tariffs = await load_tariffs({plan_id for _, plan_id in assigned})
    wanted = []
    for account_id, plan_id in assigned:
        tariff = tariffs.get(plan_id)
        if tariff is None or tariff.versions[0].effective_from > at:
            continue
        plan = tariff.plan_at(at)
        if isinstance(plan, TwoPartPlan) and plan.basis is ChargeBasis.DEMAND:
            wanted.append(account_id)
    staff = set(
        await DemandEntry.filter(
            account_id__in=wanted, month=label, source=DemandSource.STAFF
        ).values_list("account_id", flat=True)
    )
    levied = set(
        await CapacityLevy.filter(account_id__in=wanted, month=label).values_list(
            "account_id", flat=True
        )
    )
    meters = await Meter.filter(
        account_id__in=[a for a in wanted if a not in staff | levied],
        kind=MeterKind.ELECTRICITY, status=MeterStatus.ACTIVE,
        protocol__in=list(DEMAND_PROTOCOLS),
    ).order_by("id").prefetch_related("gateway")  # fmt: skip
    out: dict[int, list[Meter]] = {}
    for meter in meters:
        out.setdefault(meter.account_id, []).append(meter)  # type: ignore[attr-defined]
    return out


async def store_meter_demand(
    account_id: int, month: str | date, kw: Decimal, *, actor: str = ACTOR
) -> bool:
    """Store the maximum demand read from an account's meter for `month`, unless staff
    entered one or the month is levied; whether it was stored."""
    label = parse_month(month).isoformat()[:7]
    quantity = _quantity(Decimal(kw).quantize(Decimal("0.001"), ROUND_HALF_UP), "最大需量", 3)
    async with in_transaction():
        if await CapacityLevy.filter(account_id=account_id, month=label).exists():
            return False
        if await DemandEntry.filter(
            account_id=account_id, month=label, source=DemandSource.STAFF
        ).exists():
            return False
        await DemandEntry.update_or_create(
            defaults={"kw": quantity, "source": DemandSource.METER, "entered_by": actor},
            account_id=account_id, month=label,
        )  # fmt: skip
    return True
