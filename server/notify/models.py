"""Messages and per-account channel preferences (written by server/notify/ only)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    WECHAT = "wechat"  # mini-program subscribe message (订阅消息)
    VOICE = "voice"  # Alibaba Cloud voice notification (语音通知, SingleCallByTts)
    OFFICIAL = "official"  # official-account template message (公众号模板消息)


CHANNEL_LABELS = {
    Channel.SMS: "短信",
    Channel.EMAIL: "邮件",
    Channel.WECHAT: "小程序订阅消息",
    Channel.VOICE: "语音电话",
    Channel.OFFICIAL: "公众号模板消息",
}


class Role(StrEnum):
    """Who a message is for: an account's owner (户主), its accountant (财务), or staff."""

    OWNER = "owner"
    ACCOUNTANT = "accountant"
    STAFF = "staff"


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
    role = fields.CharEnumField(Role, max_length=10, default=Role.OWNER)
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
    # Where the provider reports delivery (SMS receipts): when it did, and how often we asked.
    delivered_at = fields.DatetimeField(null=True)
    receipt_polls = fields.IntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "notify_message"
        # The claim's partial index and the (account, template) look-up: migration 0018.


class Contact(Model):
    """One more recipient of an account's messages beside its owner (户主: the account's phone
    and bound WeChat users): its accountant (财务) or a member of staff (员工) who wants them,
    reached by phone (SMS, voice) and e-mail."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Account", related_name="notify_contacts", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=10, default=Role.ACCOUNTANT)
    name = fields.CharField(max_length=32)
    phone = fields.CharField(max_length=20, default="")
    email = fields.CharField(max_length=128, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "notify_recipient"


class Preference(Model):
    """One recipient's choice for one channel and one message kind (templates.KINDS; "" for
    every kind, which a kind's own row overrides). No row: the channel is on. A tenant
    recipient is (account, role: owner or accountant — their bound WeChat users; the owner's
    phone) or (account, contact); a staff recipient is (staff, role staff) and holds for every
    site the staff member is reached about. Unique per (account, staff, contact, role, kind,
    channel): an expression index of migration 0031 (NULLs compared as 0)."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Account", related_name="notify_preferences", on_delete=fields.CASCADE, null=True
    )
    staff: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.AdminUser", related_name="notify_preferences", on_delete=fields.CASCADE, null=True
    )
    contact: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Contact", related_name="preferences", on_delete=fields.CASCADE, null=True
    )
    role = fields.CharEnumField(Role, max_length=10, default=Role.OWNER)
    kind = fields.CharField(max_length=16, default="")
    channel = fields.CharEnumField(Channel, max_length=8)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "notify_preference"


class TemplateOverride(Model):
    """An organisation's own text for one template key (Jinja2, rendered sandboxed): what its
    tenants and staff read by e-mail, official-account message, voice and in the log."""

    id = fields.IntField(primary_key=True)
    organisation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Organisation", related_name="notify_templates", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=48)
    text = fields.CharField(max_length=500)
    updated_by = fields.CharField(max_length=64, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "notify_template"
        unique_together = (("organisation", "key"),)


class SiteSetting(Model):
    """A site's notifier settings: the voice channel's quiet hours (local time, Asia/Shanghai;
    start after end means overnight). No row: the defaults (22:00–08:00)."""

    id = fields.IntField(primary_key=True)
    site: fields.OneToOneRelation = fields.OneToOneField(
        "models.Site", related_name="notify_setting", on_delete=fields.CASCADE
    )
    quiet_start = fields.CharField(max_length=5, default="22:00")
    quiet_end = fields.CharField(max_length=5, default="08:00")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "notify_site_setting"
