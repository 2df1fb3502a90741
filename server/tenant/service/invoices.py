"""A tenant's invoices: what a bound account may still invoice, its invoices with their
states, and a new request (owner or accountant). Isolation through `bound_account`; the
decision what is invoiceable is server.invoices' alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.invoices.models import ITEM_LABELS, ItemKind
from server.invoices.service import requests, setup, views
from server.invoices.service.buyer import checked_buyer
from server.invoices.service.requests import LineAsk
from server.places.models import Site
from server.tenant.service.access import bound_account
from server.tenant.service.times import local_iso


def _times(view: dict[str, Any]) -> dict[str, Any]:
    return view | {
        k: local_iso(view[k]) for k in ("requested_at", "issued_at", "paid_at") if k in view
    }


async def overview(identity_id: int, account_id: int) -> dict[str, Any]:
    """The invoice page of a bound account: invoiceable payments, items, invoices."""
    account, _role = await bound_account(identity_id, account_id)
    open_ = await requests.invoiceable(account.id)
    site = await Site.get(id=account.site_id)
    items = await setup.items(site.organisation_id)
    profile = await setup.profile(site.organisation_id)
    return {
        "enabled": profile is not None and bool(items),
        "invoiceable_fen": open_.total_fen,
        "payments": [_times(p.as_dict()) for p in open_.payments if p.open_fen > 0],
        "items": [
            {
                "kind": i.kind.value,
                "label": ITEM_LABELS[i.kind],
                "name": i.name,
                "tax_rate": str(i.tax_rate.normalize()),
            }
            for i in items
        ],
        "default_item": profile.default_item.value if profile else None,
        "invoices": [_times(v) for v in await views.account_invoices(account.id)],
    }


async def request(
    identity_id: int,
    openid: str,
    account_id: int,
    fields: dict[str, Any],
    payments: Sequence[str],
    amount_fen: int | None,
    lines: Sequence[tuple[str, int]],
) -> dict[str, Any]:
    """Ask for an invoice over a bound account's payments; the new invoice's view."""
    account, _role = await bound_account(identity_id, account_id)
    buyer = checked_buyer(**fields)
    invoice = await requests.request_invoice(
        account.id, buyer, payments, actor=f"tenant:{openid}", amount_fen=amount_fen,
        lines=[LineAsk(ItemKind(kind), amount) for kind, amount in lines],
    )  # fmt: skip
    return _times(views.invoice_view(invoice, await invoice.lines.all().order_by("id")))
