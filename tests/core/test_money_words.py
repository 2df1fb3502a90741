"""Receipts write the amount in Chinese capital numerals (人民币大写) as banks read them."""

from __future__ import annotations

import pytest

from server.core.money import in_words


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (0, "零元整"),
        (5, "伍分"),
        (50, "伍角整"),
        (100, "壹元整"),
        (1_005, "壹拾元零伍分"),
        (123_450, "壹仟贰佰叁拾肆元伍角整"),
        (1_234_560, "壹万贰仟叁佰肆拾伍元陆角整"),
        (10_000_005, "壹拾万元零伍分"),
        (1_000_010_000, "壹仟万零壹佰元整"),
        (12_345_678_901, "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元零壹分"),
        (-100, "负壹元整"),
    ],
)
def test_amounts_in_capital_numerals(fen: int, words: str) -> None:
    assert in_words(fen) == words
