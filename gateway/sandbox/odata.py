"""The OData v4 query options, as a provider's server applies them to its rows.

`$filter` is parsed by `odata-query` (a maintained OData grammar) and evaluated
here over plain dicts. The server is as strict as the strictest real one:

- the query string is decoded by RFC 3986 alone, so a `+` stays a plus sign and
  a filter whose spaces went out as `+` is refused, as SAP CAP refuses it, and so
  is a `%` not followed by two hexadecimal digits;
- the options are read as the OData 4.01 ABNF writes them, or as the strictest of
  CAP and ASP.NET's OData reads them where that is stricter: no blank beside a comma
  in `$select` or `$orderby` (the ABNF's `in (…)` lists allow one, and so does this);
  `$top` and `$skip` ASCII digits alone; `$count` exactly `true` or `false` (the
  ABNF's `boolean` is case-blind, but CAP and ASP.NET's OData refuse `True`);
  `$expand` without a blank outside its options' values, nested options only those
  `expandOption` allows, and a nested `$count=true` answered (`Units@odata.count`);
- a filter is typed before a row is read, as ASP.NET's OData binds one: operands of
  one kind, functions' results typed (`length` an Edm.Int32), their arguments text,
  and booleans where a boolean is due;
- strings compare exactly and order by code point (SQLite's and PostgreSQL's
  `C` collation) unless the `sql_server` collation is asked for, which ignores
  trailing spaces and orders case-blind, as Primmo's SQL Server columns do;
- a request in a version it does not speak, or accepting nothing it writes, is
  refused (`negotiate`), and `IEEE754Compatible=true` is honoured (`ieee754`);
- pages are capped (`Server.max_page_size`), the rest behind `@odata.nextLink`
  with a `$skiptoken`, in expanded collections too, as ASP.NET's OData does;
- a filter of more than `MAX_NODE_COUNT` nodes is refused, counted as ASP.NET's
  OData counts them (`node_count`): its `MaxNodeCount` is 100 unless raised.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, unquote

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.visitor import NodeVisitor

__all__ = [
    "COLLATIONS",
    "MAX_NODE_COUNT",
    "VERSION",
    "Answer",
    "Collation",
    "EntitySet",
    "Format",
    "Navigation",
    "ODataError",
    "QueryOptions",
    "Server",
    "evaluate",
    "ieee754",
    "negotiate",
    "next_link",
    "node_count",
    "parse_count_options",
    "parse_filter",
    "parse_options",
    "query_pairs",
]

Row = dict[str, Any]


class ODataError(Exception):
    """Rendered as the OData error body, `{"error": {"code", "message"}}`, with a 400."""

    def __init__(self, message: str, code: str = "BadRequest", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class QueryOptions:
    select: list[str] | None = None
    filter: ast._Node | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    count: bool = False
    expand: dict[str, QueryOptions] = field(default_factory=dict)
    skiptoken: int = 0
    """Rows of this answer already served by earlier pages (the server's own next links)."""
    given: dict[str, str] = field(default_factory=dict)
    """The options as written, by lower-cased name: a next link repeats them."""


@dataclass(frozen=True)
class Collation:
    """How the database behind the server compares and orders text."""

    name: str
    equal: Callable[[str], Any]
    order: Callable[[str], Any]


COLLATIONS = {
    collation.name: collation
    for collation in (
        Collation("exact", lambda text: text, lambda text: text),
        Collation("sql_server", str.rstrip, lambda text: text.rstrip().casefold()),
    )
}


@dataclass(frozen=True)
class Server:
    """What differs between real OData servers, as knobs."""

    collation: Collation = COLLATIONS["exact"]
    max_page_size: int = 1000
    counts: bool = True
    """Whether `$count=true` puts `@odata.count` in the body; some servers ignore it."""
    root: str = ""
    """The service root URL, where next links point."""


@dataclass(frozen=True)
class Navigation:
    """A navigation property: the target set, how to follow it, and the properties the two
    sets share (a next link inside an expanded collection filters the target set by them)."""

    target: EntitySet
    follow: Callable[[Row], list[Row]]
    path: str
    """The target set's path below the service root."""
    on: tuple[str, ...]


@dataclass(frozen=True)
class EntitySet:
    """What the server knows of an entity set: its properties and how to follow navigations."""

    properties: frozenset[str]
    navigation: Mapping[str, Navigation] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    """Properties' EDM types (`Edm.Int32`), where known: a real server refuses a filter that
    compares one with an operand of another kind before it reads a row."""

    @classmethod
    def typed(
        cls, types: Mapping[str, str], navigation: Mapping[str, Navigation] | None = None
    ) -> EntitySet:
        return cls(frozenset(types), navigation or {}, types)


@dataclass(frozen=True)
class Answer:
    rows: list[Row]
    total: int | None
    skiptoken: int | None
    """Where the next page starts, when the server cut this one short."""


VERSION = "4.0"
"""The protocol version every answer says it is in (`OData-Version`)."""
_SPOKEN = frozenset({"4.0", "4.01"})
"""Request versions understood: `odata-version = "4.0" [ oneToNine ]`, of which these."""
_MAX_VERSION = re.compile(r"([0-9]+)\.([0-9]+)")


@dataclass(frozen=True)
class Format:
    """How a JSON answer is written, as the request's `Accept` chose (OData JSON §3)."""

    metadata: bool = True
    """`odata.metadata=minimal` (the context URL written) or `none` (left out)."""
    ieee754: bool = False
    """`IEEE754Compatible=true`: Edm.Int64 and Edm.Decimal values written as strings."""

    @property
    def media_type(self) -> str:
        written = "application/json;odata.metadata=" + ("minimal" if self.metadata else "none")
        return written + (";IEEE754Compatible=true" if self.ieee754 else "")


_JSON_PARAMETERS = {
    "odata.metadata": {"minimal", "none"},
    "metadata": {"minimal", "none"},
    "odata.streaming": {"true", "false"},
    "streaming": {"true", "false"},
    "ieee754compatible": {"true", "false"},
    "exponentialdecimals": {"true", "false"},
    "charset": {"utf-8"},
}
"""JSON's format parameters (OData JSON §3, with 4.01's unprefixed names) and the values
served: not `odata.metadata=full`, whose annotations the sandbox does not write."""
_TEXT_PARAMETERS = {"charset": {"utf-8"}}


def negotiate(headers: Mapping[str, str], produces: str) -> Format:
    """The format of an answer of media type `produces`, or the refusal a strict server
    gives: 400 for a version it does not speak (OData 4.01 Part 1 §8.2.6 and §8.2.7), 406
    when no type `Accept` names is one it writes, with parameters it knows and serves."""
    version = headers.get("odata-version")
    if version is not None and version not in _SPOKEN:
        raise ODataError(f"The OData-Version '{version}' is not supported: 4.0 or 4.01.")
    highest = headers.get("odata-maxversion")
    if highest is not None:
        match = _MAX_VERSION.fullmatch(highest)
        if match is None or (int(match[1]), int(match[2])) < (4, 0):
            raise ODataError(f"The OData-MaxVersion '{highest}' is below 4.0, which is spoken.")
    accept = headers.get("accept", "").strip()
    if not accept:
        return Format()
    known = _JSON_PARAMETERS if produces == "application/json" else _TEXT_PARAMETERS
    kind = produces.split("/")[0]
    best: tuple[float, dict[str, str]] | None = None
    for name, parameters, weight in _media_ranges(accept):
        fits = name in ("*/*", f"{kind}/*", produces)
        understood = all(value in known.get(key, ()) for key, value in parameters.items())
        if fits and understood and weight > 0 and (best is None or weight > best[0]):
            best = (weight, parameters)
    if best is None:
        raise ODataError(
            f"No media type in Accept '{accept}' is {produces} with parameters this service "
            "knows and serves.",
            code="NotAcceptable",
            status=406,
        )
    chosen = best[1]
    metadata = chosen.get("odata.metadata", chosen.get("metadata", "minimal"))
    return Format(metadata != "none", chosen.get("ieee754compatible") == "true")


def _media_ranges(accept: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """Each media range of an `Accept` header (RFC 9110 §12.5.1) in lower case, with its
    parameters and its weight; one whose weight is not a number is skipped."""
    for media_range in accept.split(","):
        name, *pairs = (part.strip() for part in media_range.split(";"))
        parameters = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            parameters[key.strip().lower()] = value.strip().strip('"').lower()
        try:
            weight = float(parameters.pop("q", "1"))
        except ValueError:
            continue
        yield name.lower(), parameters, weight


_WIDE = frozenset({"Edm.Int64", "Edm.Decimal"})


def ieee754(row: Row, entity_set: EntitySet) -> Row:
    """A row as `IEEE754Compatible=true` wants it (OData JSON §3.2): its Edm.Int64 and
    Edm.Decimal values, and its expanded collections' counts (an Edm.Int64), as strings in
    the digits the number would have been written in; its expanded rows alike."""
    written: Row = {}
    for key, value in row.items():
        name, _, annotation = key.partition("@")
        navigation = entity_set.navigation.get(name)
        if annotation == "odata.count" or (
            not annotation
            and entity_set.types.get(key) in _WIDE
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            written[key] = json.dumps(value)
        elif navigation is not None and not annotation:
            written[key] = [ieee754(item, navigation.target) for item in value]
        else:
            written[key] = value
    return written


_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$expand", "$skiptoken"}
_SAFE = "$'()*,;:@/!="


_STRAY_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """A query string decoded as RFC 3986 says, not as an HTML form: `+` is not a space,
    and a `%` is the start of `pct-encoded = "%" HEXDIG HEXDIG` or the URL is malformed
    (`unquote` would keep `%ZZ` as text, a guess no real server makes)."""
    if _STRAY_PERCENT.search(raw):
        raise ODataError("The query string has a '%' not followed by two hexadecimal digits.")
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        try:
            pairs.append(
                (
                    unquote(name.decode("ascii"), errors="strict"),
                    unquote(value.decode("ascii"), errors="strict"),
                )
            )
        except UnicodeError:
            raise ODataError("The query string is not percent-encoded UTF-8.") from None
    return pairs


def parse_options(params: Sequence[tuple[str, str]]) -> QueryOptions:
    """Reads the `$` options of a query string; their names are case-insensitive."""
    options: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("$"):
            continue
        key = name.lower()
        if key not in _OPTIONS:
            raise ODataError(f"The query option '{name}' is not supported.")
        if key in options:
            raise ODataError(f"The query option '{name}' is given more than once.")
        options[key] = value
    return _build(options)


_COUNT_OPTIONS = frozenset({"$filter"})
"""What a `/$count` segment honours (OData 4.01 §11.2.10: `$filter` and `$search`)."""


def parse_count_options(params: Sequence[tuple[str, str]]) -> QueryOptions:
    """The options of a `/$count` request: any but `$filter` is refused, not dropped, as a
    count that silently ignored `$top` would answer another question than the one asked."""
    options = parse_options(params)
    for name in options.given.keys() - _COUNT_OPTIONS:
        raise ODataError(f"The query option '{name}' cannot be applied to $count.")
    options.count = True
    return options


def next_link(url: str, params: Sequence[tuple[str, str]], skiptoken: int) -> str:
    """`url` (the request's path relative to the service root, as CAP writes it, or an
    absolute one) with the request's options and `$skiptoken` set: the client follows it
    as it is, resolved against the answer's context URL."""
    kept = [(name, value) for name, value in params if name.lower() != "$skiptoken"]
    kept.append(("$skiptoken", str(skiptoken)))
    query = "&".join(f"{quote(name, _SAFE)}={quote(value, _SAFE)}" for name, value in kept)
    return f"{url}?{query}"


def _build(options: Mapping[str, str]) -> QueryOptions:
    result = QueryOptions(given=dict(options))
    if "$select" in options:
        result.select = [_select_item(item) for item in options["$select"].split(",")]
    if "$filter" in options:
        result.filter = parse_filter(options["$filter"])
    if "$orderby" in options:
        result.orderby = [_order_item(item) for item in options["$orderby"].split(",")]
    if "$top" in options:
        result.top = _non_negative("$top", options["$top"])
    if "$skip" in options:
        result.skip = _non_negative("$skip", options["$skip"])
    if "$count" in options:
        if options["$count"] not in ("true", "false"):
            raise ODataError(f"$count must be true or false, not '{options['$count']}'.")
        result.count = options["$count"] == "true"
    if "$expand" in options:
        result.expand = _parse_expand(options["$expand"])
    if "$skiptoken" in options:
        result.skiptoken = _non_negative("$skiptoken", options["$skiptoken"])
    return result


@functools.lru_cache(maxsize=256)
def parse_filter(text: str) -> ast._Node:
    """Parsed once per distinct text, as a database keeps the plan of a statement it has seen:
    a batched 80-unit filter took the parser longer than the rows took to filter. The trees
    are frozen, so sharing them is safe."""
    try:
        tree: ast._Node = ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as error:
        raise ODataError(f"The $filter expression is invalid: {error}") from None
    if node_count(tree) > MAX_NODE_COUNT:
        raise ODataError(
            f"The node count limit of '{MAX_NODE_COUNT}' has been exceeded. To increase the "
            "limit, set the 'MaxNodeCount' property on EnableQueryAttribute or "
            "ODataValidationSettings."
        )
    return tree


MAX_NODE_COUNT = 100
"""ASP.NET's OData default (`ODataValidationSettings.MaxNodeCount`), which a service keeps
unless it raises it: the strictest server a connector may meet."""


def node_count(node: ast._Node, variables: frozenset[str] = frozenset()) -> int:
    """The nodes of a filter as ASP.NET's validator counts them over this sandbox's model,
    whose properties carry no facets: one for each node it visits
    (`FilterQueryValidator.ValidateQueryNode`). A property is two, itself and the `$it` it is
    read from (a lambda's variable is one); `null` two, as it is converted to the other side's
    type; an `in` one, since the validator does not look inside it."""
    count = functools.partial(node_count, variables=variables)
    if isinstance(node, ast.Identifier):
        return 1 if node.name in variables else 2
    if isinstance(node, ast.Null):
        return 2
    if isinstance(node, ast.Compare):
        if isinstance(node.comparator, ast.In):
            return 1
        return 1 + count(node.left) + count(node.right)
    if isinstance(node, ast.BoolOp | ast.BinOp):
        return 1 + count(node.left) + count(node.right)
    if isinstance(node, ast.UnaryOp):
        return 1 + count(node.operand)
    if isinstance(node, ast.Call):
        return 1 + sum(count(argument) for argument in node.args)
    if isinstance(node, ast.Attribute):
        return 1 + count(node.owner)
    if isinstance(node, ast.CollectionLambda):
        if node.lambda_ is None:
            return 1 + count(node.owner)
        inner = variables | {node.lambda_.identifier.name}
        return 1 + count(node.owner) + node_count(node.lambda_.expression, inner)
    return 1


_IDENTIFIER = r"[^\W\d]\w{0,127}"
"""`odataIdentifier`: a letter or `_`, then up to 127 letters, digits or `_`."""
_SELECT_ITEM = re.compile(rf"\*|{_IDENTIFIER}")
_ORDER_ITEM = re.compile(rf"({_IDENTIFIER})(?:[ \t]+(asc|desc))?")
"""`orderbyItem = commonExpr [ RWS ( "asc" / "desc" ) ]`, over property names. The words
are read in lower case, as CAP and ASP.NET's OData read them (`DESC` is their 400)."""


def _select_item(item: str) -> str:
    """One `selectItem`: no blank beside its commas and none empty, as the ABNF has it
    (`COMMA = "," / "%2C"`, no `BWS`)."""
    if not _SELECT_ITEM.fullmatch(item):
        raise ODataError(f"The $select item '{item}' is invalid.")
    return item


def _order_item(item: str) -> tuple[str, bool]:
    match = _ORDER_ITEM.fullmatch(item)
    if match is None:
        raise ODataError(f"The $orderby item '{item}' is invalid.")
    return match[1], match[2] == "desc"


_DIGITS = re.compile(r"[0-9]+")


def _non_negative(name: str, text: str) -> int:
    """`1*DIGIT`, ASCII digits alone: `int()` would also take a sign, blanks, `1_0` and
    other scripts' digits (`١`), none of which a standard server reads as a number."""
    if not _DIGITS.fullmatch(text):
        raise ODataError(f"{name} must be a non-negative integer, not '{text}'.")
    return int(text)


def _split_top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside parentheses and quotes, each part as written:
    an empty part or a blank beside a separator is the caller's to refuse."""
    parts: list[str] = []
    depth, start, quoted = 0, 0, False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ODataError("Unbalanced parentheses in $expand.")
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0 or quoted:
        raise ODataError("Unbalanced parentheses or quotes in $expand.")
    parts.append(text[start:])
    return parts


_EXPAND_ITEM = re.compile(rf"({_IDENTIFIER})(?:\((.+)\))?", re.DOTALL)
"""`navigationProperty [ OPEN expandOption *( SEMI expandOption ) CLOSE ]`, no blank
anywhere but inside an option's value."""
_EXPAND_OPTIONS = frozenset(
    "$filter $search $orderby $skip $top $count $select $expand $compute $levels".split()
)
"""`expandOption`'s system options: not `$skiptoken`, which names a page of a whole answer.
Those it allows and the sandbox does not serve (`$search`, `$compute`, `$levels`) are
refused as not supported, as at the top, rather than ignored."""


def _parse_expand(text: str) -> dict[str, QueryOptions]:
    expanded: dict[str, QueryOptions] = {}
    for item in _split_top_level(text, ","):
        match = _EXPAND_ITEM.fullmatch(item)
        if match is None:
            raise ODataError(f"The $expand item '{item}' is invalid.")
        name, inside = match[1], match[2]
        nested: dict[str, str] = {}
        for option in _split_top_level(inside, ";") if inside is not None else []:
            key, sep, value = option.partition("=")
            if not sep or key.lower() not in _EXPAND_OPTIONS:
                raise ODataError(f"The nested option '{option}' is invalid in $expand.")
            if key.lower() in nested:
                raise ODataError(f"The nested option '{key}' is given more than once.")
            nested[key.lower()] = value
        for key in nested.keys() - _OPTIONS:
            raise ODataError(f"The query option '{key}' is not supported.")
        expanded[name] = _build(nested)
    return expanded


def evaluate(
    rows: Sequence[Row], options: QueryOptions, entity_set: EntitySet, server: Server
) -> Answer:
    """Applies the options in OData's order: filter, count, orderby, skip, top, then the
    server's page cap, then shape."""
    _check_names(options, entity_set)
    selected: list[Row] = list(rows)
    if options.filter is not None:
        compiler = _Compiler(entity_set.properties, server.collation, entity_set.types)
        matches = compiler.predicate(options.filter)
        selected = [row for row in selected if matches(row)]
    total = len(selected) if options.count and server.counts else None
    for name, descending in reversed(options.orderby):
        key = _sort_key_of(name, server.collation, entity_set.types.get(name))
        selected.sort(key=key, reverse=descending)
    selected = selected[options.skip :]
    if options.top is not None:
        selected = selected[: options.top]
    start, end = options.skiptoken, options.skiptoken + server.max_page_size
    following = end if end < len(selected) else None
    shaped = [_shape(row, options, entity_set, server) for row in selected[start:end]]
    return Answer(shaped, total, following)


def _check_names(options: QueryOptions, entity_set: EntitySet) -> None:
    known = entity_set.properties | set(entity_set.navigation)
    for name in options.select or []:
        if name != "*" and name not in known:
            raise ODataError(f"Could not find a property named '{name}'.")
    for name, _ in options.orderby:
        if name not in entity_set.properties:
            raise ODataError(f"Could not find a property named '{name}' to order by.")
    for name in options.expand:
        if name not in entity_set.navigation:
            raise ODataError(f"Could not find a navigation property named '{name}'.")


def _shape(row: Row, options: QueryOptions, entity_set: EntitySet, server: Server) -> Row:
    names = options.select if options.select and "*" not in options.select else None
    shaped = {
        key: value
        for key, value in row.items()
        if key in entity_set.properties and (names is None or key in names)
    }
    for name, nested in options.expand.items():
        navigation = entity_set.navigation[name]
        answer = evaluate(navigation.follow(row), nested, navigation.target, server)
        if answer.total is not None:
            shaped[f"{name}@odata.count"] = answer.total
        shaped[name] = answer.rows
        if answer.skiptoken is not None:
            shaped[f"{name}@odata.nextLink"] = _nested_link(
                row, nested, navigation, server, answer.skiptoken
            )
    return shaped


def _nested_link(
    row: Row, nested: QueryOptions, navigation: Navigation, server: Server, skiptoken: int
) -> str:
    """The rest of an expanded collection, as the target set filtered to this row's own."""
    keys = " and ".join(f"{name} eq {_literal(row.get(name))}" for name in navigation.on)
    given = dict(nested.given)
    given["$filter"] = f"({keys}) and ({given['$filter']})" if "$filter" in given else keys
    return next_link(f"{server.root}/{navigation.path}", list(given.items()), skiptoken)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if value is None:
        return "null"
    return str(value)


@functools.total_ordering
class _Key:
    """Orders mixed values the way the database would: nulls first, text by its collation."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.value == other.value

    def __lt__(self, other: _Key) -> bool:
        if self.value is None or other.value is None:
            return self.value is None and other.value is not None
        return bool(self.value < other.value)


def _sort_key_of(name: str, collation: Collation, kind: str | None) -> Callable[[Row], _Key]:
    """Text by the collation; a DateTimeOffset by the instant it names, whatever its offset
    (`-04:00` in summer, `-05:00` in winter), as SQL Server orders one."""

    def key(row: Row) -> _Key:
        value = row.get(name)
        if kind == "Edm.DateTimeOffset" and isinstance(value, str):
            return _Key(datetime.fromisoformat(value).astimezone(UTC))
        return _Key(collation.order(value) if isinstance(value, str) else value)

    return key


Compiled = Callable[[Row], Any]
"""A compiled part of a filter: its value for a row."""


class _Compiler(NodeVisitor):
    """A `$filter` tree turned once into nested closures over a row. Walking the tree for
    every row cost Primmo's sandbox tens of milliseconds on a batched 80-unit filter; names
    are checked here, up front, as a database checks a statement before it reads a row."""

    _FUNCTIONS: dict[str, Callable[..., Any]] = {
        "contains": lambda text, part: part in text,
        "startswith": lambda text, part: text.startswith(part),
        "endswith": lambda text, part: text.endswith(part),
        "tolower": str.lower,
        "toupper": str.upper,
        "trim": str.strip,
        "length": len,
    }

    def __init__(
        self, properties: frozenset[str], collation: Collation, types: Mapping[str, str]
    ) -> None:
        self.properties = properties
        self.collation = collation
        self.types = types

    def _type_of(self, node: ast._Node) -> str | None:
        """A node's EDM type as the filter's text gives it: a property's, a literal's, a
        function's result (`trim` text, `length` Edm.Int32), a comparison's or a boolean
        operator's (Edm.Boolean); None where the text does not say (`null`)."""
        if isinstance(node, ast.Identifier):
            return self.types.get(node.name)
        if isinstance(node, ast.Call):
            return _RESULT_TYPES.get(node.func.name.lower())
        if isinstance(node, ast.Compare | ast.BoolOp):
            return "Edm.Boolean"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return "Edm.Boolean"
        return _LITERAL_TYPES.get(type(node))

    def _is_not(self, node: ast._Node, wanted: str) -> str | None:
        """`node`'s type when it is known and of another kind than `wanted`."""
        held = self._type_of(node)
        if held in _EDM_KINDS and _EDM_KINDS[held] != _EDM_KINDS[wanted]:
            return held
        return None

    def _check_types(self, left: ast._Node, right: ast._Node) -> None:
        """Operands of another kind (`Id eq '1'` on an Int32, `length(UnitCode) eq 'x'`) are
        refused as ASP.NET's OData refuses them, whatever the rows hold."""
        held = self._type_of(left)
        if held not in _EDM_KINDS:
            return
        for item in right.val if isinstance(right, ast.List) else [right]:
            given = self._is_not(item, held)
            if given is not None:
                raise ODataError(
                    "A binary operator with incompatible types was detected. "
                    f"Found operand types '{held}' and '{given}'."
                )

    def _check_boolean(self, node: ast._Node, where: str) -> None:
        held = self._is_not(node, "Edm.Boolean")
        if held is not None:
            raise ODataError(f"{where} must be an Edm.Boolean, not '{held}'.")

    def _comparable(self, value: Any) -> Any:
        return self.collation.equal(value) if isinstance(value, str) else value

    def predicate(self, node: ast._Node) -> Callable[[Row], bool]:
        self._check_boolean(node, "The $filter expression")
        lookup = self._index(node)
        if lookup is not None:
            return lookup
        value = self.visit(node)
        return lambda row: value(row) is True

    def _index(self, node: ast._Node) -> Callable[[Row], bool] | None:
        """`(A eq 1 and B eq 'x') or (A eq 2 and B eq 'y') or ...`, the shape of a batch of
        keys, answered as an index would: one set lookup per row, not every clause. Any
        other shape is None and goes clause by clause."""
        keys: set[tuple[Any, ...]] = set()
        names: tuple[str, ...] | None = None
        for conjunction in _operands(node, ast.Or):
            matched: dict[str, Any] = {}
            for term in _operands(conjunction, ast.And):
                pair = _equality(term)
                if pair is None or pair[0] in matched:
                    return None
                self._check_types(ast.Identifier(pair[0]), pair[1])
                matched[pair[0]] = self.visit(pair[1])({})
            if not matched.keys() <= self.properties:
                return None
            ordered = tuple(sorted(matched))
            if names is not None and ordered != names:
                return None
            names = ordered
            keys.add(tuple(self._comparable(matched[name]) for name in names))
        if names is None:
            return None
        comparable = self._comparable
        return lambda row: tuple(comparable(row.get(name)) for name in names) in keys

    def _constant(self, value: Any) -> Compiled:
        return lambda _row: value

    def visit_Identifier(self, node: ast.Identifier) -> Compiled:
        if node.namespace or node.name not in self.properties:
            raise ODataError(f"Could not find a property named '{node.name}'.")
        name = node.name
        if self.types.get(name) == "Edm.Date":
            return lambda row: _as_date(row.get(name))
        return lambda row: row.get(name)

    def visit_Null(self, node: ast.Null) -> Compiled:  # noqa: ARG002
        return self._constant(None)

    def visit_Integer(self, node: ast.Integer) -> Compiled:
        return self._constant(int(node.val))

    def visit_Float(self, node: ast.Float) -> Compiled:
        return self._constant(float(node.val))

    def visit_Boolean(self, node: ast.Boolean) -> Compiled:
        return self._constant(node.val.lower() == "true")

    def visit_String(self, node: ast.String) -> Compiled:
        return self._constant(node.val)

    def visit_Date(self, node: ast.Date) -> Compiled:
        return self._constant(date.fromisoformat(node.val))

    def visit_List(self, node: ast.List) -> Compiled:
        items = [self.visit(item) for item in node.val]
        return lambda row: [item(row) for item in items]

    def visit_Compare(self, node: ast.Compare) -> Compiled:
        self._check_types(node.left, node.right)
        left, right = self.visit(node.left), self.visit(node.right)
        comparator = node.comparator
        _comparable = self._comparable
        if isinstance(comparator, ast.In):

            def among(row: Row) -> bool:
                values = right(row)
                if not isinstance(values, list):
                    raise ODataError("'in' needs a list on its right.")
                return _comparable(left(row)) in [_comparable(item) for item in values]

            return among
        if isinstance(comparator, ast.Eq):
            return lambda row: _comparable(left(row)) == _comparable(right(row))
        if isinstance(comparator, ast.NotEq):
            return lambda row: _comparable(left(row)) != _comparable(right(row))
        order = _ORDER.get(type(comparator))
        if order is None:
            raise ODataError("Unsupported comparison.")

        def ordered(row: Row) -> bool:
            one, other = _comparable(left(row)), _comparable(right(row))
            if one is None or other is None:
                return False
            _check_same_kind(one, other)
            return bool(order(one, other))

        return ordered

    def visit_BoolOp(self, node: ast.BoolOp) -> Compiled:
        for operand in (node.left, node.right):
            self._check_boolean(operand, "An operand of 'and' or 'or'")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.And):
            return lambda row: left(row) is True and right(row) is True
        return lambda row: left(row) is True or right(row) is True

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            self._check_boolean(node.operand, "The operand of 'not'")
            return lambda row: operand(row) is not True

        def negative(row: Row) -> Any:
            value = operand(row)
            if isinstance(value, int | float):
                return -value
            raise ODataError("'-' needs a number.")

        return negative

    def visit_Call(self, node: ast.Call) -> Compiled:
        name = node.func.name
        function = self._FUNCTIONS.get(name.lower())
        if function is None:
            raise ODataError(f"The function '{name}' is not supported.")
        for arg in node.args:
            held = self._is_not(arg, "Edm.String")
            if held is not None:
                raise ODataError(
                    f"No function signature for the function '{name}' matches its arguments: "
                    f"it takes Edm.String, not '{held}'."
                )
        arguments = [self.visit(arg) for arg in node.args]

        def call(row: Row) -> Any:
            args = [argument(row) for argument in arguments]
            if any(arg is None for arg in args):
                return None
            if not all(isinstance(arg, str) for arg in args):
                raise ODataError(f"The function '{name}' needs text arguments.")
            return function(*args)

        return call

    def generic_visit(self, node: ast._Node) -> Any:
        raise ODataError(f"'{type(node).__name__}' is not supported in $filter.")


def _as_date(value: Any) -> date | None:
    """A date column's value as the database holds it: rows keep the ISO text they are
    served as, compared as the dates they are."""
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value


def _operands(node: ast._Node, joined_by: type) -> list[ast._Node]:
    """The terms joined by one boolean operator, however the parser nested them."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, joined_by):
        return [*_operands(node.left, joined_by), *_operands(node.right, joined_by)]
    return [node]


_LITERALS = (ast.String, ast.Integer, ast.Float, ast.Boolean)

_RESULT_TYPES = {
    "contains": "Edm.Boolean",
    "startswith": "Edm.Boolean",
    "endswith": "Edm.Boolean",
    "tolower": "Edm.String",
    "toupper": "Edm.String",
    "trim": "Edm.String",
    "length": "Edm.Int32",
}
"""What each function the compiler serves gives, as OData's canonical functions are typed;
each takes Edm.String arguments alone."""

_LITERAL_TYPES: dict[type, str] = {
    ast.String: "Edm.String",
    ast.Integer: "Edm.Int32",
    ast.Float: "Edm.Double",
    ast.Boolean: "Edm.Boolean",
    ast.Date: "Edm.Date",
}
"""A literal's EDM type; `null` has none, and compares with anything."""
_EDM_KINDS = {
    "Edm.String": "text",
    "Edm.Int16": "number",
    "Edm.Int32": "number",
    "Edm.Int64": "number",
    "Edm.Double": "number",
    "Edm.Decimal": "number",
    "Edm.Boolean": "boolean",
    "Edm.Date": "date",
    "Edm.DateTimeOffset": "moment",
}
"""Types that compare with one another: numbers of any width, and each other type alone."""


def _equality(node: ast._Node) -> tuple[str, ast._Node] | None:
    """`Name eq literal` (either way round) as (name, literal); anything else None."""
    if not isinstance(node, ast.Compare) or not isinstance(node.comparator, ast.Eq):
        return None
    for name, literal in ((node.left, node.right), (node.right, node.left)):
        if isinstance(name, ast.Identifier) and not name.namespace:
            if isinstance(literal, _LITERALS):
                return name.name, literal
    return None


_ORDER: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _check_same_kind(left: Any, right: Any) -> None:
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return
    if type(left) is not type(right):
        raise ODataError(
            f"Cannot compare {type(left).__name__} with {type(right).__name__} in $filter."
        )
