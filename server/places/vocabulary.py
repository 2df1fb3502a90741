"""The places' vocabulary, shared by the models, the services and the admin's forms."""

from __future__ import annotations

from enum import StrEnum


class RoomUse(StrEnum):
    """What a room is used for (用途); tariffs and reports tell them apart."""

    SHOP = "shop"
    OFFICE = "office"
    APARTMENT = "apartment"
    COMMON = "common"

    @property
    def label(self) -> str:
        return ROOM_USE_LABELS[self]


ROOM_USE_LABELS = {
    RoomUse.SHOP: "商铺",
    RoomUse.OFFICE: "办公",
    RoomUse.APARTMENT: "公寓",
    RoomUse.COMMON: "公共",
}
