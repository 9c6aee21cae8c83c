"""One way to call a provider: send, map a refusal to its stable error, read the body.

Five providers answer in five dialects (OData's `{"error": {...}}`, pms's envelope
and error codes, MyCRM's named errors, LEAP's XML, SCOM's GraphQL over JSON), but
every call has the same shape. That shape is written once, here; what differs is a
`Dialect`, the data and small hooks a connector declares once: how its error
bodies read, what its error names mean, how its body parses, what envelope
every answer comes in. What one call alone means by a status (a LEAP 409 is
`EXTERNAL_ID_IN_USE`) is that call's `refusals`.

A provider's body is untrusted: what cannot be parsed, or is not what the call
expects, is `UPSTREAM_INVALID_RESPONSE` for that provider and nothing else.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from gateway.errors import (
    Conflict,
    GatewayError,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    RateLimited,
    UpstreamDenied,
    UpstreamInvalidResponse,
    UpstreamRejected,
    UpstreamUnavailable,
    ValidationFailed,
)
from gateway.upstream.client import parse_json, unbound
from gateway.upstream.transports import RetryAfter, retry_after_header

__all__ = [
    "Dialect",
    "Failure",
    "Refusals",
    "Said",
    "check_status",
    "error_member",
    "json_body",
    "member",
    "send",
]


async def send(
    client: httpx.AsyncClient, provider: str, method: str, url: str | httpx.URL, **kwargs: Any
) -> httpx.Response:
    """Sends, turning network failures into that provider's stable errors.

    A write that failed after it may have left (a read timeout, a dropped
    connection) is `OUTCOME_UNKNOWN`: reporting it as failed could make a caller
    create the same tenant twice. A `json` body is written by orjson, which writes an
    amount (`values.json_amount`) in its own digits rather than through a float.
    """
    if "json" in kwargs:
        headers = {"Content-Type": "application/json", **(kwargs.pop("headers", None) or {})}
        kwargs |= {"content": orjson.dumps(kwargs.pop("json")), "headers": headers}
    try:
        response = await client.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
        raise UpstreamUnavailable(
            provider, f"{provider} could not be reached ({type(error).__name__})."
        ) from None
    except httpx.HTTPError as error:
        if method.upper() not in _READS:
            raise OutcomeUnknown(
                provider,
                f"{provider} did not confirm the write ({type(error).__name__}); "
                "it may or may not have happened.",
            ) from None
        if isinstance(error, httpx.TimeoutException):
            raise UpstreamUnavailable(provider, f"{provider} did not answer in time.") from None
        raise UpstreamUnavailable(
            provider, f"{provider} could not be reached ({type(error).__name__})."
        ) from None
    return unbound(response)


class Failure(enum.Enum):
    """What a provider's refusal means for the caller, whatever status it came with."""

    NOT_FOUND = "not found"
    INVALID = "invalid"
    """The content was refused: a write's input (the caller fixes it), or a read's
    parameters (the gateway's own)."""
    REJECTED = "rejected"
    """The request itself was malformed: a gateway bug."""
    DENIED = "denied"
    CONFLICT = "conflict"
    """The write clashes with the record's state (ending a lease that has ended): the caller
    reads it again and decides."""
    RATE_LIMITED = "rate limited"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Said:
    """A failed response's body as its connector reads it: the provider's own name for the
    error, its words, and the fields it names."""

    name: str | None = None
    message: str | None = None
    problems: tuple[dict[str, str], ...] = ()


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _by_status(status: int) -> Failure | None:
    if status == 429:
        return Failure.RATE_LIMITED
    if status == 404:
        return Failure.NOT_FOUND
    if status == 409:
        return Failure.CONFLICT
    if status in (400, 414):
        return Failure.REJECTED
    if status in (401, 403):
        return Failure.DENIED
    if status >= 500:
        return Failure.UNAVAILABLE
    return None


def check_status(
    response: httpx.Response,
    provider: str,
    said: Said,
    retry_after: RetryAfter = retry_after_header,
    names: Mapping[str, Failure] | None = None,
) -> None:
    """Raises the stable error for a failed response.

    `said` is what its body said; `names` is the connector's table of the provider's
    error names. A name in the table decides, as the provider meant it; the status
    decides only for names the table does not know.
    """
    status = response.status_code
    if status < 400:
        return
    failure = (names or {}).get(said.name or "") or _by_status(status)
    labelled = f"HTTP {status}" + (f" {said.name}" if said.name else "")
    words = f": {said.message}" if said.message else ""
    match failure:
        case Failure.RATE_LIMITED:
            raise RateLimited(
                provider, f"{provider} is rate limiting the gateway{words}", retry_after(response)
            )
        case Failure.NOT_FOUND:
            raise NotFound(f"{provider} has no such record{words}", provider=provider)
        case Failure.INVALID if response.request.method not in _READS:
            raise ValidationFailed(
                provider,
                said.message or f"{provider} refused the write ({labelled}).",
                list(said.problems),
            )
        case Failure.INVALID | Failure.REJECTED:
            fields = "; ".join(f"{p['field']}: {p['message']}" for p in said.problems if p["field"])
            raise UpstreamRejected(
                provider,
                f"{provider} rejected the gateway's request ({labelled}){words}"
                + (f" ({fields})" if fields else ""),
            )
        case Failure.CONFLICT if response.request.method not in _READS:
            raise Conflict(provider, f"{provider} refused the write ({labelled}){words}")
        case Failure.DENIED:
            raise UpstreamDenied(provider, f"{provider} denied access ({labelled}){words}")
        case Failure.UNAVAILABLE:
            raise UpstreamUnavailable(provider, f"{provider} failed ({labelled}){words}")
    raise ProviderError(provider, f"{provider} answered {labelled}{words}")


async def json_body(content: bytes, provider: str) -> Any:
    """A body parsed as JSON (the default for every provider but LEAP)."""
    try:
        return parse_json(content)
    except ValueError:
        raise UpstreamInvalidResponse(
            provider, f"{provider} returned a body that is not JSON."
        ) from None


def error_member(body: Any) -> Said:
    """The common `{"error": {"code", "message", "target", "details"}}` body (OData JSON
    Format §21): its words, and the properties it names, each detail's `target` with its
    message, or the error's own `target` (ASP.NET's validation words its message generally,
    "The request is invalid.", and names the property only there)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return Said()
    message = str(error["message"]) if error.get("message") else None
    details = error.get("details")
    problems = [
        {"field": str(detail.get("target") or ""), "message": str(detail["message"])}
        for detail in (details if isinstance(details, list) else ())
        if isinstance(detail, dict) and detail.get("message")
    ]
    target = error.get("target")
    if not problems and message and isinstance(target, str) and target:
        problems = [{"field": target, "message": message}]
    return Said(message=message, problems=tuple(problems))


def member(body: Any, key: str) -> Any:
    """`body[key]` when the body is an object, else None: for envelopes named per call."""
    return body.get(key) if isinstance(body, dict) else None


def _named(problem: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, str]:
    named = problem.get("field", "")
    if not named:
        message = problem.get("message", "")
        named = next((name for name in fields if re.search(rf"\b{re.escape(name)}\b", message)), "")
    return {**problem, "field": fields.get(named, named)}


def _what(kind: str, key: str | None) -> str:
    return f"returned no {kind}" + (f" as '{key}'" if key else "")


Refusals = Mapping[int, Callable[[Said], GatewayError]]
"""What a status means for one call alone, given what the body said."""


@dataclass(frozen=True)
class Dialect:
    """How one provider answers: everything its calls share that another provider's do not."""

    provider: str
    said: Callable[[Any], Said] | None = error_member
    """Reads a failed response's parsed body; None for a provider whose error bodies
    say nothing worth passing on."""
    names: Mapping[str, Failure] = field(default_factory=dict)
    """The provider's error names, by what each means."""
    retry_after: RetryAfter = retry_after_header
    parse: Callable[[bytes, str], Awaitable[Any]] = json_body
    envelope: Callable[[Any], Any] | None = None
    """Checks and opens the envelope every successful body comes in (pms's `data`)."""
    total: Callable[[Any], int | None] | None = None
    """Reads the total a list's body gives beside its records, envelope included."""
    heard: Callable[[httpx.Response], None] | None = None
    """Told of every successful response, for what a provider says in its headers."""

    async def response(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str | httpx.URL,
        *,
        refusals: Refusals | None = None,
        passes: Collection[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """The provider's successful response, or its stable error; a status in `passes`
        is handed back as it is, for a call to which it is an answer."""
        response = await send(client, self.provider, method, url, **kwargs)
        status = response.status_code
        if status >= 400 and status not in passes:
            said = await self._said(response)
            if refusals and status in refusals:
                raise refusals[status](said)
            check_status(response, self.provider, said, self.retry_after, self.names)
        if self.heard is not None:
            self.heard(response)
        return response

    async def body(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str | httpx.URL,
        *,
        refusals: Refusals | None = None,
        **kwargs: Any,
    ) -> Any:
        """The successful response's body, parsed, out of its envelope."""
        response = await self.response(client, method, url, refusals=refusals, **kwargs)
        _, content = await self._opened(response)
        return content

    async def write(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        fields: Mapping[str, str],
        refusals: Refusals | None = None,
        **kwargs: Any,
    ) -> Any:
        """A write's answer, out of its envelope, or None when the provider answered 204 No
        Content (it wrote, and said nothing). A refusal of its content names the caller's
        fields: `fields` maps the provider's names to the unified ones, read from the
        provider's list of fields, or from its words where it gives none."""
        try:
            response = await self.response(client, method, url, refusals=refusals, **kwargs)
        except ValidationFailed as error:
            problems = [_named(problem, fields) for problem in error.problems]
            raise ValidationFailed(self.provider, error.message, problems) from None
        if response.status_code == 204:
            return None
        _, content = await self._opened(response)
        return content

    async def found(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> Any | None:
        """The body, or None when the provider has no such record."""
        try:
            return await self.body(client, method, url, **kwargs)
        except NotFound:
            return None

    async def one(
        self, client: httpx.AsyncClient, url: str, key: str | None = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        """One record read (under `key` where the provider names it), or None when the
        provider has no such record."""
        body = await self.found(client, "GET", url, **kwargs)
        if body is None:
            return None
        return self.as_record(body if key is None else member(body, key), _what("record", key))

    async def listing(
        self, client: httpx.AsyncClient, url: str, key: str | None = None, **kwargs: Any
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of records (under `key` where the provider names it) and the total the
        provider gives, if it does."""
        parsed, content = await self._opened(await self.response(client, "GET", url, **kwargs))
        total = self.total(parsed) if self.total is not None else None
        rows = self.as_records(content if key is None else member(content, key), _what("list", key))
        return rows, total

    def as_record(self, value: Any, complaint: str) -> dict[str, Any]:
        """`value` as one record, or the provider's invalid response: `complaint` says why."""
        if not isinstance(value, dict):
            raise UpstreamInvalidResponse(self.provider, f"{self.provider} {complaint}.")
        return value

    def as_records(self, value: Any, complaint: str) -> list[dict[str, Any]]:
        """`value` as a list of records, or the provider's invalid response."""
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise UpstreamInvalidResponse(self.provider, f"{self.provider} {complaint}.")
        return value

    async def _opened(self, response: httpx.Response) -> tuple[Any, Any]:
        """The body as parsed, and its content out of the envelope."""
        parsed = await self.parse(response.content, self.provider)
        return parsed, parsed if self.envelope is None else self.envelope(parsed)

    async def _said(self, response: httpx.Response) -> Said:
        if self.said is None:
            return Said()
        try:
            parsed = await self.parse(response.content, self.provider)
        except UpstreamInvalidResponse:
            return Said()
        return self.said(parsed)
