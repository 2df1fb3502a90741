"""SMS binding: site + account number → a 6-digit code to the phone on file → bound.

Only an HMAC of the code is stored (BindingCode.code_hash, keyed by the server's secret and
tied to identity and account). A code lives `sms_code_ttl_s` (5 min) and dies after
`sms_max_tries` (5) tries: each try is counted by one atomic UPDATE … WHERE tries < max, so
parallel guesses cannot get a sixth. Sending is limited per phone and per identity (1 a
minute, 10 a day); the BindingCode rows are the send log the limits count.

Messages go through an `SmsSender`. Embedded mode uses `SandboxSmsSender` (logs the text,
keeps the last code per phone for tests and the demo); production has no SMS channel until
the notifier's (issue #16) and answers 503 sms_unavailable (`NoSmsChannel`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tortoise.expressions import F
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from server.accounts.config import TenantSettings
from server.accounts.errors import (
    CodeExpired,
    CodeWrong,
    NoPhoneOnFile,
    SmsUnavailable,
    TooManyCodes,
    TooManyTries,
)
from server.accounts.models import (
    Account,
    AccountBinding,
    BindingCode,
    BindingRole,
    BindingVia,
    TenantIdentity,
)
from server.accounts.service.binding import bind, open_account
from server.accounts.service.keys import derive

log = logging.getLogger(__name__)
DAY = timedelta(days=1)


class SmsSender(Protocol):
    async def send_code(self, phone: str, code: str, *, minutes: int) -> None:
        """Deliver the binding code to `phone`, or raise SmsUnavailable."""
        ...


class SandboxSmsSender:
    """Embedded mode's SMS: the message is logged, the last code per phone kept."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    async def send_code(self, phone: str, code: str, *, minutes: int) -> None:
        self._last[phone] = code
        log.info("SMS (sandbox) to %s: 【水电】绑定验证码 %s，%s 分钟内有效。", mask(phone), code,
                 minutes)  # fmt: skip

    def last_code(self, phone: str) -> str | None:
        return self._last.get(phone)


class NoSmsChannel:
    """Production before the notifier's SMS channel: binding by SMS is unavailable."""

    async def send_code(self, phone: str, code: str, *, minutes: int) -> None:
        raise SmsUnavailable("短信验证暂不可用，请扫描物业提供的绑定二维码")


def sms_sender(mode: str) -> SmsSender:
    return SandboxSmsSender() if mode == "embedded" else NoSmsChannel()


def mask(phone: str) -> str:
    """138****5678: enough for the tenant to recognise their phone, not to learn it."""
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def code_hash(key: bytes, identity_id: int, account_id: int, code: str) -> str:
    """HMAC-SHA256 of the code, tied to who may use it for which account."""
    message = f"{identity_id}:{account_id}:{code}".encode()
    return hmac.new(derive(key, "sms-code"), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class CodeSent:
    phone_masked: str
    expires_in: int
    resend_after: int


async def send_code(
    sender: SmsSender, key: bytes, identity_id: int, site_id: int, number: str,
    *, limits: TenantSettings, now: datetime | None = None,
) -> CodeSent:  # fmt: skip
    """Send a fresh code for binding `identity_id` to the account; 429 when a limit is hit."""
    now = now or datetime.now(UTC)
    account = await open_account(site_id, number)
    phone = account.phone.strip()
    if not phone:
        raise NoPhoneOnFile("该户未登记手机号，请联系物业绑定", site_id=site_id, number=number)
    code = f"{secrets.randbelow(1_000_000):06d}"
    async with in_transaction():
        # Parallel sends for this identity or account wait here, so each counts the others.
        await TenantIdentity.select_for_update().get(id=identity_id)
        await Account.select_for_update().get(id=account.id)
        await _check_limits(BindingCode.filter(phone=phone), now, limits)
        await _check_limits(BindingCode.filter(identity_id=identity_id), now, limits)
        row = await BindingCode.create(
            identity_id=identity_id, account_id=account.id, phone=phone,
            code_hash=code_hash(key, identity_id, account.id, code),
            expires_at=now + timedelta(seconds=limits.sms_code_ttl_s), created_at=now,
        )  # fmt: skip
    try:
        await sender.send_code(phone, code, minutes=limits.sms_code_ttl_s // 60)
    except SmsUnavailable:  # nothing was sent: it counts against no limit
        await row.delete()
        raise
    return CodeSent(mask(phone), limits.sms_code_ttl_s, limits.sms_resend_s)


async def _check_limits(sent: QuerySet[BindingCode], now: datetime, limits: TenantSettings) -> None:
    """One send per `sms_resend_s`, `sms_daily_max` per rolling day, in the rows `sent`."""
    window = sent.filter(created_at__gt=now - DAY).order_by("-created_at")
    recent = await window.values_list("created_at", flat=True)
    if recent:
        wait = (recent[0] + timedelta(seconds=limits.sms_resend_s) - now).total_seconds()
        if wait > 0:
            raise TooManyCodes("验证码发送过于频繁，请稍后再试", retry_after=int(wait) + 1)
    if len(recent) >= limits.sms_daily_max:
        oldest = recent[limits.sms_daily_max - 1]
        wait = (oldest + DAY - now).total_seconds()
        raise TooManyCodes("今日验证码次数已用完，请明天再试", retry_after=max(int(wait) + 1, 1))


async def verify_code(
    key: bytes, identity_id: int, site_id: int, number: str, code: str,
    *, limits: TenantSettings, actor: str, now: datetime | None = None,
) -> AccountBinding:  # fmt: skip
    """Check the latest code sent for this identity and account; bind as owner when right."""
    now = now or datetime.now(UTC)
    account = await open_account(site_id, number)
    row = (
        await BindingCode.filter(
            identity_id=identity_id, account_id=account.id, used_at__isnull=True
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if row is None or row.expires_at <= now:
        raise CodeExpired("验证码已过期，请重新获取")
    tries = await _count_try(row, limits.sms_max_tries)
    expected = code_hash(key, identity_id, account.id, code.strip())
    if not hmac.compare_digest(expected, row.code_hash):
        raise CodeWrong("验证码不正确", tries_left=limits.sms_max_tries - tries)
    claimed = await BindingCode.filter(id=row.id, used_at__isnull=True).update(used_at=now)
    if not claimed:
        raise CodeExpired("验证码已使用，请重新获取")
    return await bind(identity_id, account, role=BindingRole.OWNER, via=BindingVia.SMS,
                      actor=actor)  # fmt: skip


async def _count_try(row: BindingCode, max_tries: int) -> int:
    """Count one try atomically; the code is dead once `max_tries` were made."""
    counted = await BindingCode.filter(id=row.id, tries__lt=max_tries, used_at__isnull=True).update(
        tries=F("tries") + 1
    )
    if not counted:
        raise TooManyTries("验证码错误次数过多，请重新获取")
    return (await BindingCode.get(id=row.id)).tries
