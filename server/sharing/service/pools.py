"""Common accounts (公摊账户): a site's master meter, its tariff and the accounts that share
its use. Every function takes the caller's site ids: a pool of another site is not found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.accounts.models import Account, AccountStatus
from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.metering.models import Meter, MeterStatus
from server.sharing.allocation import METHOD_LABELS, Method
from server.sharing.models import SharingMember, SharingPool
from server.tariffs.models import TariffPlan


@dataclass(frozen=True, slots=True)
class MemberView:
    account_id: int
    number: str
    tenant_name: str
    room: str
    area_m2: Decimal
    ratio: Decimal
    open: bool


@dataclass(frozen=True, slots=True)
class PoolView:
    id: int
    site_id: int
    site: str
    name: str
    meter_id: int
    meter_address: str
    plan_id: int
    plan: str
    method: Method
    members: tuple[MemberView, ...]

    @property
    def method_label(self) -> str:
        return METHOD_LABELS[self.method]


def _method(raw: str) -> Method:
    if raw not in Method._value2member_map_:
        raise ValidationFailed("请选择分摊方式")
    return Method(raw)


def _ratio(raw: str) -> Decimal:
    try:
        value = Decimal((raw or "1").strip())
    except InvalidOperation:
        raise ValidationFailed("分摊比例应为数字") from None
    if not value.is_finite() or value < 0 or value > Decimal("99999999"):
        raise ValidationFailed("分摊比例应为不小于 0 的数字")
    return value.quantize(Decimal("0.0001"))


async def pool_row(site_ids: Sequence[int], pool_id: int) -> SharingPool:
    pool = await SharingPool.get_or_none(id=pool_id, site_id__in=list(site_ids))
    if pool is None:
        raise NotFound("公摊账户不存在", pool_id=pool_id)
    return pool


async def create_pool(
    site_ids: Sequence[int], site_id: int, *, name: str, meter_address: str, plan_id: int,
    method: str, actor: str,
) -> SharingPool:  # fmt: skip
    """A common account on the site's master meter (found by its address), priced by a plan
    of the site. The master meter must not be on a tenant's account: its use is measured,
    never charged to anyone directly."""
    if site_id not in site_ids:
        raise NotFound("园区不存在", site_id=site_id)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("请填写公摊账户名称（不超过 100 字）")
    meter = await Meter.get_or_none(
        site_id=site_id, address=(meter_address or "").strip(), status=MeterStatus.ACTIVE
    )
    if meter is None:
        raise ValidationFailed("本园区没有这个地址的在用电表", address=meter_address)
    if meter.account_id is not None:  # type: ignore[attr-defined]
        raise Conflict("该电表属于租户账户，不能作为公摊总表（总表只计量、不扣费）")
    plan = await TariffPlan.get_or_none(id=plan_id, site_id=site_id)
    if plan is None or plan.kind.value != meter.kind.value:
        raise ValidationFailed("请选择本园区与总表同类的价格方案")
    try:
        async with in_transaction():
            pool = await SharingPool.create(
                site_id=site_id, name=name, master_meter=meter, plan=plan,
                method=_method(method), created_by=actor,
            )  # fmt: skip
            await record(
                actor, "sharing.pool_created", target_type="sharing_pool", target_id=pool.id,
                site_id=site_id, detail={"name": name, "meter": meter.address},
            )  # fmt: skip
    except IntegrityError:
        raise Conflict("本园区已有同名的公摊账户") from None
    return pool


async def set_method(site_ids: Sequence[int], pool_id: int, method: str, *, actor: str) -> None:
    pool = await pool_row(site_ids, pool_id)
    chosen = _method(method)
    async with in_transaction():
        pool.method = chosen
        await pool.save(update_fields=["method"])
        await record(
            actor, "sharing.method_set", target_type="sharing_pool", target_id=pool.id,
            site_id=pool.site_id, detail={"method": chosen.value},  # type: ignore[attr-defined]
        )  # fmt: skip


async def add_member(
    site_ids: Sequence[int], pool_id: int, number: str, ratio: str, *, actor: str
) -> SharingMember:
    """Add the open account numbered `number` of the pool's site (or change its ratio)."""
    pool = await pool_row(site_ids, pool_id)
    site_id = pool.site_id  # type: ignore[attr-defined]
    account = await Account.get_or_none(site_id=site_id, number=(number or "").strip())
    if account is None or account.status != AccountStatus.OPEN:
        raise ValidationFailed("本园区没有这个户号的在用账户", number=number)
    weight = _ratio(ratio)
    async with in_transaction():
        member, _ = await SharingMember.update_or_create(
            defaults={"ratio": weight}, pool=pool, account=account
        )
        await record(
            actor, "sharing.member_set", target_type="sharing_pool", target_id=pool.id,
            site_id=site_id, detail={"account": account.number, "ratio": str(weight)},
        )  # fmt: skip
    return member


async def remove_member(
    site_ids: Sequence[int], pool_id: int, account_id: int, *, actor: str
) -> None:
    pool = await pool_row(site_ids, pool_id)
    async with in_transaction():
        removed = await SharingMember.filter(pool=pool, account_id=account_id).delete()
        if removed:
            await record(
                actor, "sharing.member_removed", target_type="sharing_pool", target_id=pool.id,
                site_id=pool.site_id, detail={"account_id": account_id},  # type: ignore[attr-defined]
            )  # fmt: skip


async def member_views(pool_ids: Sequence[int]) -> dict[int, list[MemberView]]:
    """The members of each pool, by account id (the split's order: the tie rule)."""
    rows = (
        await SharingMember.filter(pool_id__in=list(pool_ids))
        .order_by("pool_id", "account_id")
        .values(
            "pool_id",
            "account_id",
            "ratio",
            "account__number",
            "account__tenant_name",
            "account__status",
            "account__room__name",
            "account__room__area_m2",
        )
    )
    found: dict[int, list[MemberView]] = {pid: [] for pid in pool_ids}
    for r in rows:
        found[r["pool_id"]].append(
            MemberView(
                r["account_id"],
                r["account__number"],
                r["account__tenant_name"],
                r["account__room__name"] or "",
                Decimal(r["account__room__area_m2"] or 0),
                Decimal(r["ratio"]),
                r["account__status"] == AccountStatus.OPEN.value,
            )
        )
    return found


async def pools(site_ids: Sequence[int], *, site_id: int | None = None) -> list[PoolView]:
    """The common accounts of the scope (or of one of its sites), with their members."""
    query = SharingPool.filter(site_id__in=list(site_ids), retired_at__isnull=True)
    if site_id is not None:
        query = query.filter(site_id=site_id)
    rows = await query.order_by("site_id", "name").values(
        "id", "site_id", "site__name", "name", "master_meter_id", "master_meter__address",
        "plan_id", "plan__name", "method",
    )  # fmt: skip
    members = await member_views([r["id"] for r in rows])
    return [
        PoolView(
            r["id"],
            r["site_id"],
            r["site__name"],
            r["name"],
            r["master_meter_id"],
            r["master_meter__address"],
            r["plan_id"],
            r["plan__name"],
            Method(r["method"]),
            tuple(members[r["id"]]),
        )
        for r in rows
    ]


async def pool(site_ids: Sequence[int], pool_id: int) -> PoolView:
    row = await pool_row(site_ids, pool_id)
    (found,) = [p for p in await pools(site_ids, site_id=row.site_id) if p.id == pool_id]  # type: ignore[attr-defined]
    return found


@dataclass(frozen=True, slots=True)
class PlanChoice:
    id: int
    site_id: int
    name: str


async def plan_choices(site_ids: Sequence[int]) -> list[PlanChoice]:
    """The electricity and water plans of the scope's sites, for a common account's tariff."""
    rows = await TariffPlan.filter(site_id__in=list(site_ids)).order_by("site_id", "name")
    return [
        PlanChoice(
            p.id, p.site_id, f"{p.name}（{'电' if p.kind.value == 'electricity' else '水'}）"
        )
        for p in rows
    ]  # type: ignore[attr-defined]
