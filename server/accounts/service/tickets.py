"""QR binding: staff generate a one-use, expiring ticket for (account, role); the tenant
scans it and is bound with that role.

The QR carries `SDB1.<nonce>.<expiry>.<signature>`: the nonce names a BindingTicket row,
the expiry is Unix seconds, the signature is HMAC-SHA256 (base64url, unpadded) of
`SDB1.<nonce>.<expiry>` under a key derived from the server's secret. A forged or damaged
token fails the signature (compared in constant time) before any row is read; one use is
enforced by claiming the row with UPDATE … WHERE used_at IS NULL, so two scans racing for
one ticket bind once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from server.accounts.errors import AccountNotFound, TicketExpired, TicketInvalid, TicketUsed
from server.accounts.models import (
    Account,
    AccountBinding,
    AccountStatus,
    BindingRole,
    BindingTicket,
    BindingVia,
)
from server.accounts.service.binding import bind
from server.accounts.service.keys import derive
from server.audit.service import record

PREFIX = "SDB1"


def _key(secret: bytes) -> bytes:
    return derive(secret, "binding-ticket")


def _sign(secret: bytes, payload: str) -> str:
    digest = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_ticket(secret: bytes, nonce: str, expires_at: datetime) -> str:
    payload = f"{PREFIX}.{nonce}.{int(expires_at.timestamp())}"
    return f"{payload}.{_sign(secret, payload)}"


def read_ticket(secret: bytes, token: str) -> tuple[str, datetime]:
    """(nonce, expiry) of a token we signed; TicketInvalid for anything else."""
    parts = token.strip().split(".")
    if len(parts) != 4 or parts[0] != PREFIX or not parts[2].isdigit():
        raise TicketInvalid("二维码无效，请向物业索取新的绑定码")
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_sign(secret, payload), parts[3]):
        raise TicketInvalid("二维码无效，请向物业索取新的绑定码")
    return parts[1], datetime.fromtimestamp(int(parts[2]), UTC)


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    token: str
    account: Account
    site_name: str
    role: BindingRole
    expires_at: datetime


async def issue_ticket(
    secret: bytes, site_id: int, number: str, *, role: BindingRole, hours: int, actor: str,
    now: datetime | None = None,
) -> IssuedTicket:  # fmt: skip
    """A binding ticket for the open account `number` of the site, valid `hours`."""
    now = now or datetime.now(UTC)
    account = await Account.get_or_none(
        site_id=site_id, number=number, status=AccountStatus.OPEN
    ).prefetch_related("site")
    if account is None:
        raise AccountNotFound("未找到该户号", site_id=site_id, number=number)
    expires_at = (now + timedelta(hours=hours)).replace(microsecond=0)
    nonce = secrets.token_urlsafe(16)
    async with in_transaction():
        await BindingTicket.create(
            nonce=nonce, account_id=account.id, role=role, expires_at=expires_at,
            created_by=actor[:64],
        )  # fmt: skip
        await record(
            actor, "tenant.qr_ticket", target_type="account", target_id=account.id,
            site_id=site_id, detail={"role": role.value, "expires_at": expires_at.isoformat()},
        )  # fmt: skip
    token = sign_ticket(secret, nonce, expires_at)
    return IssuedTicket(token, account, account.site.name, role, expires_at)


async def redeem_ticket(
    secret: bytes, token: str, identity_id: int, *, actor: str, now: datetime | None = None
) -> AccountBinding:
    """Bind the identity with the ticket's role; the ticket is then used up."""
    now = now or datetime.now(UTC)
    nonce, expires_at = read_ticket(secret, token)
    if expires_at <= now:
        raise TicketExpired("二维码已过期，请向物业索取新的绑定码")
    ticket = await BindingTicket.get_or_none(nonce=nonce).prefetch_related("account")
    if ticket is None:
        raise TicketInvalid("二维码无效，请向物业索取新的绑定码")
    if ticket.expires_at <= now:
        raise TicketExpired("二维码已过期，请向物业索取新的绑定码")
    if ticket.account.status is not AccountStatus.OPEN:
        raise AccountNotFound("该户已销户", account_id=ticket.account_id)
    claimed = await BindingTicket.filter(id=ticket.id, used_at__isnull=True).update(
        used_at=now, used_by_id=identity_id
    )
    if not claimed:
        raise TicketUsed("该绑定码已被使用，请向物业索取新的绑定码")
    return await bind(identity_id, ticket.account, role=ticket.role, via=BindingVia.QR, actor=actor)
