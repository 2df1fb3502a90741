"""What each role may change. Reading is the scope's business (`scope.py`): every role sees
every page of its organisation and sites; this table says which actions it may take there.
A page hides what the staff member may not do, and the route refuses it (403) in any case."""

from __future__ import annotations

from enum import StrEnum

from server.staff.models import StaffRole


class Action(StrEnum):
    STRUCTURE = "structure"  # sites, buildings, floors, rooms; Excel import
    DEVICES = "devices"  # gateways (buses) and meters
    STAFF = "staff"  # staff users of the organisation
    CONTROL = "control"  # relay commands, 保电 (#14)
    ACCOUNTS = "accounts"  # open, transfer and close accounts (#14)
    MONEY = "money"  # counter recharges, refunds, adjustments (#15)
    TARIFFS = "tariffs"  # tariff plans and their assignment (#15)
    AUDIT = "audit"  # read the operation log
    NOTIFY = "notify"  # resend messages, a site's voice quiet hours (#16)


ACTION_LABELS = {
    Action.STRUCTURE: "园区结构",
    Action.DEVICES: "设备",
    Action.STAFF: "员工",
    Action.CONTROL: "远程控制",
    Action.ACCOUNTS: "开户销户",
    Action.MONEY: "收费退费",
    Action.TARIFFS: "电价水价",
    Action.AUDIT: "操作日志",
    Action.NOTIFY: "消息通知",
}

_EVERYTHING = frozenset(Action)

ROLE_ACTIONS: dict[StaffRole, frozenset[Action]] = {
    StaffRole.SUPERADMIN: _EVERYTHING,
    StaffRole.ORG_ADMIN: _EVERYTHING,
    StaffRole.SITE_ADMIN: _EVERYTHING - {Action.STAFF},
    StaffRole.FINANCE: frozenset({Action.MONEY, Action.TARIFFS, Action.AUDIT}),
    StaffRole.OPERATOR: frozenset({Action.DEVICES, Action.CONTROL, Action.NOTIFY}),
    StaffRole.VIEWER: frozenset(),
}


def may(role: StaffRole, action: Action) -> bool:
    return action in ROLE_ACTIONS[role]
