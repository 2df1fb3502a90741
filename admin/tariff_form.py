"""The tariff editor's form, to and from a plan's JSON form (server.tariffs.schemas).

The form is what a tariff manager fills in: a shape (单一价 / 分时 / 阶梯 / 两部制), prices,
up to three seasons whose day schedules are lines such as `08:00-11:00 峰`, tiers as lines
such as `2760 0.5283` (the last `以上 0.8283`). This module only maps text to the JSON shape;
whether the plan is valid (24 h covered once, tiers ascending, prices ≥ 0…) is decided by the
engine itself (`to_plan`), which the service calls before anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from server.tariffs import Band, InvalidTariff

SEASONS = 3
BANDS = tuple(Band)
SHAPES = {"flat": "单一价", "tou": "分时（尖峰平谷）", "tiered": "阶梯", "two_part": "两部制"}
_BY_LABEL = {band.label: band for band in Band}
_SLOT = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–~至]\s*(\d{1,2}:\d{2})\s+(\S+)\s*$")
_OPEN_ENDED = {"以上", "-", "—", "∞", "不限"}


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name) or "").strip()


def _months(text: str, season: str) -> list[int]:
    if text in ("全年", ""):
        return list(range(1, 13)) if text else []
    months: list[int] = []
    for part in re.split(r"[,，、\s]+", text):
        if not part:
            continue
        bounds = re.split(r"[-–~至]", part)
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise InvalidTariff(f"{season}的月份格式应为 1-6,9-12", months=text)
        first, last = int(bounds[0]), int(bounds[-1])
        months += list(range(first, last + 1)) if first <= last else [first]
    return months


def _hhmm(text: str) -> str:
    hours, minutes = text.split(":")
    return f"{int(hours):02d}:{minutes}"


def _slots(text: str, where: str) -> list[dict[str, Any]]:
    slots = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = _SLOT.match(line)
        band_text = found.group(3) if found else ""
        band = _BY_LABEL.get(band_text) or (
            Band(int(band_text)) if band_text.isdigit() and 1 <= int(band_text) <= 5 else None
        )
        if found is None or band is None:
            raise InvalidTariff(
                f"{where}第{number}行应写成“08:00-11:00 峰”（尖、峰、平、谷、深谷）", line=line
            )
        start, end = _hhmm(found.group(1)), _hhmm(found.group(2))
        slots.append({"start": start, "end": end, "band": int(band)})
    return slots


def _tou(form: Mapping[str, Any], unit: str) -> dict[str, Any]:
    prices = {str(int(b)): _text(form, f"p{int(b)}") for b in BANDS if _text(form, f"p{int(b)}")}
    seasons = []
    for i in range(SEASONS):
        name = _text(form, f"s{i}_name") or f"季节{i + 1}"
        workday = _text(form, f"s{i}_workday")
        if not workday:
            continue
        holiday = _text(form, f"s{i}_holiday")
        seasons.append({
            "name": name,
            "months": _months(_text(form, f"s{i}_months"), name),
            "workday": _slots(workday, f"{name}工作日时段"),
            "holiday": _slots(holiday, f"{name}节假日时段") if holiday else None,
        })  # fmt: skip
    return {"kind": "tou", "unit": unit, "prices": prices, "seasons": seasons}


def _tiers(text: str) -> list[dict[str, Any]]:
    tiers = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 1:
            parts = ["以上", parts[0]]
        if len(parts) != 2:
            raise InvalidTariff(f"阶梯第{number}行应写成“上限 单价”，最后一档“以上 单价”")
        upto = None if parts[0] in _OPEN_ENDED else parts[0]
        tiers.append({"upto": upto, "price": parts[1]})
    return tiers


def _energy(form: Mapping[str, Any], shape: str, unit: str) -> dict[str, Any]:
    if shape == "flat":
        return {"kind": "flat", "unit": unit, "price": _text(form, "price")}
    if shape == "tou":
        return _tou(form, unit)
    if shape == "tiered":
        base = _text(form, "base")
        return {
            "kind": "tiered", "unit": unit, "period": _text(form, "period") or "year",
            "tiers": _tiers(_text(form, "tiers")),
            "base": _energy(form, base, unit) if base in ("flat", "tou") else None,
        }  # fmt: skip
    raise InvalidTariff("请选择方案形式：单一价、分时、阶梯或两部制", shape=shape)


def spec_of(form: Mapping[str, Any], unit: str) -> dict[str, Any]:
    """The plan's JSON form from the editor's fields (validated by the engine afterwards)."""
    shape = _text(form, "shape")
    if shape == "two_part":
        energy = _text(form, "energy") or "flat"
        if energy == "two_part":
            raise InvalidTariff("两部制的电度电价不能再是两部制")
        return {
            "kind": "two_part", "basis": _text(form, "basis") or "capacity",
            "rate": _text(form, "rate"), "energy": _energy(form, energy, unit),
        }  # fmt: skip
    return _energy(form, shape, unit)


def _slot_lines(slots: list[dict[str, Any]] | None) -> str:
    return "\n".join(f"{s['start']}-{s['end']} {Band(int(s['band'])).label}" for s in slots or [])


def _fill_energy(spec: dict[str, Any], out: dict[str, str]) -> None:
    if spec["kind"] == "flat":
        out["price"] = spec["price"]
    elif spec["kind"] == "tou":
        out |= {f"p{b}": p for b, p in spec["prices"].items()}
        for i, season in enumerate(spec["seasons"][:SEASONS]):
            months = season["months"]
            months_text = "全年" if months == list(range(1, 13)) else ",".join(map(str, months))
            out |= {
                f"s{i}_name": season["name"],
                f"s{i}_months": months_text,
                f"s{i}_workday": _slot_lines(season["workday"]),
                f"s{i}_holiday": _slot_lines(season.get("holiday")),
            }  # fmt: skip
    elif spec["kind"] == "tiered":
        out["period"] = spec["period"]
        out["tiers"] = "\n".join(
            f"{t['upto'] if t['upto'] is not None else '以上'} {t['price']}" for t in spec["tiers"]
        )
        if spec.get("base"):
            out["base"] = spec["base"]["kind"]
            _fill_energy(spec["base"], out)


def form_of(spec: dict[str, Any]) -> dict[str, str]:
    """The editor's fields for a stored plan (a price change starts from the newest one)."""
    out: dict[str, str] = {"shape": spec["kind"]}
    if spec["kind"] == "two_part":
        out |= {"basis": spec["basis"], "rate": spec["rate"], "energy": spec["energy"]["kind"]}
        _fill_energy(spec["energy"], out)
    else:
        _fill_energy(spec, out)
    return out


# A new TOU plan starts from a common commercial schedule (峰 8–11, 18–21; 平; 谷 23–7).
STARTER = {
    "shape": "tou", "p2": "1.0200", "p3": "0.6500", "p4": "0.2800",
    "s0_name": "全年", "s0_months": "全年",
    "s0_workday": "00:00-07:00 谷\n07:00-08:00 平\n08:00-11:00 峰\n11:00-18:00 平\n"
                  "18:00-21:00 峰\n21:00-23:00 平\n23:00-24:00 谷",
    "price": "0.6500", "period": "year", "tiers": "2760 0.5283\n4800 0.5783\n以上 0.8283",
    "basis": "capacity", "rate": "32", "energy": "tou",
}  # fmt: skip
