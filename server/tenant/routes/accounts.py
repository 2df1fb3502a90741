"""What a tenant sees of the accounts bound to them (/api/v1/accounts…, /api/v1/orders…)."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("tenant_accounts")
