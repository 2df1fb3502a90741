"""Room monitoring's words (房间监控): the state a room's tile shows, and the one rule that
decides it from the room's facts.

    classify(occupied=…, meters=…, offline=…, tripped=…, alarm_level=…) -> RoomState

Pure: counts in, a state out. The monitor's SQL (`server.staff.service.monitor`) computes the
same CASE in the database so it can filter and count 15,000 rooms by state; its tests hold
the two to the same answers.

The order matters, first match wins:

1. **tripped** (已断电): an occupied room with a meter whose relay is open — the tenant has
   no power or water, the most urgent thing on the screen (a vacant room's relay is often
   opened on purpose, so it does not count there);
2. **offline** (离线): some active meter does not answer — its state is unknown, so nothing
   below can be trusted (vacant rooms included: a dead meter is a device problem);
3. **vacant** (空置): no open account;
4. **alarm** (告警): the account's alarm state is at a level (low balance, forecast), as the
   alarm service keeps it (`account_alarm_state`);
5. **normal** (正常).
"""

from __future__ import annotations

from enum import StrEnum


class RoomState(StrEnum):
    NORMAL = "normal"
    ALARM = "alarm"
    TRIPPED = "tripped"
    OFFLINE = "offline"
    VACANT = "vacant"


ROOM_STATE_LABELS = {
    RoomState.NORMAL: "正常",
    RoomState.ALARM: "告警",
    RoomState.TRIPPED: "已断电",
    RoomState.OFFLINE: "离线",
    RoomState.VACANT: "空置",
}
# The order the filter buttons and the legend show them: what needs a person first.
ROOM_STATES = (
    RoomState.TRIPPED,
    RoomState.ALARM,
    RoomState.OFFLINE,
    RoomState.VACANT,
    RoomState.NORMAL,
)


def classify(
    *, occupied: bool, meters: int, offline: int, tripped: int, alarm_level: int
) -> RoomState:
    """The room's state from its facts: `occupied` (an open account), its active `meters`,
    how many of them are `offline` and have their relay open (`tripped`), and the deepest
    alarm level of its open accounts (0: none). See the module docstring for the order."""
    if occupied and meters and tripped > 0:
        return RoomState.TRIPPED
    if meters and offline > 0:
        return RoomState.OFFLINE
    if not occupied:
        return RoomState.VACANT
    if alarm_level > 0:
        return RoomState.ALARM
    return RoomState.NORMAL
