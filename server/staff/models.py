"""Property staff who log in to the admin panel, scoped to an organisation and its sites."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class StaffRole(StrEnum):
    SUPERADMIN = "superadmin"  # platform operator: every organisation
    ORG_ADMIN = "org_admin"  # head office: every site of its organisation
    FINANCE = "finance"  # 财务: money, reports
    OPERATOR = "operator"  # 运维: meters, control
    SITE_ADMIN = "site_admin"  # 物业管理员 of some sites
    VIEWER = "viewer"  # 只读: sees its scope, changes nothing


ROLE_LABELS = {
    StaffRole.SUPERADMIN: "超级管理员",
    StaffRole.ORG_ADMIN: "集团管理员",
    StaffRole.FINANCE: "财务",
    StaffRole.OPERATOR: "运维",
    StaffRole.SITE_ADMIN: "站点管理员",
    StaffRole.VIEWER: "只读",
}


class AdminUser(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=255)
    display_name = fields.CharField(max_length=64, default="")
    role = fields.CharEnumField(StaffRole, max_length=16)
    organisation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Organisation", related_name="staff", on_delete=fields.CASCADE, null=True
    )
    # Empty means every site of the organisation (head office); else only these.
    sites: fields.ManyToManyRelation = fields.ManyToManyField(
        "models.Site", related_name="staff", through="admin_user_site"
    )
    # Where the notifier reaches this staff member (alarms, failed jobs); empty: not reached.
    phone = fields.CharField(max_length=20, default="")
    email = fields.CharField(max_length=254, default="")
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "admin_user"
