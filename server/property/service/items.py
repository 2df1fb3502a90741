"""Fee items (自定义收费): defined per site by staff, each charged to its revenue account —
the chart's own line for rent, property fee and service fee, `revenue:item:<id>` for an
organisation's custom item. Every change is in the operation log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.ledger.posting import ChargeType, item_revenue, revenue
from server.property import fees
from server.property.fees import FeeBasis, FeeCollection, FeeCycle, FeeKind
from server.property.models import FeeItem, PropertySettings

_CHARGE_TYPES = {
    FeeKind.RENT: ChargeType.RENT,
    FeeKind.PROPERTY_FEE: ChargeType.PROPERTY_FEE,
    FeeKind.SERVICE_FEE: ChargeType.SERVICE_FEE,
}


@dataclass(frozen=True, slots=True)
class ItemForm:
    """What staff enter: the amount in yuan (fixed) or yuan per m² (area)."""

    name: str
    kind: str
    basis: str
    amount_yuan: str
    cycle: str
    billing_day: str = "1"
    due: str = ""
    collection: str = FeeCollection.DEDUCT.value
    active: bool = True


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    site_id: int
    name: str
    kind: FeeKind
    basis: FeeBasis
    amount: Decimal  # fen or fen per m²
    cycle: FeeCycle
    billing_day: int
    due: date | None
    collection: FeeCollection
    active: bool
    revenue_code: str

    @property
    def amount_yuan(self) -> Decimal:
        return (
            (self.amount / 100)
            .quantize(Decimal("0.01") if self.basis is FeeBasis.FIXED else Decimal("0.0001"))
            .normalize()
        )

    @property
    def rule(self) -> fees.Rule:
        return fees.Rule(self.basis, self.amount, self.cycle, self.billing_day, self.due)


def revenue_code(kind: FeeKind, item_id: int) -> str:
    """The item's revenue account: the chart's line for its kind, or its own."""
    charge_type = _CHARGE_TYPES.get(kind)
    return revenue(charge_type) if charge_type is not None else item_revenue(item_id)


def view(item: FeeItem) -> ItemView:
    kind = FeeKind(item.kind)
    return ItemView(
        item.id,
        item.site_id,
        item.name,
        kind,
        FeeBasis(item.basis),  # type: ignore[attr-defined]
        Decimal(item.amount),
        FeeCycle(item.cycle),
        item.billing_day,
        item.due,
        FeeCollection(item.collection),
        item.active,
        revenue_code(kind, item.id),
    )


def _parse(form: ItemForm) -> dict[str, object]:
    """The form as model fields, or ValidationFailed in Chinese (nothing written)."""
    name = form.name.strip()
    if not 1 <= len(name) <= 50:
        raise ValidationFailed("收费项目名称为 1–50 个字")
    try:
        kind, basis = FeeKind(form.kind), FeeBasis(form.basis)
        cycle, collection = FeeCycle(form.cycle), FeeCollection(form.collection)
    except ValueError:
        raise ValidationFailed("收费项目的类型、计费方式、周期或收取方式无效") from None
    places = Decimal("0.01") if basis is FeeBasis.FIXED else Decimal("0.0001")
    try:
        yuan = Decimal(form.amount_yuan.strip())
        if not yuan.is_finite() or yuan < 0 or yuan != yuan.quantize(places) or yuan > 10**8:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        unit = "元（两位小数）" if basis is FeeBasis.FIXED else "元/m²（至多四位小数）"
        raise ValidationFailed(f"金额须为不小于 0 的{unit}") from None
    day_text = form.billing_day.strip() or "1"
    if not day_text.isdigit() or not 1 <= int(day_text) <= fees.MAX_BILLING_DAY:
        raise ValidationFailed("计费日须为每月 1–28 日")
    due: date | None = None
    if cycle is FeeCycle.ONCE:
        try:
            due = date.fromisoformat(form.due.strip())
        except ValueError:
            raise ValidationFailed("一次性收费须填写收费日期") from None
    amount = (yuan * 100).normalize()
    fees.Rule(basis, amount, cycle, int(day_text), due)  # the pure rule's own checks
    return {
        "name": name,
        "kind": kind,
        "basis": basis,
        "amount": f"{amount:f}",
        "cycle": cycle,
        "billing_day": int(day_text),
        "due": due,
        "collection": collection,
        "active": form.active,
    }


async def list_items(site_ids: Sequence[int], *, active_only: bool = False) -> list[ItemView]:
    query = FeeItem.filter(site_id__in=list(site_ids))
    if active_only:
        query = query.filter(active=True)
    return [view(i) for i in await query.order_by("site_id", "name", "id")]


async def get_item(site_ids: Sequence[int], item_id: int) -> ItemView:
    item = await FeeItem.get_or_none(id=item_id, site_id__in=list(site_ids))
    if item is None:
        raise NotFound("收费项目不存在")
    return view(item)


async def create_item(site_id: int, form: ItemForm, *, actor: str) -> ItemView:
    """A new fee item of the site (the caller checked the site is in scope)."""
    fields = _parse(form)
    try:
        async with in_transaction():
            item = await FeeItem.create(site_id=site_id, created_by=actor, **fields)
            await record(
                actor,
                "property.fee_item.create",
                target_type="fee_item",
                target_id=item.id,
                site_id=site_id,
                reason=item.name,
                detail={k: str(v) for k, v in fields.items()},
            )
    except IntegrityError:
        raise Conflict("本园区已有同名收费项目") from None
    return view(item)


async def update_item(
    site_ids: Sequence[int], item_id: int, form: ItemForm, *, actor: str
) -> ItemView:
    """Change an item; what was charged before stays as it was (runs keep their lines)."""
    fields = _parse(form)
    item = await FeeItem.get_or_none(id=item_id, site_id__in=list(site_ids))
    if item is None:
        raise NotFound("收费项目不存在")
    if FeeKind(item.kind) is not fields["kind"]:
        raise ValidationFailed("收费项目的类型不能修改（它决定收入科目）")
    try:
        async with in_transaction():
            await FeeItem.filter(id=item.id).update(**fields)
            await record(
                actor,
                "property.fee_item.update",
                target_type="fee_item",
                target_id=item.id,
                site_id=item.site_id,
                reason=str(fields["name"]),  # type: ignore[attr-defined]
                detail={k: str(v) for k, v in fields.items()},
            )
    except IntegrityError:
        raise Conflict("本园区已有同名收费项目") from None
    return view(await FeeItem.get(id=item.id))


async def settings_of(site_id: int) -> PropertySettings:
    """The site's property rules (defaults when never set; not stored by reading)."""
    found = await PropertySettings.get_or_none(site_id=site_id)
    return found or PropertySettings(site_id=site_id)


async def set_settings(site_id: int, *, fees_may_cut: bool, due_days: int, actor: str) -> None:
    if not 1 <= due_days <= 365:
        raise ValidationFailed("账单缴费期限须为 1–365 天")
    async with in_transaction():
        row = await PropertySettings.get_or_none(site_id=site_id)
        if row is None:
            await PropertySettings.create(
                site_id=site_id, fees_may_cut=fees_may_cut, due_days=due_days
            )
        else:
            await PropertySettings.filter(site_id=site_id).update(
                fees_may_cut=fees_may_cut, due_days=due_days
            )
        await record(
            actor,
            "property.settings",
            target_type="site",
            target_id=site_id,
            site_id=site_id,
            reason="费用可断电" if fees_may_cut else "费用不断电",
            detail={"fees_may_cut": fees_may_cut, "due_days": due_days},
        )
