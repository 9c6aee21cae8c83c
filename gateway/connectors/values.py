"""Reading values out of provider payloads, where any field may be missing or of the wrong type,
and writing the few that need care (amounts) into a provider's request.

A provider's body is untrusted input: these readers return `None` for what
is absent or not what was promised, so a connector maps it without crashing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext
from typing import Any
from urllib.parse import quote

import orjson

from gateway.errors import BadUserInput, ValidationFailed
from gateway.model import AMOUNT_DIGITS, Money, currency_code, significant_digits
from gateway.upstream.client import parse_json

__all__ = [
    "day",
    "exact_sum",
    "integer_id",
    "json_amount",
    "json_object",
    "moment",
    "money",
    "number",
    "path_segment",
    "text",
    "token_id",
]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MINOR_UNITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
"""ISO 4217's minor units where they are not 2 (cents): how many places an amount shows."""
_SPELLED = (str, int, float, Decimal)
_NUMERIC = (int, float, Decimal)
_AMOUNT = (int, float, str)
"""The classes each reader takes, as tuples: `str | int | ...` written inside a reader builds
a new union on every call, and `text` is called for every field of every record (a twentieth
of the gateway's CPU on the 1,000-unit list went to that line, for fields that are null)."""


def text(row: Any, *path: str) -> str | None:
    """The trimmed text at `path` in nested objects; numbers are spelled, anything else is None.

    Called for every field of every record, so it asks `dict` (what JSON parses into),
    not the `Mapping` ABC, whose isinstance check costs several times more, and a text
    or a null one level down (most of them; a field not selected is absent) takes the
    shortest way.
    """
    if len(path) == 1 and row.__class__ is dict:
        found = row.get(path[0])
        if found.__class__ is str:
            return found.strip() or None
        if found is None:
            return None
    value: Any = row
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, _SPELLED):
        return None
    spelled = str(value).strip()
    return spelled or None


def number(value: Any) -> float | None:
    """A count or a measure (rooms: `4.5`), where a double's precision is plenty."""
    if value.__class__ is float:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, _NUMERIC):
        return None
    return float(value)


def amount(value: Any) -> Decimal | None:
    """A provider's amount as a Decimal. JSON numbers arrive as floats where a double holds
    them exactly, whose shortest repr (what `str` gives) is then the number the provider
    sent, and as Decimals where it does not (`upstream.client.parse_json`); text is read as
    it is, a Decimal (a sum) kept. Anything else, or not finite, is None."""
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool) or not isinstance(value, _AMOUNT):
        return None
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def money(value: Any, currency: Any) -> Money | None:
    """An amount and its ISO 4217 code as `Money`, shown to the currency's minor units
    (`1250` CAD is `1250.00`) without ever rounding away a place the provider sent."""
    parsed, code = amount(value), currency_code(currency)
    if parsed is None or code is None:
        return None
    places = _MINOR_UNITS.get(code, 2)
    whole = max(parsed.adjusted() + 1, 1) if parsed else 1
    if whole > _WHOLE_DIGITS:
        return None
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < places:
        parsed = parsed.quantize(Decimal(1).scaleb(-places), context=_EXACT)
    return Money(parsed, code)


_WHOLE_DIGITS = 40
"""Whole digits an amount may have; one with more is read as no amount. No currency's sums
come near (a year of the world's output, in any currency's smallest unit, has under 25
digits), and the bound keeps what a provider's number can make the gateway compute small.
An amount is shown to its minor units without rounding (`_EXACT`): the default context's 28
digits made quantizing `1e27` fail (`InvalidOperation`), on a read, a webhook, and the read
back of a charge a caller had just written."""


_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
"""A context that never rounds: its work is what the digits cost, not the precision allowed."""


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """Amounts added without rounding: `Decimal`'s default context keeps 28 digits, and
    rounds a sum past them silently."""
    with localcontext(_EXACT):
        return sum(amounts, Decimal(0))


def json_amount(value: Money, provider: str, field: str) -> orjson.Fragment:
    """An amount as a JSON number for a provider that takes numbers, written with its own
    digits (`1250.10`, never a float's `1250.1`; a whole one as an integer, `1250`, which a
    reader wanting an integer takes too): nothing between the caller and the provider goes
    through a double. One with more significant digits than a provider reading numbers
    into doubles keeps (`model.AMOUNT_DIGITS`) is refused naming the caller's field, before
    anything is sent, rather than written as another amount."""
    amount = value.amount
    if not amount.is_finite() or significant_digits(amount) > AMOUNT_DIGITS:
        said = f"{provider} takes amounts of at most {AMOUNT_DIGITS} significant digits exactly."
        raise ValidationFailed(provider, said, [{"field": field, "message": said}])
    whole = amount == amount.to_integral_value()
    return orjson.Fragment(str(int(amount)) if whole else format(amount, "f"))


def day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def integer_id(key: str) -> bool:
    """An id that is a plain integer (ASCII digits, not 5,000 of them)."""
    return key.isascii() and key.isdigit() and len(key) <= 18


def token_id(key: str) -> bool:
    """An id made of letters, digits, `_` and `-` only: safe as a URL path segment as it is."""
    return bool(_TOKEN.match(key))


def path_segment(key: str) -> str | None:
    """Any text as one URL path segment, escaped; never `.` or `..`, which would move the path."""
    if not key or key in (".", "..") or len(key) > 256:
        return None
    return quote(key, safe="")


def json_object(raw: bytes) -> dict[str, Any]:
    """A delivery's body as a JSON object, or the caller's error saying why not."""
    try:
        body = parse_json(raw)
    except ValueError:
        raise BadUserInput("The delivery is not JSON.") from None
    if not isinstance(body, dict):
        raise BadUserInput("The delivery is not a JSON object.")
    return body
