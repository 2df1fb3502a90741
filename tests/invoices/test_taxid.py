"""Tax ids: the three lengths, each with its check character where one is defined."""

from __future__ import annotations

import pytest

from server.invoices.lines import allocate, parse_rate, price_line
from server.invoices.taxid import InvalidTaxId, check_tax_id, uscc_check

VALID_USCC = "91350100M000100Y43"  # the worked example published with GB 32100-2015


def test_unified_social_credit_code_checksum() -> None:
    assert check_tax_id(VALID_USCC) == VALID_USCC
    assert check_tax_id(" 91350100m000100y43 ") == VALID_USCC  # normalised
    assert uscc_check(VALID_USCC[:17]) == "3"
    with pytest.raises(InvalidTaxId, match="校验位"):
        check_tax_id(VALID_USCC[:17] + "4")
    with pytest.raises(InvalidTaxId, match="不允许的字符：I"):
        check_tax_id("91350100I000100Y43")


def test_old_registration_number_checks_its_organisation_code() -> None:
    # organisation code D2143569-? : 13·3+2·7+1·9+4·10+3·5+5·8+6·4+9·2 = 199, 11 − 199 % 11 = 10 → X
    assert check_tax_id("110108D2143569X") == "110108D2143569X"
    with pytest.raises(InvalidTaxId, match="组织机构代码"):
        check_tax_id("110108D21435691")
    with pytest.raises(InvalidTaxId, match="行政区划"):
        check_tax_id("A10108D2143569X")


def test_twenty_digit_id_card_based_number() -> None:
    # 11010519491231002X: the check digit of the standard's example card number
    assert check_tax_id("11010519491231002X01") == "11010519491231002X01"
    with pytest.raises(InvalidTaxId, match="身份证"):
        check_tax_id("11010519491231002101")


@pytest.mark.parametrize("raw", ["", "123", "9135010", "91350100M000100Y431"])
def test_wrong_lengths_say_which_lengths_are_allowed(raw: str) -> None:
    with pytest.raises(InvalidTaxId, match="15、18 或 20 位"):
        check_tax_id(raw)


def test_tax_inclusive_line_splits_into_net_and_tax() -> None:
    assert price_line(11_300, parse_rate("13%")) == price_line(11_300, parse_rate("0.13"))
    line = price_line(11_300, parse_rate("13%"))
    assert (line.net_fen, line.tax_fen) == (10_000, 1_300)
    water = price_line(10_000, parse_rate("9"))  # 100 × 0.09 / 1.09 = 8.2568… → ¥8.26
    assert (water.net_fen, water.tax_fen) == (9_174, 826)
    assert price_line(5_000, parse_rate("免税")).tax_fen == 0


def test_allocation_takes_the_oldest_payment_first() -> None:
    assert allocate(7_000, [5_000, 5_000, 5_000]) == [5_000, 2_000, 0]
    with pytest.raises(ValueError):
        allocate(16_000, [5_000, 5_000, 5_000])
