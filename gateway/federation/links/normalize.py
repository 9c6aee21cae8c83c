"""What two providers' spellings of one thing have in common, once their habits are folded away.

Providers write the same address, name or phone differently: `"1234 rue des Érables"`,
`"1234, RUE DES ERABLES"`, `"101-1234 r. des Erables"`; `"Gestion Tremblay inc."` and
`"GESTION TREMBLAY"`; `"+1-418-555-0123"` and `"(418) 555-0123"`. Each function here
turns one kind of value into a key that is equal exactly when the values mean the same,
as far as spelling can tell: accents, case, punctuation and the usual abbreviations are
folded; nothing is guessed (a typo stays a difference). Empty or unreadable values give
`None`, which matches nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

__all__ = [
    "Address",
    "address",
    "business_number",
    "city",
    "company",
    "email",
    "fold",
    "person",
    "phone",
    "postal_code",
    "unit_number",
]

_WORDS = re.compile(r"[^\W_]+")
_ABBREVIATIONS = {
    "r": "rue",
    "av": "avenue",
    "ave": "avenue",
    "boul": "boulevard",
    "blvd": "boulevard",
    "bd": "boulevard",
    "ch": "chemin",
    "mtee": "montee",
    "pl": "place",
    "rte": "route",
    "terr": "terrasse",
    "st": "saint",
    "ste": "sainte",
    "mt": "mont",
}
"""Street and place words as Québec addresses abbreviate them."""
_ENDINGS = {"st": "street", "rd": "road", "dr": "drive", "ave": "avenue", "av": "avenue"}
"""At the end of a street name an abbreviation is the English street type, not a saint."""
_LEGAL_FORMS = frozenset(
    {
        "inc",
        "incorporated",
        "incorporee",
        "ltee",
        "ltd",
        "limitee",
        "limited",
        "enr",
        "enregistree",
        "senc",
        "sec",
        "corp",
        "corporation",
        "cie",
        "co",
        "llc",
        "lp",
        "llp",
    }
)
_ARTICLES = frozenset({"les", "le", "la", "l", "the"})
_UNIT_WORDS = frozenset(
    {
        "app",
        "appt",
        "apt",
        "appartement",
        "apartment",
        "unit",
        "unite",
        "suite",
        "bureau",
        "logement",
    }
)
_CIVIC = re.compile(
    r"^\s*(?:(?P<unit>[0-9]+[a-z]?)\s*-\s*)?(?P<civic>[0-9]+[a-z]?)\b\s*,?\s*(?P<rest>.*)$"
)
_UNIT_TAIL = re.compile(
    r"[,\s]+(?:(?:" + "|".join(sorted({*_UNIT_WORDS, "no"}, key=len, reverse=True)) + r")"
    r"(?:\.\s*|\s+)|#\s*)(?P<unit>[0-9a-z]+)\s*$"
)
"""`, app. 101`, ` apt 3`, ` #5`: a word and a separator, so `"rue Nobel"` keeps its street."""


def fold(text: str | None) -> str:
    """Lower case without accents, words only: `"L'Église-Sainte"` is `"l eglise sainte"`."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_WORDS.findall(plain))


def _expand(words: list[str], endings: bool) -> list[str]:
    expanded = []
    for index, word in enumerate(words):
        if endings and index == len(words) - 1 and index > 0 and word in _ENDINGS:
            expanded.append(_ENDINGS[word])
        else:
            expanded.append(_ABBREVIATIONS.get(word, word))
    return expanded


@dataclass(frozen=True)
class Address:
    """A street address as a key: civic number, street, and the unit where one is written."""

    civic: str
    street: str
    unit: str | None = None


def address(line: str | None) -> Address | None:
    """`"1234 rue des Érables, app. 101"`, `"101-1234 R. DES ERABLES"`: civic number first, the
    unit after the street or before the civic number (Canada Post's `101-1234`)."""
    if not line:
        return None
    plain = unicodedata.normalize("NFKD", line)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).casefold().strip()
    unit = None
    tail = _UNIT_TAIL.search(plain)
    if tail is not None:
        unit = tail.group("unit")
        plain = plain[: tail.start()]
    match = _CIVIC.match(plain)
    if match is None:
        return None
    unit = unit or match.group("unit")
    street = " ".join(_expand(_WORDS.findall(match.group("rest")), endings=True))
    if not street:
        return None
    return Address(match.group("civic"), street, unit_number(unit))


def city(name: str | None) -> str | None:
    words = _expand(fold(name).split(), endings=False)
    return " ".join(words) or None


def postal_code(code: str | None) -> str | None:
    """`"g1a 2b3"` and `"G1A2B3"` alike; a code of another shape is kept as its letters."""
    plain = re.sub(r"[^0-9A-Za-z]", "", code or "").upper()
    return plain or None


def company(name: str | None) -> str | None:
    """A company's name without its legal form or leading article: `"Les Immeubles Roy
    inc."` and `"IMMEUBLES ROY"` are one key."""
    words = fold(name).split()
    while words and words[-1] in _LEGAL_FORMS:
        words.pop()
    while len(words) > 1 and words[0] in _ARTICLES:
        words.pop(0)
    return " ".join(words) or None


def person(first: str | None, last: str | None) -> str | None:
    """Both names, folded; a person known by one name only does not match by name."""
    given, family = fold(first), fold(last)
    return f"{given}|{family}" if given and family else None


def email(address_text: str | None) -> str | None:
    plain = (address_text or "").strip().casefold()
    return plain if plain.count("@") == 1 and not plain.startswith("@") else None


def phone(number: str | None, region: str = "CA") -> str | None:
    """E.164 (`"+14185550123"`); numbers without a country code are read as `region`'s."""
    if not number or not number.strip():
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def business_number(number: str | None) -> str | None:
    """A Canadian business number's nine-digit root: `"123456789 RT0001"` is `"123456789"`."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) < 9:
        return None
    return digits[:9]


def unit_number(code: str | None) -> str | None:
    """A unit's number as written on its door: `"App. 0101"` and `" 101"` are `"101"`."""
    words = [word for word in fold(code).split() if word not in _UNIT_WORDS and word != "no"]
    if not words:
        return None
    joined = "".join(words)
    return joined.lstrip("0") or "0" if joined.isdigit() else joined
