"""What staff set for the notifier: an organisation's own template texts (checked in the
Jinja2 sandbox on save: `templates.check_override`) and a site's quiet hours for voice calls
(an account's recipients and their preferences: recipients.py). Every change writes the
operation log in its transaction. Functions take the site ids of the caller's scope: a site
outside it is NotFound; the organisation is the site's.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import NotFound, ValidationFailed
from server.notify import templates
from server.notify.config import NotifySettings, parse_hhmm
from server.notify.models import (
    CHANNEL_LABELS,
    SiteSetting,
    TemplateOverride,
)
from server.places.models import Site

FREE_TEXT_LABEL = "邮件、语音、公众号模板消息（备注）及消息记录"


@dataclass(frozen=True, slots=True)
class TemplateView:
    key: str
    subject: str
    audience: str  # 租户 / 员工
    default: str
    override: str  # "" when the organisation uses ours
    variables: tuple[str, ...]
    preview: str  # the text in force, rendered with sample values


@dataclass(frozen=True, slots=True)
class QuietHours:
    site_id: int
    site: str
    start: str
    end: str


async def organisation_of(site_ids: list[int], site_id: int) -> int:
    """The organisation of a site in scope (NotFound otherwise)."""
    if site_id not in site_ids:
        raise NotFound("站点不存在")
    site = await Site.get_or_none(id=site_id)
    if site is None:
        raise NotFound("站点不存在")
    return site.organisation_id  # type: ignore[attr-defined]


async def template_views(site_ids: list[int], site_id: int) -> list[TemplateView]:
    """Every template with the organisation's override, if any."""
    organisation_id = await organisation_of(site_ids, site_id)
    own = dict(
        await TemplateOverride.filter(organisation_id=organisation_id).values_list("key", "text")
    )
    out = []
    for key, tpl in templates.TEMPLATES.items():
        text = own.get(key, "")
        try:
            preview = templates.render(key, templates.sample(key), text or None)
        except Exception:  # an override stored before a variable was renamed
            preview = templates.render(key, templates.sample(key))
        out.append(
            TemplateView(
                key,
                tpl.subject,
                "员工" if tpl.audience == "staff" else "租户",
                tpl.text,
                text,
                templates.variables(key),
                preview,
            )
        )
    return out


async def save_override(
    site_ids: list[int], site_id: int, key: str, text: str, *, actor: str
) -> str:
    """Store the organisation's text for `key` once the sandbox accepts it; returns the
    preview. ValidationFailed says what is wrong (syntax, unknown variable, `_` access)."""
    organisation_id = await organisation_of(site_ids, site_id)
    try:
        preview = templates.check_override(key, text)
    except templates.TemplateRefused as exc:
        raise ValidationFailed(str(exc)) from None
    async with in_transaction():
        found = await TemplateOverride.get_or_none(organisation_id=organisation_id, key=key)
        if found is None:
            await TemplateOverride.create(
                organisation_id=organisation_id, key=key, text=text, updated_by=actor
            )
        else:
            found.text, found.updated_by = text, actor
            await found.save()
        await record(
            actor, "notify.template", target_type="notify_template", target_id=key,
            site_id=site_id, reason=f"修改消息模板 {templates.TEMPLATES[key].subject}",
            detail={"organisation": organisation_id, "text": text},
        )  # fmt: skip
    return preview


async def drop_override(site_ids: list[int], site_id: int, key: str, *, actor: str) -> None:
    """Back to our text for `key`."""
    organisation_id = await organisation_of(site_ids, site_id)
    async with in_transaction():
        deleted = await TemplateOverride.filter(organisation_id=organisation_id, key=key).delete()
        if deleted:
            await record(
                actor, "notify.template", target_type="notify_template", target_id=key,
                site_id=site_id, reason="恢复默认消息模板",
                detail={"organisation": organisation_id},
            )  # fmt: skip


async def quiet_hours(site_ids: list[int], site_id: int) -> QuietHours:
    await organisation_of(site_ids, site_id)
    site = await Site.get(id=site_id)
    own = await SiteSetting.get_or_none(site_id=site_id)
    ns = NotifySettings()
    if own is None:
        return QuietHours(site_id, site.name, ns.quiet_start, ns.quiet_end)
    return QuietHours(site_id, site.name, own.quiet_start, own.quiet_end)


async def set_quiet_hours(
    site_ids: list[int], site_id: int, start: str, end: str, *, actor: str
) -> QuietHours:
    """The site's quiet hours for voice calls (HH:MM, local; equal times: none)."""
    await organisation_of(site_ids, site_id)
    try:
        start_t, end_t = parse_hhmm(start), parse_hhmm(end)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    start, end = start_t.strftime("%H:%M"), end_t.strftime("%H:%M")
    async with in_transaction():
        found = await SiteSetting.get_or_none(site_id=site_id)
        if found is None:
            await SiteSetting.create(site_id=site_id, quiet_start=start, quiet_end=end)
        else:
            found.quiet_start, found.quiet_end = start, end
            await found.save()
        await record(
            actor, "notify.quiet_hours", target_type="site", target_id=site_id,
            site_id=site_id, reason=f"语音免打扰时段 {start}–{end}",
        )  # fmt: skip
    return await quiet_hours(site_ids, site_id)


CHANNEL_NAMES = {c.value: label for c, label in CHANNEL_LABELS.items()}
