"""Creating a staff user leaves an operation-log row; a refused creation leaves none."""

from __future__ import annotations

import pytest

from server.audit.models import OperationLog
from server.audit.service import verify_chain
from server.core.errors import Conflict
from server.staff.models import AdminUser, StaffRole
from server.staff.service.users import create_admin

pytestmark = pytest.mark.usefixtures("db")


async def test_staff_creation_is_logged() -> None:
    user = await create_admin("zhang", "s" * 12, role=StaffRole.SUPERADMIN, actor="cli:root")
    (row,) = await OperationLog.filter(action="staff.create")
    assert (row.actor, row.target_type, row.target_id) == ("cli:root", "staff", str(user.id))
    assert row.detail == {"username": "zhang", "role": "superadmin", "organisation_id": None}
    assert "s" * 12 not in str(row.detail) + row.reason  # never the password
    with pytest.raises(Conflict):
        await create_admin("zhang", "t" * 12, actor="cli:root")
    assert await OperationLog.filter(action="staff.create").count() == 1
    assert await AdminUser.all().count() == 1
    assert await verify_chain() == []
