"""The seam where real meters need cryptography.

State Grid prepaid meters take recharges under control code 0x03 (DI 070102FF) and relay
commands as ciphertext, both with MACs computed by an ESAM / encryption machine. Our
simulator speaks plaintext: `Plaintext` builds a 0x1C relay command and a 0x14 write of the
Shuidian-own DI `SHUIDIAN_RECHARGE` (see docs/dlt645.md). A vendor provider implements the
same two methods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from workers.meters.dlt645 import dataid as di
from workers.meters.dlt645.framer import RELAY, WRITE


class SecurityProvider(Protocol):
    def relay_request(
        self, address: str, n1: int, valid_until: datetime, password: bytes, operator: bytes
    ) -> tuple[int, bytes]:
        """(control code, data before +0x33) of a relay / 保电 command."""
        ...

    def recharge_request(
        self, address: str, amount_fen: int, purchase_count: int, password: bytes, operator: bytes
    ) -> tuple[int, bytes]:
        """(control code, data before +0x33) of a recharge."""
        ...


class Plaintext:
    """No encryption: for the simulator and meters configured for plaintext control."""

    def relay_request(
        self, address: str, n1: int, valid_until: datetime, password: bytes, operator: bytes
    ) -> tuple[int, bytes]:
        return RELAY, password + operator + bytes([n1, 0x00]) + di.encode_time6(valid_until)

    def recharge_request(
        self, address: str, amount_fen: int, purchase_count: int, password: bytes, operator: bytes
    ) -> tuple[int, bytes]:
        value = di.encode_recharge(amount_fen, purchase_count)
        return WRITE, di.encode_di(di.SHUIDIAN_RECHARGE) + password + operator + value


def encode_password(password: str) -> bytes:
    """'02123456' (level 02, password 123456) -> 02 56 34 12 as sent (PA, P0 P1 P2)."""
    if len(password) != 8:
        raise ValueError("password is 8 hex digits: level (2) + password (6)")
    raw = bytes.fromhex(password)
    return raw[:1] + raw[1:][::-1]


def encode_operator(operator: str) -> bytes:
    """'12345678' -> 78 56 34 12 (C0 first)."""
    if len(operator) != 8:
        raise ValueError("operator code is 8 digits")
    return bytes.fromhex(operator)[::-1]
