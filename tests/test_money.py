"""Money is exact from the provider's body to the caller's: a Decimal in between, a string on
the wire, never a float; dates and timestamps keep the offset the provider sent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from gateway.connectors.values import exact_sum, json_amount, moment, money
from gateway.errors import ValidationFailed
from gateway.model import Lease, Money
from gateway.state import records
from gateway.upstream.client import parse_json


@pytest.mark.parametrize(
    ("sent", "currency", "shown"),
    [
        (1250, "CAD", "1250.00"),
        (1250.1, "cad", "1250.10"),
        ("0.10", "USD", "0.10"),
        (0.3, "EUR", "0.30"),
        ("1234.5678", "CAD", "1234.5678"),
        (1500, "JPY", "1500"),
        ("12.5", "KWD", "12.500"),
        ("1e27", "CAD", "1" + "0" * 27 + ".00"),
        (10**30, "CAD", "1" + "0" * 30 + ".00"),
        ("1234567890123456789012345678", "CAD", "1234567890123456789012345678.00"),
        ("9" * 40, "CAD", "9" * 40 + ".00"),
        ("0E+50", "CAD", "0.00"),
    ],
)
def test_amounts_are_exact_to_the_currencys_minor_units_and_never_rounded(
    sent: object, currency: str, shown: str
) -> None:
    read = money(sent, currency)

    assert read is not None and str(read.amount) == shown and read.currency == currency.upper()


@pytest.mark.parametrize(
    ("sent", "currency"),
    [
        (True, "CAD"),
        ("12,50", "CAD"),
        (float("nan"), "CAD"),
        ("Infinity", "CAD"),
        (10, "dollars"),
        (10, "ZZZ"),
        (10, None),
        (None, "CAD"),
        ([10], "CAD"),
        ("1e300", "CAD"),
        ("1e40", "CAD"),
        ("1" + "0" * 50 + ".00", "CAD"),
    ],
)
def test_what_is_not_an_amount_in_a_currency_is_none(sent: object, currency: object) -> None:
    assert money(sent, currency) is None


def test_a_sum_of_amounts_past_28_digits_is_not_rounded() -> None:
    """pms keeps no balance, so the gateway sums its invoices: in `Decimal`'s default context
    a sum of 28 digits or more was rounded, silently."""
    amounts = [Decimal("1" + "0" * 30 + ".00"), Decimal("0.01"), Decimal("-0.02")]

    total = exact_sum(amounts)

    assert total == Decimal("999999999999999999999999999999.99")
    assert money(total, "CAD") == Money(Decimal("999999999999999999999999999999.99"), "CAD")


def test_amounts_read_from_json_numbers_sum_exactly() -> None:
    """A provider's 0.1 and 0.2 arrive as doubles; read as the decimals they were written
    as, they sum to 0.30, where the doubles would not."""
    ten, twenty = money(0.1, "CAD"), money(0.2, "CAD")
    assert ten is not None and twenty is not None

    assert ten.amount + twenty.amount == Decimal("0.30")


@pytest.mark.parametrize(
    "sent",
    [
        "99999999999999.99",
        "12345678901234567.89",
        "0.12345678901234567",
        "1.2345678901234567e2",
        "100000000000000.001",
    ],
)
def test_an_amount_a_double_cannot_hold_is_read_as_the_provider_wrote_it(sent: str) -> None:
    body = parse_json(f'{{"data": [{{"amount": {sent}, "rooms": 4.5, "no": 1.0}}]}}'.encode())

    (row,) = body["data"]
    read = money(row["amount"], "CAD")
    assert read is not None and read.amount == Decimal(sent)
    assert (row["rooms"], row["no"]) == (4.5, 1.0)
    assert all(isinstance(row[name], float) for name in ("rooms", "no"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": NaN, "b": 1234567890123456.7}',
        b'{"a": 1e999, "b": 1234567890123456.7}',
        b'{"a": "\\ud800", "b": 1234567890123456.7}',
        b"[" * 1100 + b"1234567890123456.7" + b"]" * 1100,
    ],
)
def test_a_body_that_is_not_strict_json_is_refused_with_long_numbers_too(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(body)


@pytest.mark.parametrize(
    ("amount", "written"),
    [
        ("1250.10", "1250.10"),
        ("1250.00", "1250"),
        ("0.05", "0.05"),
        ("-12.5", "-12.5"),
        ("9999999999999.99", "9999999999999.99"),
        ("0.000000000000001", "0.000000000000001"),
    ],
)
def test_an_amount_is_written_to_a_provider_in_its_own_digits(amount: str, written: str) -> None:
    sent = json_amount(Money(Decimal(amount), "CAD"), "pms", "amount")

    assert orjson.dumps({"amount": sent}) == b'{"amount":' + written.encode() + b"}"


@pytest.mark.parametrize("amount", ["99999999999999.99", "1.0000000000000001", "NaN"])
def test_an_amount_no_double_holds_is_refused_naming_the_field(amount: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        json_amount(Money(Decimal(amount), "CAD"), "pms", "deposit")

    assert [problem["field"] for problem in refused.value.problems] == ["deposit"]


def test_timestamps_keep_the_offset_the_provider_sent() -> None:
    read = moment("2026-10-03T10:22:00-04:00")

    assert read is not None and read.utcoffset() == timedelta(hours=-4)
    assert read.isoformat() == "2026-10-03T10:22:00-04:00"


def test_money_survives_the_shared_cache_as_text() -> None:
    lease = Lease("pms", "prop_1/ten_2", rent=Money(Decimal("1250.10"), "CAD"))

    (again,) = records.loads(records.dumps([lease]))

    assert again == lease and isinstance(again, Lease) and again.rent is not None
    assert isinstance(again.rent.amount, Decimal) and '"1250.10"' in records.dumps([lease])
