"""Who is writing: a follower's openid is a TenantIdentity of the official account
(TenantApp.OFFICIAL). Openids differ per app; when WeChat gives a unionid (both apps under
one open-platform account) and the same person has logged into the mini-program, the
chatbot acts as that mini-program identity — one person, one set of bindings, so what they
bound in either place shows in both and an unbinding in the mini-program applies here at
once. Without a unionid the follower binds in the chatbot (绑定), through the same binding
service, and the bindings belong to the official-account identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from server.accounts.models import TenantApp, TenantIdentity
from server.accounts.service.login import WechatUser, upsert_identity


@dataclass(frozen=True, slots=True)
class Person:
    follower_id: int  # the official account's identity
    identity_id: int  # whose bindings the chatbot uses (the mini-program's when linked)
    known: bool  # False: first seen just now (its unionid is worth asking for)
    unionid: str | None


async def person(openid: str) -> Person:
    """The follower and the identity they act as; created on first contact."""
    identity = await TenantIdentity.get_or_none(app=TenantApp.OFFICIAL, openid=openid)
    known = identity is not None
    if identity is None:
        identity = await upsert_identity(
            TenantApp.OFFICIAL, WechatUser(openid, None), now=datetime.now(UTC)
        )
    return Person(identity.id, await _acting(identity), known, identity.unionid)


async def link_unionid(openid: str, unionid: str) -> Person:
    """Record the follower's unionid (from user/info); they now act as their mini-program
    identity if they have one."""
    identity = await upsert_identity(
        TenantApp.OFFICIAL, WechatUser(openid, unionid), now=datetime.now(UTC)
    )
    return Person(identity.id, await _acting(identity), True, identity.unionid)


async def _acting(identity: TenantIdentity) -> int:
    if not identity.unionid:
        return identity.id
    twin = (
        await TenantIdentity.filter(unionid=identity.unionid, app=TenantApp.MINIAPP)
        .order_by("id")
        .first()
    )
    return twin.id if twin is not None else identity.id
