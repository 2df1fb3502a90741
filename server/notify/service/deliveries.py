"""The delivery log for staff (the admin page comes with another change): search messages
within the sites a staff member may see, and resend one.

Every function takes `site_ids`, the sites the caller may see (server.staff.service.scope);
a message of another site answers NotFound, as if it did not exist. A resend is a new
message (same recipient, channel, template and text, queued now), so the failed attempt
stays in the log as it happened; it is written with its operation-log entry in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import NotFound
from server.core.paging import Page, Paging, paginate
from server.notify.models import Channel, Message, MessageState


@dataclass(frozen=True, slots=True)
class Search:
    account_id: int | None = None
    phone: str = ""  # the recipient, or its beginning
    channel: Channel | None = None
    state: MessageState | None = None


async def search(site_ids: list[int], query: Search, paging: Paging) -> Page[Message]:
    """Messages, newest first."""
    rows = Message.filter(site_id__in=site_ids)
    if query.account_id is not None:
        rows = rows.filter(account_id=query.account_id)
    if query.phone:
        rows = rows.filter(recipient__startswith=query.phone.strip())
    if query.channel is not None:
        rows = rows.filter(channel=query.channel)
    if query.state is not None:
        rows = rows.filter(state=query.state)
    return await paginate(rows.order_by("-id"), paging)


async def message(site_ids: list[int], message_id: int) -> Message:
    found = await Message.get_or_none(id=message_id, site_id__in=site_ids)
    if found is None:
        raise NotFound("消息不存在")
    return found


async def resend(site_ids: list[int], message_id: int, *, actor: str) -> Message:
    """Queue the message again as a new one; returns it."""
    now = datetime.now(UTC)
    async with in_transaction():
        old = await message(site_ids, message_id)
        new = await Message.create(
            site_id=old.site_id, account_id=old.account_id, channel=old.channel,
            recipient=old.recipient, template=old.template, topic=old.topic,
            params=old.params, text=old.text, next_attempt_at=now, created_at=now,
            updated_at=now,
        )  # fmt: skip
        await record(
            actor, "重发消息", target_type="notify_message", target_id=new.id,
            site_id=old.site_id, reason=f"重发第 {old.id} 条消息",
            detail={"from": old.id, "channel": old.channel.value}, at=now,
        )  # fmt: skip
    return new
