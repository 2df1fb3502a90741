"""A previewed workbook waits server-side for its staff member and site only (memory and
Redis), and is gone once imported."""

from __future__ import annotations

import pytest

from server.core.sessions import KeyedSessions
from server.imports.service import drafts
from server.imports.service.drafts import Draft, DraftExpired


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis: object) -> KeyedSessions:
    return drafts.draft_store(None if request.param == "memory" else redis)


async def test_a_draft_is_its_staff_members_for_its_site(store: KeyedSessions) -> None:
    data = bytes(range(256)) * 100  # any bytes come back as they went in
    key = await drafts.keep(store, 7, Draft(3, "园区.xlsx", data))
    assert await drafts.peek(store, key, 7, 3) == Draft(3, "园区.xlsx", data)
    for staff_id, site_id, their_key in ((8, 3, key), (7, 4, key), (7, 3, ""), (7, 3, "x")):
        with pytest.raises(DraftExpired):
            await drafts.peek(store, their_key, staff_id, site_id)
    await drafts.forget(store, key)
    with pytest.raises(DraftExpired, match="预览已过期"):
        await drafts.peek(store, key, 7, 3)
