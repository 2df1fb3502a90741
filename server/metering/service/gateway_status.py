"""A gateway's own online/offline report (the MQTT gateway's status topic, its last will when
the link drops): stored on the gateway row, and when a gateway that was online goes offline,
a staff alert (网关离线告警) is queued in the same transaction (server.notify), so the alert
exists exactly when the state change does.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from server.ledger.sql import fetch, is_pg
from server.notify.service.outbox import StaffEvent, enqueue_staff


async def gateway_status(code: str, online: bool, *, now: datetime) -> bool:
    """Record the gateway's report; True when it just went offline (an alert was queued)."""
    async with in_transaction() as conn:
        lock = " FOR UPDATE" if is_pg(conn) else ""
        rows = await fetch(
            conn,
            f"SELECT id, site_id, name, online, last_seen_at FROM gateway WHERE code = $1{lock}",
            [code],
        )
        if not rows:
            return False
        gw = rows[0]
        await fetch(
            conn,
            "UPDATE gateway SET online = $2, last_seen_at = $3 WHERE id = $1",
            [gw["id"], online, now],
        )
        if online or not gw["online"]:
            return False
        seen = gw["last_seen_at"]
        last = seen.strftime("%Y-%m-%d %H:%M") if isinstance(seen, datetime) else str(seen or "")
        event = StaffEvent(
            gw["site_id"],
            "staff.gateway_offline",
            f"gateway-offline:{gw['id']}:{now.isoformat()}",
            f"gateway.offline.{gw['id']}",
            {"gateway": code, "name": gw["name"] or code, "last_seen": last[:16] or "无"},
        )
        await enqueue_staff(conn, [event], now=now)
        return True
