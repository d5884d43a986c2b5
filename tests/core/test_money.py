from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.money import UnknownCurrency, exponent, format_minor, is_currency, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("40.00", "USD", 4000),
        ("0.01", "USD", 1),
        ("1500", "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("12.5", "EUR", 1250),
        ("0", "USD", 0),
    ],
)
def test_to_minor_uses_the_currency_exponent(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (438, "USD", "4.38"),
        (5, "USD", "0.05"),
        (-180, "USD", "-1.80"),
        (1500, "JPY", "1500"),
        (1234, "KWD", "1.234"),
        (0, "EUR", "0.00"),
    ],
)
def test_format_minor(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text


def test_more_decimals_than_the_currency_allows_is_an_error() -> None:
    with pytest.raises(ValueError, match="more decimals"):
        to_minor("1.005", "USD")
    with pytest.raises(ValueError, match="more decimals"):
        to_minor("10.5", "JPY")


def test_unknown_currency_is_an_error() -> None:
    with pytest.raises(UnknownCurrency):
        exponent("XXX")
    with pytest.raises(ValueError, match="not a decimal"):
        to_minor("forty", "USD")


@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15),
    currency=st.sampled_from(["USD", "JPY", "KWD", "EUR", "CLF"]),
)
def test_format_and_parse_round_trip(minor: int, currency: str) -> None:
    text = format_minor(minor, currency)
    assert to_minor(text, currency) == minor
    assert Decimal(text) == Decimal(minor).scaleb(-exponent(currency))


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(UnknownCurrency) as unknown:
        exponent("XXX")
    assert unknown.value.code == "XXX"
    assert str(unknown.value) == "unknown currency 'XXX': expected an ISO 4217 code"
    with pytest.raises(ValueError, match=r"^not a decimal amount: 'forty'$"):
        to_minor("forty", "USD")
    with pytest.raises(ValueError, match=r"^not a finite amount: 'Infinity'$"):
        to_minor("Infinity", "USD")
    with pytest.raises(ValueError, match=r"^'1.005' has more decimals than USD allows$"):
        to_minor("1.005", "USD")


@pytest.mark.parametrize(
    ("currency", "decimals"), [("USD", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3)]
)
def test_each_currency_has_its_iso_decimals(currency: str, decimals: int) -> None:
    assert exponent(currency) == decimals


def test_only_iso_4217_codes_are_currencies() -> None:
    assert is_currency("USD") and is_currency("JPY") and is_currency("KWD")
    assert not is_currency("usd") and not is_currency("XXX") and not is_currency("")
