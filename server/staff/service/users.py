"""Staff accounts: creation with an argon2id password hash (ASVS 11.4.2) and verification."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from tortoise.transactions import in_transaction

from server.audit.service import record
from server.core.errors import Conflict, ValidationFailed
from server.places.models import Organisation
from server.staff.models import AdminUser, StaffRole

# argon2id, t=2, m=19 MiB, p=1: the OWASP minimum the security checklist names.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerificationError:
        return False


async def create_admin(
    username: str,
    password: str,
    *,
    role: StaffRole = StaffRole.SUPERADMIN,
    organisation: Organisation | None = None,
    display_name: str = "",
    actor: str,
) -> AdminUser:
    """Create a staff user and its operation-log row (who created whom, with which role)."""
    if len(password) < 10:
        raise ValidationFailed("密码至少需要 10 个字符")
    if role != StaffRole.SUPERADMIN and organisation is None:
        raise ValidationFailed("除超级管理员外，必须指定所属组织")
    if await AdminUser.exists(username=username):
        raise Conflict(f"用户名 {username} 已存在")
    async with in_transaction():
        user = await AdminUser.create(
            username=username,
            password_hash=hash_password(password),
            role=role,
            organisation=organisation,
            display_name=display_name or username,
        )
        await record(
            actor,
            "staff.create",
            target_type="staff",
            target_id=user.id,
            reason=f"新建员工账号 {username}（{role.value}）",
            detail={
                "username": username,
                "role": role.value,
                "organisation_id": organisation.id if organisation else None,
            },
        )
        return user
