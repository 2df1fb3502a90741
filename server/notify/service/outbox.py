"""Enqueue: turn an event into messages, on the event's own connection and transaction.

Recipients per account: the owner (户主: the account's phone for SMS, and voice for the
urgent templates; bound owner identities for WeChat), the accountant (财务: bound accountant
identities), each over the mini-program's subscribe messages (while an allowance is held)
and the official account's template messages (identities of the official account); the
account's contacts (notify_recipient: an accountant or a member of staff, by phone — SMS,
voice for the urgent templates — and e-mail); staff (`enqueue_staff`: the site's active
staff of the template's roles, by their phone and e-mail). Each recipient's preferences
(notify_preference: per account and role, per contact, or per staff member; per message
kind, templates.KINDS, or for every kind) switch channels off. Voice messages falling in
the site's quiet hours wait until they end (`next_attempt_at`). An organisation's template
override gives the text of the free-text channels (e-mail, voice, official account).

`enqueue(conn, events, now=…)` resolves each event's recipients in a few batch reads (the
accounts' phones, sites and organisations, preferences, bound identities, overrides, the
sites' quiet hours when a call is planned), drops what was sent within
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
from server.notify.config import NotifySettings, quiet_until
from server.notify.models import Channel, MessageState, Role

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
    # Where it goes instead of the account's own recipients (an invoice goes to the phone
    # and e-mail address the tenant gave with the request).
    to: tuple[Recipient, ...] = ()


@dataclass(frozen=True, slots=True)
class StaffEvent:
    """Something a site's staff should hear about (gateway offline, reconciliation)."""

    site_id: int
    template: str  # a templates.TEMPLATES key whose audience is "staff"
    key: str  # unique per event: replaying it adds nothing
    topic: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    address: str  # phone, e-mail address or openid
    role: Role = Role.OWNER
    contact_id: int = 0  # a notify_recipient row's id; 0 for the owner and bound users


# (account or staff id, role, contact id or 0, kind or "", channel) → enabled
Preferences = dict[tuple[int, str, int, str, str], bool]


def switched_off(prefs: Preferences, who: tuple[int, str, int], kind: str, channel: str) -> bool:
    """Whether `who` switched `channel` off for messages of `kind`: its row for the kind
    decides, else its row for every kind, else the channel is on."""
    own = prefs.get((*who, kind, channel))
    if own is None:
        own = prefs.get((*who, "", channel), True)
    return not own


# Which staff roles hear a staff template (staff.models.StaffRole values).
STAFF_ROLES = {
    "staff.gateway_offline": ("org_admin", "site_admin", "operator"),
    "staff.reconciliation": ("org_admin", "finance"),
}
FREE_TEXT = {Channel.EMAIL, Channel.VOICE, Channel.OFFICIAL}  # where an override is read


@dataclass(frozen=True, slots=True)
class _Account:
    site_id: int
    site: str
    number: str
    tenant: str
    phone: str
    organisation_id: int = 0


_COLS = [
    Col("site_id", "int"),
    Col("account_id", "int"),
    Col("channel", "text"),
    Col("recipient", "text"),
    Col("role", "text"),
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
    Col("receipt_polls", "int"),
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
    prefs = await _preferences(conn, "account_id", ids)
    contacts = await _contacts(conn, ids)
    openids = await _subscribed(conn, ids, sorted(set(purposes.values())))
    followers = await _followers(conn, ids)
    overrides = await _overrides(
        conn, sorted({a.organisation_id for a in accounts.values()}), {e.template for e in events}
    )
    planned: list[tuple[Event, Recipient, str]] = []
    for event in events:
        account = accounts.get(event.account_id)
        if account is None:
            continue
        tpl = templates.TEMPLATES[event.template]
        params = _params(event, account)
        own = overrides.get((account.organisation_id, event.template))
        text = templates.render(event.template, params)
        free = _render_override(event.template, params, own) if own else text
        recipients = event.to or _recipients(
            account, openids.get(event.account_id, {}), followers.get(event.account_id, []),
            contacts.get(event.account_id, []), purposes, tpl,
        )  # fmt: skip
        for r in recipients:
            who = (event.account_id, r.role.value, r.contact_id)
            if not switched_off(prefs, who, tpl.kind, r.channel.value):
                planned.append((event, r, free if r.channel in FREE_TEXT else text))
    limited = [p for p in planned if p[0].limited]
    since = now - timedelta(seconds=settings.dedup_interval_s)
    recent = await _recent(conn, sorted({p[0].account_id for p in limited}), since)
    counts = await _hourly(conn, [p[1] for p in limited], now - timedelta(hours=1))
    quiet = await _quiet_hours(
        conn, sorted({accounts[e.account_id].site_id for e, r, _ in planned if _calls(r)}),
        settings,
    )  # fmt: skip
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
        account = accounts[event.account_id]
        due = _due(now, r, quiet.get(account.site_id))
        rows.append(
            _row(account.site_id, event.account_id, event.template, event.topic, event.key,
                 _params(event, account), r, text, now, due, sent, settings)
        )  # fmt: skip
    return await _insert(conn, rows)


async def enqueue_staff(
    conn: BaseDBAsyncClient,
    events: Sequence[StaffEvent],
    *,
    now: datetime,
    settings: NotifySettings | None = None,
) -> int:
    """Write staff alerts on `conn` (the event's transaction): to each active staff member
    of the template's roles who may see the site and has a phone (SMS; voice for the urgent
    templates) or an e-mail address, unless that staff member switched the channel off.
    Returns how many were queued; an event replayed adds nothing (its key)."""
    if not events:
        return 0
    settings = settings or _defaults()[0]
    sites = await _sites(conn, sorted({e.site_id for e in events}))
    overrides = await _overrides(
        conn, sorted({o for _, o in sites.values()}), {e.template for e in events}
    )
    quiet = await _quiet_hours(conn, sorted(sites), settings)
    rows: list[tuple[Any, ...]] = []
    for event in events:
        if event.site_id not in sites:
            continue
        name, organisation_id = sites[event.site_id]
        tpl = templates.TEMPLATES[event.template]
        params = {"site": name, **event.params}
        text = templates.render(event.template, params)
        own = overrides.get((organisation_id, event.template))
        free = _render_override(event.template, params, own) if own else text
        staff = await _staff_of(conn, event.site_id, organisation_id, event.template, tpl.kind)
        for sms, call, email in staff:
            recipients = []
            if sms:
                recipients.append(Recipient(Channel.SMS, sms, Role.STAFF))
            if call and tpl.voice:
                recipients.append(Recipient(Channel.VOICE, call, Role.STAFF))
            if email:
                recipients.append(Recipient(Channel.EMAIL, email, Role.STAFF))
            for r in recipients:
                rows.append(
                    _row(event.site_id, None, event.template, event.topic, event.key, params,
                         r, free if r.channel in FREE_TEXT else text, now,
                         _due(now, r, quiet.get(event.site_id)), 0, settings)
                )  # fmt: skip
    return await _insert(conn, rows)


async def _insert(conn: BaseDBAsyncClient, rows: list[tuple[Any, ...]]) -> int:
    inserted = await insert_rows(
        conn,
        "notify_message",
        _COLS,
        rows,
        suffix="ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    return len(inserted)


def _calls(r: Recipient) -> bool:
    return r.channel is Channel.VOICE


def _due(now: datetime, r: Recipient, quiet: tuple[str, str] | None) -> datetime:
    """When a message may first go: now, or for a call in quiet hours, when they end."""
    if not _calls(r) or quiet is None:
        return now
    return quiet_until(now, *quiet) or now


def _render_override(key: str, params: Mapping[str, Any], source: str) -> str:
    """An organisation's text; one that cannot render these values (checked on save, but an
    event may lack a value the sample had) falls back to ours rather than losing the event."""
    try:
        return templates.render(key, params, source)
    except Exception:  # a TemplateError, or what a sandboxed filter raised
        return templates.render(key, params)


@cache
def _defaults() -> tuple[NotifySettings, TenantSettings]:
    """The settings, read once per process (enqueue runs on hot paths: every alarm batch,
    every payment follow-up batch)."""
    return NotifySettings(), TenantSettings()


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
    openids: Mapping[str, list[tuple[str, Role]]],
    followers: list[tuple[str, Role]],
    contacts: list[_Contact],
    purposes: Mapping[str, str],
    tpl: templates.Template,
) -> Iterable[Recipient]:
    """The owner's phone (SMS, and voice for the urgent templates); every bound mini-program
    user holding an allowance for the template's subscribe purpose (WeChat); every bound
    official-account follower (template message) — owners and accountants alike; each
    contact's phone (SMS, voice for the urgent ones) and e-mail address."""
    if account.phone:
        yield Recipient(Channel.SMS, account.phone, Role.OWNER)
        if tpl.voice:
            yield Recipient(Channel.VOICE, account.phone, Role.OWNER)
    template_id = purposes.get(tpl.purpose or "")
    for openid, role in openids.get(template_id or "", []):
        yield Recipient(Channel.WECHAT, openid, role)
    for openid, role in followers:
        yield Recipient(Channel.OFFICIAL, openid, role)
    for c in contacts:
        if c.phone:
            yield Recipient(Channel.SMS, c.phone, c.role, c.id)
            if tpl.voice:
                yield Recipient(Channel.VOICE, c.phone, c.role, c.id)
        if c.email:
            yield Recipient(Channel.EMAIL, c.email, c.role, c.id)


def _row(
    site_id: int,
    account_id: int | None,
    template: str,
    topic: str,
    key: str,
    params: Mapping[str, Any],
    r: Recipient,
    text: str,
    now: datetime,
    due: datetime,
    sent_this_hour: int,
    settings: NotifySettings,
) -> tuple[Any, ...]:
    limited = sent_this_hour >= settings.rate_per_hour
    state = MessageState.FAILED if limited else MessageState.QUEUED
    reason = f"超过每小时 {settings.rate_per_hour} 条的发送上限，未发送" if limited else ""
    encoded = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    dedup = f"{key}:{r.channel.value}:{r.address}"[:200]
    return (
        site_id, account_id, r.channel.value, r.address, r.role.value, template, topic,
        encoded, text[:500], state.value, 0, due, "", "",
        RATE_LIMITED if limited else "", reason, dedup, 0, now, now,
    )  # fmt: skip


# -- batch reads ------------------------------------------------------------------------------
async def _accounts(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, _Account]:
    where, params = in_list(conn, "a.id", ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT a.id, a.site_id, s.name AS site, a.number, a.tenant_name, a.phone,"
        f" s.organisation_id FROM account a JOIN site s ON s.id = a.site_id WHERE {where}",
        params,
    )
    return {
        r["id"]: _Account(
            r["site_id"],
            r["site"],
            r["number"],
            r["tenant_name"],
            r["phone"],
            r["organisation_id"],
        )
        for r in rows
    }


async def _preferences(conn: BaseDBAsyncClient, column: str, ids: list[int]) -> Preferences:
    """The preferences of the accounts' recipients (`column` account_id) or of staff members
    (staff_id), keyed as `switched_off` reads them."""
    where, params = in_list(conn, column, ids, 1, "int")
    rows = await fetch(
        conn,
        f"SELECT {column} AS who, role, COALESCE(contact_id, 0) AS contact, kind, channel,"
        f" enabled FROM notify_preference WHERE {where}",
        params,
    )
    return {
        (r["who"], r["role"], int(r["contact"]), r["kind"], r["channel"]): bool(r["enabled"])
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class _Contact:
    id: int
    role: Role
    phone: str
    email: str


async def _contacts(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, list[_Contact]]:
    where, params = in_list(conn, "account_id", ids, 1, "int")
    rows = await fetch(
        conn,
        f"SELECT id, account_id, role, phone, email FROM notify_recipient WHERE {where}"
        " ORDER BY id",
        params,
    )
    out: dict[int, list[_Contact]] = {}
    for r in rows:
        out.setdefault(r["account_id"], []).append(
            _Contact(r["id"], Role(r["role"]), r["phone"], r["email"])
        )
    return out


async def _followers(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, list[tuple[str, Role]]]:
    """Per account: the openids (and binding roles) of its official-account identities."""
    where, params = in_list(conn, "b.account_id", ids, 1, "int")
    rows = await fetch(
        conn,
        "SELECT b.account_id, b.role, i.openid FROM account_binding b"
        " JOIN tenant_identity i ON i.id = b.identity_id"
        f" WHERE {where} AND i.app = 'official' ORDER BY b.account_id, i.id",
        params,
    )
    out: dict[int, list[tuple[str, Role]]] = {}
    for r in rows:
        out.setdefault(r["account_id"], []).append((r["openid"], Role(r["role"])))
    return out


async def _overrides(
    conn: BaseDBAsyncClient, organisation_ids: list[int], keys: set[str]
) -> dict[tuple[int, str], str]:
    if not organisation_ids or not keys:
        return {}
    where, params = in_list(conn, "organisation_id", organisation_ids, 1, "int")
    tpl, more = in_list(conn, '"key"', sorted(keys), 1 + len(params), "text")
    rows = await fetch(
        conn,
        f'SELECT organisation_id, "key", text FROM notify_template WHERE {where} AND {tpl}',
        params + more,
    )
    return {(r["organisation_id"], r["key"]): r["text"] for r in rows}


async def _quiet_hours(
    conn: BaseDBAsyncClient, site_ids: list[int], settings: NotifySettings
) -> dict[int, tuple[str, str]]:
    """Each site's quiet hours for calls: its own setting, else the configured default."""
    if not site_ids:
        return {}
    out = dict.fromkeys(site_ids, (settings.quiet_start, settings.quiet_end))
    where, params = in_list(conn, "site_id", site_ids, 1, "int")
    rows = await fetch(
        conn,
        f"SELECT site_id, quiet_start, quiet_end FROM notify_site_setting WHERE {where}",
        params,
    )
    out.update({r["site_id"]: (r["quiet_start"], r["quiet_end"]) for r in rows})
    return out


async def _sites(conn: BaseDBAsyncClient, ids: list[int]) -> dict[int, tuple[str, int]]:
    where, params = in_list(conn, "id", ids, 1, "int")
    rows = await fetch(conn, f"SELECT id, name, organisation_id FROM site WHERE {where}", params)
    return {r["id"]: (r["name"], r["organisation_id"]) for r in rows}


async def _staff_of(
    conn: BaseDBAsyncClient, site_id: int, organisation_id: int, template: str, kind: str
) -> list[tuple[str, str, str]]:
    """(phone for SMS, phone for calls, e-mail) of the active staff of the template's roles
    who may see the site (no site rows: every site of the organisation); "" where there is
    none or the staff member switched that channel off for the kind."""
    roles = STAFF_ROLES.get(template, ("org_admin", "site_admin"))
    where, params = in_list(conn, "u.role", list(roles), 3, "text")
    rows = await fetch(
        conn,
        "SELECT u.id, u.phone, u.email FROM admin_user u"
        f" WHERE u.organisation_id = $1 AND u.is_active AND {where}"
        " AND (u.phone <> '' OR u.email <> '')"
        " AND (NOT EXISTS (SELECT 1 FROM admin_user_site x WHERE x.admin_user_id = u.id)"
        "  OR EXISTS (SELECT 1 FROM admin_user_site x WHERE x.admin_user_id = u.id"
        "   AND x.site_id = $2)) ORDER BY u.id",
        [organisation_id, site_id, *params],
    )
    if not rows:
        return []
    prefs = await _preferences(conn, "staff_id", [r["id"] for r in rows])

    def on(r: Mapping[str, Any], channel: str, column: str) -> str:
        off = switched_off(prefs, (r["id"], Role.STAFF.value, 0), kind, channel)
        return "" if off else r[column]

    return [(on(r, "sms", "phone"), on(r, "voice", "phone"), on(r, "email", "email")) for r in rows]


async def _subscribed(
    conn: BaseDBAsyncClient, ids: list[int], template_ids: list[str]
) -> dict[int, dict[str, list[tuple[str, Role]]]]:
    """Per account, per subscribe template: the openids of bound mini-program users with an
    allowance left (the notifier spends it when it sends)."""
    if not template_ids:
        return {}
    where, params = in_list(conn, "b.account_id", ids, 1, "int")
    tpl, tpl_params = in_list(conn, "g.template_id", template_ids, 1 + len(params), "text")
    rows = await fetch(
        conn,
        "SELECT b.account_id, b.role, g.template_id, i.openid FROM account_binding b"
        " JOIN tenant_identity i ON i.id = b.identity_id"
        " JOIN subscribe_grant g ON g.identity_id = i.id"
        f" WHERE {where} AND {tpl} AND g.remaining > 0 AND i.app = 'miniapp'"
        " ORDER BY b.account_id, i.id",
        params + tpl_params,
    )
    out: dict[int, dict[str, list[tuple[str, Role]]]] = {}
    for r in rows:
        out.setdefault(r["account_id"], {}).setdefault(r["template_id"], []).append(
            (r["openid"], Role(r["role"]))
        )
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
