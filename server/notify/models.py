"""Messages and per-account channel preferences (written by server/notify/ only)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WECHAT = "wechat"  # mini-program subscribe message (订阅消息)


class MessageState(StrEnum):
    QUEUED = "queued"  # waits for `next_attempt_at`
    SENDING = "sending"  # claimed by a notifier until `claimed_until`
    SENT = "sent"  # the provider accepted it
    DELIVERED = "delivered"  # the provider reported delivery (where it does)
    FAILED = "failed"  # permanently, or out of attempts; `error_code` says why


class Message(Model):
    """One message to one recipient over one channel: its row is its delivery log."""

    id = fields.BigIntField(primary_key=True)
    site: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Site", related_name="messages", on_delete=fields.RESTRICT
    )
    account: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Account", related_name="messages", on_delete=fields.CASCADE, null=True
    )
    channel = fields.CharEnumField(Channel, max_length=8)
    recipient = fields.CharField(max_length=128)  # phone, e-mail address or openid
    template = fields.CharField(max_length=48)  # templates.TEMPLATES key, e.g. "alarm.balance"
    # What de-duplication compares: the template and what tells its events apart (the alarm
    # level: "alarm.balance.2"), so level 2 is not silenced by a level 1 sent just before.
    topic = fields.CharField(max_length=64)
    params = fields.JSONField(default=dict)
    text = fields.CharField(max_length=500)  # rendered, as the recipient reads it
    state = fields.CharEnumField(MessageState, max_length=10, default=MessageState.QUEUED)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    claimed_until = fields.DatetimeField(null=True)
    provider = fields.CharField(max_length=16, default="")
    provider_id = fields.CharField(max_length=64, default="")  # BizId, SerialNo, msgid …
    error_code = fields.CharField(max_length=64, default="")  # the provider's own code
    error_reason = fields.CharField(max_length=300, default="")
    # An event's key: enqueueing the same event twice adds nothing.
    dedup_key = fields.CharField(max_length=200, null=True, unique=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notify_message"
        # The claim's partial index and the (account, template) look-up: migration 0018.


class Preference(Model):
    """An account's choice for one channel (no row: the channel is on)."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="notify_preferences", on_delete=fields.CASCADE
    )
    channel = fields.CharEnumField(Channel, max_length=8)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "notify_preference"
        unique_together = (("account", "channel"),)
