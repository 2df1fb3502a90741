"""What a staff member may see: the organisation and the sites of their scope. Every admin
page asks the scope first; an object outside it is "not found" (404), never "forbidden", so
staff of one company cannot even learn that another's objects exist."""

from __future__ import annotations

from dataclasses import dataclass

from server.core.errors import NotFound
from server.places.models import Site
from server.staff.models import AdminUser, StaffRole


@dataclass(frozen=True, slots=True)
class SiteRef:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Scope:
    organisation_id: int | None  # None: every organisation (superadmin)
    site_ids: frozenset[int] | None  # None: every site of the organisation

    async def sites(self) -> list[SiteRef]:
        """The sites in scope, by name."""
        query = Site.all()
        if self.organisation_id is not None:
            query = query.filter(organisation_id=self.organisation_id)
        if self.site_ids is not None:
            query = query.filter(id__in=sorted(self.site_ids))
        rows = await query.order_by("name", "id").values_list("id", "name")
        return [SiteRef(site_id, name) for site_id, name in rows]

    async def site(self, site_id: int) -> SiteRef:
        """One site in scope, or NotFound (outside the scope as if it did not exist)."""
        for site in await self.sites():
            if site.id == site_id:
                return site
        raise NotFound("站点不存在")

    async def site_ids_of(self, site_id: int | None = None) -> list[int]:
        """The ids to filter a query by: one site (checked) or every site in scope."""
        if site_id is not None:
            return [(await self.site(site_id)).id]
        return [s.id for s in await self.sites()]


async def scope_of(user: AdminUser) -> Scope:
    if user.role is StaffRole.SUPERADMIN:
        return Scope(None, None)
    site_ids = await user.sites.all().values_list("id", flat=True)
    # No organisation (should not happen for these roles): an empty scope, never everything.
    return Scope(user.organisation_id or -1, frozenset(site_ids) or None)  # type: ignore[attr-defined]
