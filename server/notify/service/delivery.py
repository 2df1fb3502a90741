"""Delivery: claim due messages, send each through its channel, record the outcome.

A claim is one statement: PostgreSQL takes the due rows `FOR UPDATE SKIP LOCKED`, so two
notifiers never claim one message; SQLite has one writer, so the statement is a claim of its
own. A claim counts an attempt and leases the row until `claimed_until`; a notifier that dies
mid-send leaves its messages to be claimed again when the lease ends (a message may then go
out twice — the one case, at least once). Outcomes are fenced on the attempt they were
claimed with. Temporary failures wait `backoff(attempts)`; permanent ones (and the last
attempt) end FAILED with the provider's code. A WeChat message spends one of the user's
subscribe allowances just before its first attempt (server.accounts.service.subscriptions);
a retry of the same message does not spend another.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server.accounts.config import TenantSettings
from server.accounts.models import TenantApp, TenantIdentity
from server.accounts.service.subscriptions import spend_allowance
from server.ledger.sql import fetch, is_pg
from server.notify import templates
from server.notify.models import Channel, MessageState
from server.notify.providers.base import Outgoing, Sender, SendError

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 3600


def backoff(attempts: int) -> timedelta:
    """Wait after failed attempt `attempts`: 30 s, 1 min, 2 min … at most an hour."""
    return timedelta(seconds=min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    channel: Channel
    recipient: str
    template: str
    params: Mapping[str, Any]
    text: str
    attempts: int


def _conn() -> BaseDBAsyncClient:
    return connections.get("default")


async def claim(n: int, *, lease_s: float, now: datetime) -> list[Claimed]:
    """Lease up to `n` due messages (queued and due, or sending with a lapsed lease)."""
    conn = _conn()
    lock = " FOR UPDATE SKIP LOCKED" if is_pg(conn) else ""
    rows = await fetch(
        conn,
        "UPDATE notify_message SET state = 'sending', attempts = attempts + 1,"
        " claimed_until = $1, updated_at = $2 WHERE id IN (SELECT id FROM notify_message"
        " WHERE (state = 'queued' AND next_attempt_at <= $2)"
        " OR (state = 'sending' AND claimed_until <= $2)"
        f" ORDER BY next_attempt_at, id LIMIT {int(n)}{lock})"
        " RETURNING id, channel, recipient, template, params, text, attempts",
        [now + timedelta(seconds=lease_s), now],
    )
    return [
        Claimed(
            r["id"],
            Channel(r["channel"]),
            r["recipient"],
            r["template"],
            json.loads(r["params"]) if isinstance(r["params"], str) else r["params"],
            r["text"],
            int(r["attempts"]),
        )
        for r in sorted(rows, key=lambda r: r["id"])
    ]


async def deliver_due(
    senders: Mapping[str, Sender],
    *,
    now: datetime | None = None,
    batch: int = 50,
    max_attempts: int = 6,
    lease_s: float = 120.0,
    tenant: TenantSettings | None = None,
) -> int:
    """One round: claim up to `batch` due messages and send them concurrently; returns how
    many were claimed."""
    now = now or datetime.now(UTC)
    claimed = await claim(batch, lease_s=lease_s, now=now)
    if claimed:
        tenant = tenant or TenantSettings()
        await asyncio.gather(*(_deliver(senders, m, max_attempts, tenant) for m in claimed))
    return len(claimed)


async def _deliver(
    senders: Mapping[str, Sender], m: Claimed, max_attempts: int, tenant: TenantSettings
) -> None:
    sender = senders.get(m.channel.value)
    try:
        if sender is None:
            raise SendError("local.no_channel", f"未配置{m.channel.value}通道", temporary=False)
        outgoing = await _outgoing(m, tenant)
        provider_id = await sender.send(outgoing)
    except SendError as exc:
        await _failed(m, getattr(sender, "name", ""), exc, max_attempts)
        return
    except Exception as exc:  # a client bug: kept on the message, retried like a busy provider
        log.exception("notify message %s: unexpected error", m.id)
        await _failed(
            m,
            getattr(sender, "name", ""),
            SendError("local.error", repr(exc)[:300], temporary=True),
            max_attempts,
        )
        return
    await _record(m, MessageState.SENT, provider=sender.name, provider_id=provider_id[:64])


async def _outgoing(m: Claimed, tenant: TenantSettings) -> Outgoing:
    tpl = templates.TEMPLATES[m.template]
    template_id = ""
    if m.channel is Channel.WECHAT:
        template_id = next(
            (t.template_id for t in tenant.subscribe_templates if t.purpose == tpl.purpose), ""
        )
        identity = await TenantIdentity.get_or_none(app=TenantApp.MINIAPP, openid=m.recipient)
        if (
            not template_id
            or identity is None
            or (m.attempts == 1 and not await spend_allowance(identity.id, template_id))
        ):
            raise SendError(
                "local.not_subscribed", "用户未订阅该消息（订阅次数已用完）", temporary=False
            )
    sms = templates.sms_params(m.template, m.params) if m.channel is Channel.SMS else m.params
    return Outgoing(
        m.recipient,
        m.template,
        sms,
        m.text,
        subject=tpl.subject,
        wechat_template_id=template_id,
        wechat_data=templates.wechat_data(m.template, m.params) if template_id else {},
    )


async def _failed(m: Claimed, provider: str, exc: SendError, max_attempts: int) -> None:
    final = not exc.temporary or m.attempts >= max_attempts
    log.info(
        "notify message %s attempt %d: %s (%s)",
        m.id,
        m.attempts,
        exc.code,
        "final" if final else "retry",
    )
    await _record(
        m,
        MessageState.FAILED if final else MessageState.QUEUED,
        provider=provider,
        code=exc.code[:64],
        reason=exc.reason[:300],
        retry_at=None if final else datetime.now(UTC) + backoff(m.attempts),
    )


async def _record(
    m: Claimed,
    state: MessageState,
    *,
    provider: str = "",
    provider_id: str = "",
    code: str = "",
    reason: str = "",
    retry_at: datetime | None = None,
) -> bool:
    """Write the outcome if this claim still owns the message (same attempt, still sending)."""
    now = datetime.now(UTC)
    rows = await fetch(
        _conn(),
        "UPDATE notify_message SET state = $1, provider = $2, provider_id = $3,"
        " error_code = $4, error_reason = $5, next_attempt_at = COALESCE($6, next_attempt_at),"
        " sent_at = CASE WHEN $10 THEN $7 ELSE sent_at END, claimed_until = NULL,"
        " updated_at = $7 WHERE id = $8 AND state = 'sending' AND attempts = $9 RETURNING id",
        [
            state.value,
            provider,
            provider_id,
            code,
            reason,
            retry_at,
            now,
            m.id,
            m.attempts,
            state is MessageState.SENT,
        ],
    )
    return bool(rows)
