"""The delivery log for staff (admin/notify.py): search messages within the sites a staff
member may see (account number, recipient, channel, state, site, dates), and resend one.

Every function takes `site_ids`, the sites the caller may see (server.staff.service.scope);
a message of another site answers NotFound, as if it did not exist. A resend is a new
message (same recipient, channel, template and text, queued now), so the failed attempt
stays in the log as it happened; it is written with its operation-log entry in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import NotFound
from server.core.paging import Page, Paging, paginate
from server.notify.models import CHANNEL_LABELS, Channel, Message, MessageState, Role

STATE_LABELS = {
    MessageState.QUEUED: "排队中",
    MessageState.SENDING: "发送中",
    MessageState.SENT: "已发送",
    MessageState.DELIVERED: "已送达",
    MessageState.FAILED: "失败",
}
ROLE_LABELS = {Role.OWNER: "户主", Role.ACCOUNTANT: "财务", Role.STAFF: "员工"}
CHANNELS = {c.value: label for c, label in CHANNEL_LABELS.items()}  # for the page's filters
STATES = {s.value: label for s, label in STATE_LABELS.items()}


@dataclass(frozen=True, slots=True)
class Search:
    account_id: int | None = None
    phone: str = ""  # the recipient, or its beginning
    channel: Channel | None = None
    state: MessageState | None = None
    account: str = ""  # the account number, or its beginning
    site_id: int | None = None
    since: date | None = None  # local days, inclusive
    until: date | None = None

    @classmethod
    def of(
        cls, *, account: str = "", phone: str = "", channel: str = "", state: str = "",
        site_id: int | None = None, since: date | None = None, until: date | None = None,
    ) -> Search:  # fmt: skip
        """From the page's text filters; an unknown channel or state is as if absent."""
        return cls(
            phone=phone[:128], account=account[:32],
            channel=Channel(channel) if channel in CHANNELS else None,
            state=MessageState(state) if state in STATES else None,
            site_id=site_id, since=since, until=until,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    at: datetime
    site: str
    account: str  # number and tenant, or "" for a staff message
    channel: str
    channel_label: str
    role_label: str
    recipient: str
    template: str
    text: str
    state: str
    state_label: str
    attempts: int
    provider: str
    error_code: str
    error_reason: str
    sent_at: datetime | None
    delivered_at: datetime | None
    due: datetime | None = None  # a queued message's next attempt (quiet hours, back-off)

    @property
    def resendable(self) -> bool:
        return self.state == MessageState.FAILED.value


def _filtered(site_ids: list[int], query: Search, tz: ZoneInfo):  # type: ignore[no-untyped-def]
    rows = Message.filter(site_id__in=site_ids)
    if query.site_id is not None:
        rows = rows.filter(site_id=query.site_id)
    if query.account_id is not None:
        rows = rows.filter(account_id=query.account_id)
    if query.account:
        rows = rows.filter(account__number__startswith=query.account.strip())
    if query.phone:
        rows = rows.filter(recipient__startswith=query.phone.strip())
    if query.channel is not None:
        rows = rows.filter(channel=query.channel)
    if query.state is not None:
        rows = rows.filter(state=query.state)
    if query.since is not None:
        rows = rows.filter(created_at__gte=datetime.combine(query.since, time(0), tz))
    if query.until is not None:
        end = datetime.combine(query.until, time(0), tz) + timedelta(days=1)
        rows = rows.filter(created_at__lt=end)
    return rows


async def search(
    site_ids: list[int], query: Search, paging: Paging, tz: ZoneInfo | None = None
) -> Page[Message]:
    """Messages, newest first."""
    rows = _filtered(site_ids, query, tz or ZoneInfo("Asia/Shanghai"))
    return await paginate(rows.order_by("-id"), paging)


async def search_rows(
    site_ids: list[int], query: Search, paging: Paging, tz: ZoneInfo
) -> Page[DeliveryRow]:
    """The delivery log page's rows (names and labels resolved, times in `tz`)."""
    rows = _filtered(site_ids, query, tz).prefetch_related("site", "account")
    page = await paginate(rows.order_by("-id"), paging)

    def row(m: Message) -> DeliveryRow:
        account = f"{m.account.number} {m.account.tenant_name}" if m.account else ""
        local = lambda t: t.astimezone(tz) if t else None  # noqa: E731
        return DeliveryRow(
            m.id, m.created_at.astimezone(tz), m.site.name, account, m.channel.value,
            CHANNEL_LABELS[m.channel], ROLE_LABELS.get(m.role, ""), m.recipient, m.template,
            m.text, m.state.value, STATE_LABELS[m.state], m.attempts, m.provider, m.error_code,
            m.error_reason, local(m.sent_at), local(m.delivered_at),
            local(m.next_attempt_at) if m.state is MessageState.QUEUED else None,
        )  # fmt: skip

    return page.map(row)


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
            recipient=old.recipient, role=old.role, template=old.template, topic=old.topic,
            params=old.params, text=old.text, next_attempt_at=now, created_at=now,
            updated_at=now,
        )  # fmt: skip
        await record(
            actor, "重发消息", target_type="notify_message", target_id=new.id,
            site_id=old.site_id, reason=f"重发第 {old.id} 条消息",
            detail={"from": old.id, "channel": old.channel.value}, at=now,
        )  # fmt: skip
    return new
