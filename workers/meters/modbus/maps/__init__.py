"""One data file per meter model; `MAPS` finds a map by the model name stored on the meter."""

from __future__ import annotations

from workers.meters.modbus.maps import adf400l, ddsy1352, dtsy1352
from workers.meters.modbus.registers import ModelMap

MAPS: dict[str, ModelMap] = {
    m.model: m for m in (ddsy1352.MAP, dtsy1352.MAP, adf400l.MAP_1P, adf400l.MAP_3P)
}


class UnknownModel(KeyError):
    """No register map for this model name."""


def get_map(model: str) -> ModelMap:
    """The map for `model` (e.g. "DDSY1352", "ADF400L-1P")."""
    try:
        return MAPS[model.upper()]
    except KeyError:
        raise UnknownModel(model) from None
