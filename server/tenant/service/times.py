"""Times as the tenant sees them: ISO 8601 in the configured zone (Asia/Shanghai), so every
answer of the tenant API reads `…+08:00` whatever zone the database handed back."""

from __future__ import annotations

from datetime import datetime

from server.metering.service.daily_usage import zone


def local_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(zone()).isoformat() if moment is not None else None
