"""Enqueue: turn an event into messages, on the event's own connection and transaction.

`enqueue(conn, events, now=…)` resolves each event's recipients in a few batch reads (the
accounts' phones and sites, channel preferences, bound mini-program identities that still
hold a subscribe allowance for the template's purpose), drops what was sent within
`dedup_interval_s` (same account, topic, channel and recipient), marks what is over the
per-recipient hourly limit as failed `local.rate_limited`, and inserts the rest in one
statement. Two evaluations of one account are serialised by the caller's account lock
(PostgreSQL `FOR UPDATE`; SQLite has one writer), so the de-duplication read is not raced;
`dedup_key` makes a replayed event add nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from server.accounts.config import TenantSettings
from server.core.money import yuan
from server.ledger.sql import Col, fetch, in_list, insert_rows
from server.notify import templates
from server.notify.config import NotifySettings
from server.notify.models import Channel, MessageState

RATE_LIMITED = "local.rate_limited"


@dataclass(frozen=True, slots=True)
class Event:
    """Something an account's recipients should hear about."""

    account_id: int
    template: str  # templates.TEMPLATES key
    key: str  # unique per event: replaying it adds nothing
    topic: str  # what de-duplication compares ("alarm.balance.2")
    params: Mapping[str, Any] = field(default_factory=dict)
    balance_fen: int = 0
    # De-duplicated and rate limited (alarms); a recharge's confirmation is neither.
    limited: bool = True


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    address: str  # phone, e-mail address or openid


@dataclass(frozen=True, slots=True)
class _Account:
    site_id: int
    site: str
    number: str
    tenant: str
    phone: str


_COLS = [
    Col("site_id", "int"),
    Col("account_id", "int"),
    Col("channel", "text"),
    Col("recipient", "text"),
    Col("template", "text"),
    Col("topic", "text"),
    Col("params", "text", "jsonb"),
    Col("text", "text"),
    Col("state", "text"),
    Col("attempts", "int"),
    Col("next_attempt_at", "timestamptz"),
    Col("provider", "text"),
    Col("provider_id", "text"),
    Col("error_code", "text"),
    Col("error_reason", "text"),
    Col("dedup_key", "text"),
    Col("created_at", "timestamptz"),
    Col("updated_at", "timestamptz"),
]


async def enqueue(
    conn: BaseDBAsyncClient,
    events: Sequence[Event],
    *,
    now: datetime,
    settings: NotifySettings | None = None,
    tenant: TenantSettings | None = None,
) -> int:
    """Write the events' messages on `conn`; returns how many were queued."""
    if not events:
        return 0
    default_settings, default_tenant = _defaults()
    settings = settings or default_settings
    purposes = {t.purpose: t.template_id for t in (tenant or default_tenant).subscribe_templates}
    ids = sorted({e.account_id for e in events})
    accounts = await _accounts(conn, ids)
    off = await _channels_off(conn, ids)
    openids = await _subscribed(conn, ids, sorted(set(purposes.values())))
    planned: list[tuple[Event, Recipient, str]] = []
    for event in events:
        account = accounts.get(event.account_id)
        if account is None:
            continue
        tpl = templates.TEMPLATES[event.template]
        text = _render(event, account)
        for r in _recipients(account, openids.get(event.account_id, {}), purposes, tpl.purpose):
            if (event.account_id, r.channel) not in off:
                planned.append((event, r, text))
    limited = [p for p in planned if p[0].limited]
    since = now - timedelta(seconds=settings.dedup_interval_s)
    recent = await _recent(conn, sorted({p[0].account_id for p in limited}), since)
    counts = await _hourly(conn, [p[1] for p in limited], now - timedelta(hours=1))
    rows: list[tuple[Any, ...]] = []
    for event, r, text in planned:
        sent = 0
        if event.limited:
            seen = (event.account_id, event.topic, r.channel.value, r.address)
            if seen in recent:
                continue
            recent.add(seen)
            sent = counts.get((r.channel.value, r.address), 0)
            counts[(r.channel.value, r.address)] = sent + 1
        rows.append(_row(accounts[event.account_id], event, r, text, now, sent, settings))
    inserted = await insert_rows(
        conn,
        "notify_message",
        _COLS,
        rows,
        suffix="ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    return len(inserted)


@cache
def _defaults() -> tuple[NotifySettings, TenantSettings]:
    """The settings, read once per process (enqueue runs on hot paths: every alarm batch,
    every payment follow-up batch)."""
    return NotifySettings(), TenantSettings()


def _render(event: Event, account: _Account) -> str:
    return templates.render(event.template, _params(event, account))


def _params(event: Event, account: _Account) -> dict[str, Any]:
    return {
        "site": account.site,
        "account": account.number,
        "tenant": account.tenant,
        "balance": str(yuan(event.balance_fen)),
        **event.params,
    }


def _recipients(
    account: _Account,
    openids: Mapping[str, list[str]],
    purposes: Mapping[str, str],
    purpose: str | None,
) -> Iterable[Recipient]:
    """The account's owner phone (SMS) and every bound mini-program user holding an allowance
    for the template's subscribe purpose (WeChat)."""
    if account.phone:
        yield Recipient(Channel.SMS, account.phone)
    template_id = purposes.get(purpose or "")
    for openid in openids.get(template_id or "", []):
        yield Recipient(Channel.WECHAT, openid)


def _row(
    account: _Account,
    event: Event,
    r: Recipient,
    text: str,
    now: datetime,
    sent_this_hour: int,
    settings: NotifySettings,
) -> tuple[Any, ...]:
    limited = sent_this_hour >= settings.rate_per_hour
    state = MessageState.FAILED if limited else MessageState.QUEUED
    reason = f"超过每小时 {settings.rate_per_hour} 条的发送上限，未发送" if limited else ""
    params = json.dumps(_params(event, account), ensure_ascii=False, separators=(",", ":"))
    key = f"{event.key}:{r.channel.value}:{r.address}"[:200]
    return (
        account.site_id,
        event.account_id,
        r.channel.value,
        r.address,
        event.template,
        event.topic,
        params,
        text[:500],
        state.value,
        0,
        now,
        "",
        "",
        RATE_LIMITED if limited else "",
        reason,
        key,
        now,
        now,
    )


# -- batch reads ------------------------------------------------------------------------------
async def _accounts(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, _Account]:
    where, params = in_list(conn, "a.id", ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT a.id, a.site_id, s.name AS site, a.number, a.tenant_name, a.phone"
        f" FROM account a JOIN site s ON s.id = a.site_id WHERE {where}",
        params,
    )
    return {
        r["id"]: _Account(r["site_id"], r["site"], r["number"], r["tenant_name"], r["phone"])
        for r in rows
    }


async def _channels_off(conn: BaseDBAsyncClient, ids: list[int]) -> set[tuple[int, Channel]]:
    where, params = in_list(conn, "account_id", ids, 1, "int")
    rows = await fetch(
        conn,
        f"SELECT account_id, channel FROM notify_preference WHERE {where} AND NOT enabled",
        params,
    )
    return {(r["account_id"], Channel(r["channel"])) for r in rows}


async def _subscribed(
    conn: BaseDBAsyncClient, ids: list[int], template_ids: list[str]
) -> dict[int, dict[str, list[str]]]:
    """Per account, per subscribe template: the openids of bound mini-program users with an
    allowance left (the notifier spends it when it sends)."""
    if not template_ids:
        return {}
    where, params = in_list(conn, "b.account_id", ids, 1, "int")
    tpl, tpl_params = in_list(conn, "g.template_id", template_ids, 1 + len(params), "text")
    rows = await fetch(
        conn,
        "SELECT b.account_id, g.template_id, i.openid FROM account_binding b"
        " JOIN tenant_identity i ON i.id = b.identity_id"
        " JOIN subscribe_grant g ON g.identity_id = i.id"
        f" WHERE {where} AND {tpl} AND g.remaining > 0 AND i.app = 'miniapp'"
        " ORDER BY b.account_id, i.id",
        params + tpl_params,
    )
    out: dict[int, dict[str, list[str]]] = {}
    for r in rows:
        out.setdefault(r["account_id"], {}).setdefault(r["template_id"], []).append(r["openid"])
    return out


async def _recent(
    conn: BaseDBAsyncClient, ids: list[int], since: datetime
) -> set[tuple[int, str, str, str]]:
    if not ids:
        return set()
    where, params = in_list(conn, "account_id", ids, 2, "int")
    rows = await fetch(
        conn,
        "SELECT account_id, topic, channel, recipient FROM notify_message"
        f" WHERE created_at >= $1 AND {where} AND error_code <> '{RATE_LIMITED}'",
        [since, *params],
    )
    return {(r["account_id"], r["topic"], r["channel"], r["recipient"]) for r in rows}


async def _hourly(
    conn: BaseDBAsyncClient, recipients: list[Recipient], since: datetime
) -> dict[tuple[str, str], int]:
    """Messages per (channel, recipient) written since `since`, rate-limited ones not counted."""
    addresses = sorted({r.address for r in recipients})
    if not addresses:
        return {}
    where, params = in_list(conn, "recipient", addresses, 2, "text")
    rows = await fetch(
        conn,
        "SELECT channel, recipient, COUNT(*) AS n FROM notify_message"
        f" WHERE created_at >= $1 AND {where} AND error_code <> '{RATE_LIMITED}'"
        " GROUP BY channel, recipient",
        [since, *params],
    )
    return {(r["channel"], r["recipient"]): int(r["n"]) for r in rows}
