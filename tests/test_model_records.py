"""The records' constructors: `model` gives its frozen records a faster `__init__` of its own,
which must take what the dataclass's took and build the same frozen record."""

from __future__ import annotations

import copy
import dataclasses
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from gateway import model

RECORDS = [
    value
    for value in vars(model).values()
    if isinstance(value, type)
    and dataclasses.is_dataclass(value)
    and value.__module__ == model.__name__
]


def _values(record: type) -> dict[str, object]:
    """A distinct value per field, so a field given another's value would show."""
    return {each.name: f"value of {each.name}" for each in dataclasses.fields(record) if each.init}


def _required(record: type) -> dict[str, object]:
    return {
        each.name: f"value of {each.name}"
        for each in dataclasses.fields(record)
        if each.init
        and each.default is dataclasses.MISSING
        and each.default_factory is dataclasses.MISSING
    }


def test_every_record_is_found() -> None:
    assert {model.Unit, model.Link, model.Building, model.Selection} <= set(RECORDS)


_TEXT_FIELDS = [record for record in RECORDS if record is not model.Selection]
"""Records whose fields take any value: a Selection's `__post_init__` hashes its fields, which
must be sets (and it keeps the dataclass's own `__init__`)."""


@pytest.mark.parametrize("record", _TEXT_FIELDS, ids=lambda record: record.__name__)
def test_each_field_takes_its_own_argument_by_keyword_and_by_position(record: Any) -> None:
    values = _values(record)
    for built in (record(**values), record(*values.values())):
        assert {name: getattr(built, name) for name in values} == values
        assert built == record(**values)
        assert hash(built) == hash(record(**values))


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: record.__name__)
def test_left_out_fields_take_their_defaults(record: Any) -> None:
    built = record(**_required(record))
    for each in dataclasses.fields(record):
        if each.default is not dataclasses.MISSING:
            assert getattr(built, each.name) is each.default
        elif each.default_factory is not dataclasses.MISSING:
            assert getattr(built, each.name) == each.default_factory()


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: record.__name__)
def test_a_record_stays_frozen(record: Any) -> None:
    built = record(**_required(record))
    name = dataclasses.fields(record)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, "changed")
    assert dataclasses.replace(built) == built


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: record.__name__)
def test_wrong_arguments_are_refused_as_before(record: Any) -> None:
    with pytest.raises(TypeError):
        record(**_required(record), not_a_field=1)
    required = _required(record)
    if required:
        with pytest.raises(TypeError):
            record(**dict(list(required.items())[1:]))


READ_LATER = [record for record in RECORDS if issubclass(record, model.ReadLater)]


def test_records_connectors_read_later_are_found() -> None:
    assert {model.Unit, model.Building, model.Tenant} <= set(READ_LATER)


@pytest.mark.parametrize("record", READ_LATER, ids=lambda record: record.__name__)
def test_a_records_maker_builds_what_its_class_builds(record: Any) -> None:
    """`made_later(cls, readers)` is what connectors call for every row: given every field,
    the same record, the same defaults, the same refusals."""
    values, required = _values(record), _required(record)
    later = [name for name in values if name not in required]
    make = model.made_later(record, dict.fromkeys(later[1:], _never_read))

    for built, expected in (
        (make(None, **values), record(**values)),
        (make(None, *values.values()), record(**values)),
        (make(None, **required, **_defaults(record, later[1:])), record(**required)),
    ):
        assert type(built) is record
        assert built == expected and hash(built) == hash(expected)
        assert {each.name: getattr(built, each.name) for each in dataclasses.fields(record)} == {
            each.name: getattr(expected, each.name) for each in dataclasses.fields(record)
        }
    with pytest.raises(TypeError):
        make(None, **required, not_a_field=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(make(None, **required), dataclasses.fields(record)[0].name, "changed")


def _defaults(record: Any, names: list[str]) -> dict[str, object]:
    defaults = {each.name: each.default for each in dataclasses.fields(record)}
    return {name: defaults[name] for name in names}


def _never_read(_row: object) -> object:
    raise AssertionError("a field given a value was read from the row")


@dataclasses.dataclass(frozen=True, slots=True)
class _Required(model.ReadLater):
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Shadowing(model.ReadLater):
    self: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Factory(model.ReadLater):
    names: list[str] = dataclasses.field(default_factory=list)


def test_a_maker_that_would_misread_its_fields_is_refused_at_import() -> None:
    """The maker is generated code: a reader it would never call, a field whose name its own
    code uses, or a parameter it would change, is an error where it is made, not a record
    silently wrong."""
    for record, readers, refusal in (
        (model.Unit, {"not_a_field": _never_read}, "cannot read \\['not_a_field'\\]"),
        (model.Landlord, {"buildings": _never_read}, "cannot read"),
        (_Required, {"name": _never_read}, "required"),
        (_Shadowing, {}, "shadow"),
        (_Factory, {}, "more than a value"),
    ):
        with pytest.raises(TypeError, match=refusal):
            model.made_later(record, readers)


def test_later_given_to_a_field_nothing_reads_is_refused() -> None:
    make = model.made_later(model.Unit, {"tenants": _never_read})
    with pytest.raises(TypeError, match="Unit.building was given LATER"):
        make(None, provider="p", source_id="1", building=model.LATER)


def _made_later(
    record: Any, reads: Counter[str], row_class: type[dict[str, str]] = dict
) -> tuple[Any, dict[str, str]]:
    """A record whose optional fields are all left to be read from a row, each read counted."""
    later = [name for name in _values(record) if name not in _required(record)]
    row = row_class({name: f"read {name}" for name in later})

    def reader(name: str) -> Callable[[dict[str, str]], str]:
        def read(row: dict[str, str]) -> str:
            reads[name] += 1
            return row[name]

        return read

    built = model.made_later(record, {name: reader(name) for name in later})(
        row, **_required(record)
    )
    return built, row


@pytest.mark.parametrize("record", READ_LATER, ids=lambda record: record.__name__)
def test_a_field_made_later_is_read_from_its_row_once_when_first_asked(record: Any) -> None:
    reads: Counter[str] = Counter()
    built, row = _made_later(record, reads)
    first = next(iter(row))
    assert not reads

    assert getattr(built, first) == getattr(built, first) == f"read {first}"
    assert reads == {first: 1}
    expected = record(**_required(record), **row)
    assert built == expected and hash(built) == hash(expected) and repr(built) == repr(expected)
    assert reads == dict.fromkeys(row, 1)
    assert dataclasses.replace(built) == copy.copy(built) == copy.deepcopy(built) == expected


@pytest.mark.parametrize("record", READ_LATER, ids=lambda record: record.__name__)
def test_a_record_read_later_answers_only_its_own_fields(record: Any) -> None:
    """Nothing else may come out of its row: graphql-core asks every value for `__await__`,
    and a record must not pass for an awaitable."""
    built, _ = _made_later(record, Counter())
    for name in ("__await__", "not_a_field"):
        assert not hasattr(built, name)
    with pytest.raises(AttributeError, match="'not_a_field'"):
        _ = built.not_a_field
    with pytest.raises(AttributeError, match="'not_a_field'"):
        _ = record(**_required(record)).not_a_field


@pytest.mark.parametrize("record", READ_LATER, ids=lambda record: record.__name__)
def test_a_settled_record_has_read_everything_and_let_its_row_go(record: Any) -> None:
    class Row(dict[str, str]):
        """A row that can be watched going away."""

    reads: Counter[str] = Counter()
    built, row = _made_later(record, reads, Row)
    gone = weakref.ref(row)
    values = dict(row)
    del row

    assert model.settled(built) is built and gone() is None
    assert built == record(**_required(record), **values) and reads == dict.fromkeys(values, 1)
