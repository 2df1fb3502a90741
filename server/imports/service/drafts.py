"""Uploaded workbooks kept between their preview and their commit.

The commit imports the very bytes the staff member previewed, never a second upload: the
preview stores the file server-side under an opaque key (the keyed session store, Redis in
production, memory embedded) that belongs to that staff member and that site, for
`DRAFT_TTL_S`; the confirm form carries only the key. A draft ends when it is imported.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from server.core.errors import NotFound
from server.core.sessions import KeyedSessions, keyed_sessions

PREFIX = "simport:"
DRAFT_TTL_S = 30 * 60


@dataclass(frozen=True, slots=True)
class Draft:
    site_id: int
    file_name: str
    data: bytes


class DraftExpired(NotFound):
    code = "import_draft_expired"

    def __init__(self) -> None:
        super().__init__("预览已过期或已导入，请重新上传文件")


def draft_store(redis: Any) -> KeyedSessions:
    return keyed_sessions(redis, PREFIX, DRAFT_TTL_S)


async def keep(store: KeyedSessions, staff_id: int, draft: Draft) -> str:
    """Store `draft` for this staff member; the key the confirm form carries."""
    data = {
        "site_id": draft.site_id,
        "file_name": draft.file_name,
        "data": base64.b64encode(draft.data).decode(),
    }
    key, _ = await store.issue(staff_id, data)
    return key


async def peek(store: KeyedSessions, key: str, staff_id: int, site_id: int) -> Draft:
    """The draft under `key` if it is this staff member's, for this site; else DraftExpired."""
    session = await store.resolve(key) if key else None
    if session is None or session.owner_id != staff_id or session.data["site_id"] != site_id:
        raise DraftExpired()
    data = session.data
    return Draft(data["site_id"], data["file_name"], base64.b64decode(data["data"]))


async def forget(store: KeyedSessions, key: str) -> None:
    """End the draft once it is imported (one commit per preview)."""
    await store.revoke(key)
