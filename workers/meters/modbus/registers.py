"""Register maps as data, and the pure encode/decode/block-planning they need.

A `ModelMap` names every register a driver may touch (`total`, `band_1`, `remaining`…) with
its address, width, type, scale, unit and access. The driver and the simulator's Modbus
server both work from the same map, so a model is added by writing one data file under
`maps/` and nothing else.

Values on the wire are raw 16-bit registers, high word first for 32-bit values:

    u32 0x0001_86A0 at 0x0000  ->  [0x0001, 0x86A0]  ->  100000 × 0.01 = 1000.00 kWh

Nothing here touches a socket or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class RegType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"


class Access(StrEnum):
    R = "r"
    RW = "rw"
    W = "w"


_WIDTH = {RegType.U16: 1, RegType.I16: 1, RegType.U32: 2, RegType.I32: 2}
_SIGNED = {RegType.I16, RegType.I32}


class RegisterValueError(ValueError):
    """A value does not fit its register (negative into unsigned, too large, wrong scale)."""


@dataclass(frozen=True, slots=True)
class Register:
    """One value in a map. `scale` turns the raw integer into the unit (raw × scale)."""

    address: int
    type: RegType
    scale: Decimal = Decimal(1)
    unit: str = ""
    access: Access = Access.R
    note: str = ""

    @property
    def count(self) -> int:
        return _WIDTH[self.type]

    @property
    def end(self) -> int:
        """First address after this register."""
        return self.address + self.count

    def decode_raw(self, words: list[int]) -> int:
        """Raw integer from `count` 16-bit words (high word first)."""
        if len(words) != self.count:
            raise RegisterValueError(f"need {self.count} words, got {len(words)}")
        raw = 0
        for word in words:
            raw = (raw << 16) | (word & 0xFFFF)
        bits = 16 * self.count
        if self.type in _SIGNED and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return raw

    def decode(self, words: list[int]) -> Decimal:
        """Scaled value in the register's unit."""
        return self.decode_raw(words) * self.scale

    def encode_raw(self, raw: int) -> list[int]:
        """16-bit words for a raw integer; raises RegisterValueError when it does not fit."""
        bits = 16 * self.count
        low, high = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            if self.type in _SIGNED
            else (
                0,
                (1 << bits) - 1,
            )
        )
        if not low <= raw <= high:
            raise RegisterValueError(f"{raw} does not fit {self.type}")
        raw &= (1 << bits) - 1
        return [(raw >> (16 * (self.count - 1 - i))) & 0xFFFF for i in range(self.count)]

    def encode(self, value: Decimal | int) -> list[int]:
        """Words for a value in the register's unit; it must be a whole multiple of scale."""
        raw = Decimal(value) / self.scale
        if raw != raw.to_integral_value():
            raise RegisterValueError(f"{value} is not a multiple of {self.scale}")
        return self.encode_raw(int(raw))


RegisterMap = dict[str, Register]


@dataclass(frozen=True, slots=True)
class StatusBits:
    """Bit positions in a model's status word."""

    relay_open: int = 0
    alarm_1: int = 1
    alarm_2: int = 2
    owing: int = 3
    protected: int = 4


@dataclass(frozen=True, slots=True)
class RelayWrite:
    """One FC16 write that carries out a relay action: `values` at `register`'s address."""

    register: str
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelMap:
    """Everything a driver needs to know about one meter model."""

    model: str
    phases: int
    registers: dict[str, Register]
    relay_writes: dict[str, RelayWrite] = field(default_factory=dict)
    status_bits: StatusBits = StatusBits()
    bands: tuple[int, ...] = (1, 2, 3, 4)
    # Blocks never span further than this many unused registers; a hole costs bytes, a
    # request costs a round trip on a half-duplex bus.
    max_gap: int = 8

    def __getitem__(self, name: str) -> Register:
        return self.registers[name]

    def has(self, *names: str) -> bool:
        return all(n in self.registers for n in names)


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers from `address`, covering `names`."""

    address: int
    count: int
    names: tuple[str, ...]


def plan_blocks(model: ModelMap, names: list[str], max_count: int = 125) -> list[Block]:
    """Group registers into as few contiguous reads as possible (holes up to `max_gap`)."""
    regs = sorted(((model[n], n) for n in names), key=lambda rn: rn[0].address)
    blocks: list[Block] = []
    start = end = -1
    members: list[str] = []
    for reg, name in regs:
        if members and reg.address - end <= model.max_gap and reg.end - start <= max_count:
            end = max(end, reg.end)
            members.append(name)
            continue
        if members:
            blocks.append(Block(start, end - start, tuple(members)))
        start, end, members = reg.address, reg.end, [name]
    if members:
        blocks.append(Block(start, end - start, tuple(members)))
    return blocks


def decode_block(model: ModelMap, block: Block, words: list[int]) -> dict[str, Decimal]:
    """Values of every register in a block read, by name."""
    out: dict[str, Decimal] = {}
    for name in block.names:
        reg = model[name]
        offset = reg.address - block.address
        out[name] = reg.decode(words[offset : offset + reg.count])
    return out
