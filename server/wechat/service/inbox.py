"""One delivery from WeChat, from signed request to answer, within WeChat's 5 seconds.

1. `Wire.open` checks the signature (and decrypts) or refuses.
2. De-duplication: WeChat retries a message it got no answer to (three times, 5 s apart).
   The first delivery claims the message's key (MsgId; sender + CreateTime for events) in
   the store (Redis in production: every web worker sees it) and the reply is kept under
   it; a retry never runs the command again: it gets the kept reply, or "success" while the
   first is still being answered or when it was answered by a follow-up.
3. The command runs as a task; if it is not done after `reply_budget_s`, WeChat is answered
   "success" (it then neither retries nor shows "该公众号暂时无法提供服务") and the reply is sent
   as a customer-service message when ready (server.wechat.service.official).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from server.wechat.service import bot, people
from server.wechat.service.official import OfficialApi, OfficialApiError
from server.wechat.service.wire import Incoming, Wire

log = logging.getLogger(__name__)

SUCCESS = "success"  # WeChat's "received, no passive reply"
BUSY = "系统繁忙，请稍后再试。"
_PENDING, _SILENT, _REPLY = "P", "S", "R:"


class Inbox:
    def __init__(self, wire: Wire, chat: bot.Chat, api: OfficialApi | None) -> None:
        self.wire, self.chat, self.api = wire, chat, api
        self._tasks: set[asyncio.Task[str | None]] = set()
        self.followed_up = 0  # replies sent as customer-service messages (for /healthz, tests)

    async def receive(self, query: Mapping[str, str], body: bytes) -> str:
        """The HTTP body to answer WeChat with; `wire.Refused` for a request we refuse."""
        msg, envelope = self.wire.open(query, body)
        key = "seen:" + msg.dedup_key
        ttl = self.chat.settings.dedup_ttl_s
        store = self.chat.store
        if not await store.claim(key, _PENDING, ttl):
            prior = await store.get(key) or _SILENT
            if prior.startswith(_REPLY):
                return self.wire.reply(envelope, prior[len(_REPLY) :])
            return SUCCESS
        work: asyncio.Task[str] = asyncio.create_task(self._answer(msg))
        self._keep(work)
        try:
            text = await asyncio.wait_for(asyncio.shield(work), self.chat.settings.reply_budget_s)
        except TimeoutError:
            await store.put(key, _SILENT, ttl)
            self._keep(asyncio.create_task(self._follow_up(work, msg.openid)))
            return SUCCESS
        if not text:
            await store.put(key, _SILENT, ttl)
            return SUCCESS
        await store.put(key, _REPLY + text, ttl)
        return self.wire.reply(envelope, text)

    async def _answer(self, msg: Incoming) -> str:
        try:
            who = await people.person(msg.openid)
            if (
                self.api is not None
                and who.unionid is None
                and (not who.known or msg.event == "subscribe")
            ):
                who = await self._linked(msg.openid, who)
            return await bot.answer(self.chat, who, msg)
        except Exception:
            log.exception("wechat: answering %s failed", msg.dedup_key)
            return BUSY

    async def _linked(self, openid: str, who: people.Person) -> people.Person:
        """Ask WeChat for the follower's unionid (first contact, a new follow)."""
        assert self.api is not None
        try:
            unionid = await self.api.unionid(openid)
        except OfficialApiError as exc:
            log.warning("wechat: user/info for a follower failed: %s", exc)
            return who
        return await people.link_unionid(openid, unionid) if unionid else who

    async def _follow_up(self, work: asyncio.Task[str], openid: str) -> None:
        text = await work
        if not text:
            return
        if self.api is None:
            log.warning("wechat: a late reply was dropped: no official-account API configured")
            return
        try:
            await self.api.send_text(openid, text)
            self.followed_up += 1
        except OfficialApiError as exc:  # e.g. 45015: the follower wrote more than 48 h ago
            log.warning("wechat: customer-service message failed: %s", exc)

    def _keep(self, task: asyncio.Task[str] | asyncio.Task[None]) -> None:
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    async def drain(self) -> None:
        """Wait for the answers and follow-ups still under way (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
