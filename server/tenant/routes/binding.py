"""Binding a WeChat user to accounts and the tenant's own settings (/api/v1/sites,
/api/v1/bind…, /api/v1/accounts/{id}/binding, /api/v1/me…)."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("tenant_binding")
