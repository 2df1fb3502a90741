"""Subscribe-message allowances. WeChat's subscribe grants are one-time: each "accept" in
wx.requestSubscribeMessage lets us send one message with that template. `record_results`
adds one allowance per accept (an atomic `remaining + 1`); the notifier calls
`spend_allowance` before each message (an atomic `remaining - 1` where it is above zero).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from server.accounts.config import SubscribeTemplate
from server.accounts.models import SubscribeGrant
from server.core.errors import ValidationFailed

ACCEPT = "accept"
ERR_MSG = "errMsg"  # wx.requestSubscribeMessage's own status, sent along as is
RESULTS = {"accept", "reject", "ban", "filter"}


@dataclass(frozen=True, slots=True)
class Allowance:
    template_id: str
    purpose: str
    title: str
    remaining: int


async def allowances(identity_id: int, templates: list[SubscribeTemplate]) -> list[Allowance]:
    """Every configured template with the identity's remaining allowance (0 when none)."""
    rows = await SubscribeGrant.filter(identity_id=identity_id).values_list(
        "template_id", "remaining"
    )
    remaining = dict(rows)
    return [
        Allowance(t.template_id, t.purpose, t.title, int(remaining.get(t.template_id, 0)))
        for t in templates
    ]


async def record_results(
    identity_id: int, results: dict[str, str], templates: list[SubscribeTemplate]
) -> list[Allowance]:
    """wx.requestSubscribeMessage's answer as is (its `errMsg` ignored): each `accept` adds one
    allowance. A template
    id we did not configure is refused (422) and nothing is recorded."""
    known = {t.template_id for t in templates}
    results = {k: v for k, v in results.items() if k != ERR_MSG}
    for template_id, result in results.items():
        if template_id not in known:
            raise ValidationFailed("不认识的订阅消息模板", field=f"results.{template_id}")
        if result not in RESULTS:
            raise ValidationFailed("取值不在允许范围内", field=f"results.{template_id}")
    for template_id, result in results.items():
        if result == ACCEPT:
            await _add_one(identity_id, template_id)
    return await allowances(identity_id, templates)


async def _add_one(identity_id: int, template_id: str) -> None:
    grants = SubscribeGrant.filter(identity_id=identity_id, template_id=template_id)
    if await grants.update(remaining=F("remaining") + 1):
        return
    try:
        await SubscribeGrant.create(identity_id=identity_id, template_id=template_id, remaining=1)
    except IntegrityError:  # created by a parallel request in between: count on its row
        await grants.update(remaining=F("remaining") + 1)


async def spend_allowance(identity_id: int, template_id: str) -> bool:
    """Use one allowance to send a message; False when none is left (do not send)."""
    spent = await SubscribeGrant.filter(
        identity_id=identity_id, template_id=template_id, remaining__gt=0
    ).update(remaining=F("remaining") - 1)
    return bool(spent)
