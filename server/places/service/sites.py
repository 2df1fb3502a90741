"""Sites (园区/项目): the scoped list, a site's page with its buildings, create (organisation-
wide staff only), edit and retire."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.functions import Count

from server.audit.service import record
from server.core.errors import NotFound
from server.core.paging import Page, Paging, paginate
from server.places.models import Building, Organisation, Room, Site
from server.places.service.common import (
    Status,
    by_status,
    checked_name,
    name_free,
    now,
    refuse_open_accounts,
    retire_floors,
    writing,
)


@dataclass(frozen=True, slots=True)
class SiteRow:
    id: int
    name: str
    address: str
    organisation_name: str
    buildings: int
    rooms: int
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class BuildingRow:
    id: int
    name: str
    floors: int
    rooms: int
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class SiteDetail:
    site: SiteRow
    buildings: list[BuildingRow]


@dataclass(frozen=True, slots=True)
class OrganisationRef:
    id: int
    name: str


async def organisations() -> list[OrganisationRef]:
    """Every organisation, for the superadmin's choice when creating a site."""
    rows = await Organisation.all().order_by("name").values_list("id", "name")
    return [OrganisationRef(i, n) for i, n in rows]


async def _room_counts(site_ids: Sequence[int]) -> dict[int, int]:
    rows = (
        await Room.filter(floor__building__site_id__in=list(site_ids), retired_at__isnull=True)
        .annotate(n=Count("id"))
        .group_by("floor__building__site_id")
        .values_list("floor__building__site_id", "n")
    )
    return dict(rows)  # type: ignore[arg-type]


async def list_sites(
    site_ids: Sequence[int], *, q: str = "", status: Status = Status.ACTIVE, paging: Paging
) -> Page[SiteRow]:
    """The sites in scope, by name; `q` searches name and address. Counts are of what is in use."""
    query = by_status(Site.filter(id__in=list(site_ids)), status)
    if q:
        query = query.filter(Q(name__icontains=q) | Q(address__icontains=q))
    page = await paginate(query.select_related("organisation").order_by("name", "id"), paging)
    ids = [s.id for s in page.items]
    buildings = dict(
        await Building.filter(site_id__in=ids, retired_at__isnull=True)
        .annotate(n=Count("id"))
        .group_by("site_id")
        .values_list("site_id", "n")
    )
    rooms = await _room_counts(ids)
    return page.map(lambda s: _site_row(s, buildings.get(s.id, 0), rooms.get(s.id, 0)))


def _taken(name: str) -> str:
    return f"站点“{name}”已存在（含已停用的站点），请换一个名称"


def _site_row(site: Site, buildings: int, rooms: int) -> SiteRow:
    return SiteRow(
        site.id, site.name, site.address, site.organisation.name, buildings, rooms,
        site.retired_at,
    )  # fmt: skip


async def _site(site_ids: Sequence[int], site_id: int) -> Site:
    site = await Site.get_or_none(id=site_id, id__in=list(site_ids)).select_related("organisation")
    if site is None:
        raise NotFound("站点不存在")
    return site


async def site_detail(site_ids: Sequence[int], site_id: int) -> SiteDetail:
    """A site and its buildings (retired ones last), with their floors and rooms in use."""
    site = await _site(site_ids, site_id)
    buildings = (
        await Building.filter(site_id=site.id)
        .annotate(
            n_floors=Count("floors", distinct=True),
        )
        .order_by("retired_at", "name")
    )
    rooms = dict(
        await Room.filter(floor__building__site_id=site.id, retired_at__isnull=True)
        .annotate(n=Count("id"))
        .group_by("floor__building_id")
        .values_list("floor__building_id", "n")
    )
    rows = [
        BuildingRow(b.id, b.name, b.n_floors, rooms.get(b.id, 0), b.retired_at)  # type: ignore[attr-defined]
        for b in buildings
    ]
    in_use = sum(1 for b in rows if b.retired_at is None)
    return SiteDetail(_site_row(site, in_use, sum(rooms.values())), rows)  # type: ignore[arg-type]


async def create_site(*, organisation_id: int, name: str, address: str, actor: str) -> int:
    """A new site of `organisation_id` (the caller decides whose: see the admin's page)."""
    name = checked_name(name, "站点名称", 100)
    address = (address or "").strip()[:200]
    if not await Organisation.exists(id=organisation_id):
        raise NotFound("组织不存在")
    await name_free(Site.filter(organisation_id=organisation_id), name, _taken(name))
    async with writing(f"站点“{name}”已存在"):
        site = await Site.create(organisation_id=organisation_id, name=name, address=address)
        await record(
            actor, "site.create", target_type="site", target_id=site.id, site_id=site.id,
            reason=f"新建站点 {name}", detail={"name": name, "address": address},
        )  # fmt: skip
    return site.id


async def edit_site(
    site_ids: Sequence[int], site_id: int, *, name: str, address: str, actor: str
) -> None:
    site = await _site(site_ids, site_id)
    name = checked_name(name, "站点名称", 100)
    address = (address or "").strip()[:200]
    siblings = Site.filter(organisation_id=site.organisation_id)  # type: ignore[attr-defined]
    await name_free(siblings, name, _taken(name), site.id)
    before = {"name": site.name, "address": site.address}
    async with writing(f"站点“{name}”已存在"):
        await Site.filter(id=site.id).update(name=name, address=address)
        await record(
            actor, "site.edit", target_type="site", target_id=site.id, site_id=site.id,
            reason=f"修改站点 {site.name}",
            detail={"before": before, "after": {"name": name, "address": address}},
        )  # fmt: skip


async def retire_site(site_ids: Sequence[int], site_id: int, *, actor: str) -> None:
    """Retire a site with everything in it; refused while one of its rooms has an open account."""
    site = await _site(site_ids, site_id)
    if site.retired_at is not None:
        return
    await refuse_open_accounts(f"站点 {site.name} ", room__floor__building__site_id=site.id)
    at = now()
    async with writing("站点已变更，请刷新后重试"):
        await retire_floors(at, building__site_id=site.id)
        await Building.filter(site_id=site.id, retired_at__isnull=True).update(retired_at=at)
        await Site.filter(id=site.id).update(retired_at=at)
        await record(
            actor, "site.retire", target_type="site", target_id=site.id, site_id=site.id,
            reason=f"停用站点 {site.name}（含其楼栋、楼层、房间）",
        )  # fmt: skip


# -- the tenant's binding page and the CLI name a site without a staff scope -------------
@dataclass(frozen=True, slots=True)
class SiteChoice:
    id: int
    name: str
    organisation: str


async def tenant_site_choices() -> list[SiteChoice]:
    """Every site in use a tenant may pick on the binding page, by organisation and name."""
    rows = (
        await Site.filter(retired_at__isnull=True)
        .order_by("organisation__name", "name", "id")
        .values("id", "name", "organisation__name")
    )
    return [SiteChoice(r["id"], r["name"], r["organisation__name"]) for r in rows]


async def site_by_ref(ref: str) -> Site:
    """A site by its id (digits) or its name; 404 when none (or the name is ambiguous)."""
    site = None
    if ref.isdigit():
        site = await Site.get_or_none(id=int(ref))
    else:
        found = await Site.filter(name=ref).limit(2)
        site = found[0] if len(found) == 1 else None
    if site is None:
        raise NotFound(f"没有园区 {ref!r}（用园区编号或唯一的园区名称）", site=ref)
    return site
