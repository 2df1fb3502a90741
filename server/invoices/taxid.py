"""Buyer tax ids (纳税人识别号) on an invoice: what is accepted and why.

- 18 characters: the unified social credit code (统一社会信用代码, GB 32100-2015). Its
  alphabet is the digits and 21 capital letters (no I, O, S, V, Z); the 18th character is
  a check over the first 17: weights 3^(i) mod 31, check = 31 - (Σ value·weight mod 31),
  31 written as 0.
- 15 characters: the old tax registration number: a 6-digit area code followed by the
  9-character organisation code (GB 11714-1997), whose 9th character checks the first 8
  (weights 3 7 9 10 5 8 4 2, mod 11; 10 written X, 11 written 0).
- 20 characters: an individual business registered on the owner's identity card number
  (18 characters, GB 11643-1999 check) followed by a 2-digit sequence number.

Pure: no I/O. `check_tax_id` returns the normalised id (upper case, no spaces) or raises
`InvalidTaxId` with a Chinese message saying what is wrong.
"""

from __future__ import annotations

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECKS = "10X98765432"
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class InvalidTaxId(ValueError):
    """The tax id cannot be a real one (length, characters or check character)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def uscc_check(first17: str) -> str:
    """The check character of a unified social credit code's first 17 characters."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check(first8: str) -> str:
    """The check character of an organisation code's first 8 characters (GB 11714)."""
    total = sum(_ORG_CHARS.index(c) * w for c, w in zip(first8, ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def id_card_check(first17: str) -> str:
    """The check character of a resident identity card number's first 17 digits."""
    return ID_CHECKS[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def check_tax_id(raw: str) -> str:
    """The normalised tax id, or `InvalidTaxId` naming the problem."""
    text = "".join(raw.split()).upper()
    if len(text) == 18:
        return _uscc(text)
    if len(text) == 15:
        return _old_registration(text)
    if len(text) == 20:
        return _individual(text)
    raise InvalidTaxId(f"税号应为 15、18 或 20 位，收到 {len(text)} 位")


def _uscc(text: str) -> str:
    bad = [c for c in text if c not in USCC_ALPHABET]
    if bad:
        raise InvalidTaxId(f"统一社会信用代码含有不允许的字符：{bad[0]}")
    if uscc_check(text[:17]) != text[17]:
        raise InvalidTaxId("统一社会信用代码校验位不正确，请核对")
    return text


def _old_registration(text: str) -> str:
    if not text[:6].isdigit():
        raise InvalidTaxId("15 位税号的前 6 位应为行政区划代码（数字）")
    code = text[6:]
    if any(c not in _ORG_CHARS for c in code):
        raise InvalidTaxId("15 位税号含有不允许的字符")
    if org_code_check(code[:8]) != code[8]:
        raise InvalidTaxId("15 位税号中组织机构代码的校验位不正确，请核对")
    return text


def _individual(text: str) -> str:
    card, seq = text[:18], text[18:]
    if not (card[:17].isdigit() and (card[17].isdigit() or card[17] == "X") and seq.isdigit()):
        raise InvalidTaxId("20 位税号应为 18 位身份证号加 2 位数字")
    if id_card_check(card[:17]) != card[17]:
        raise InvalidTaxId("20 位税号中身份证号的校验位不正确，请核对")
    return text
