"""How a GraphQL response leaves over HTTP, per the GraphQL-over-HTTP specification.

The media type follows the caller's `Accept`: `application/graphql-response+json`
when the caller names it and prefers it at least as much as `application/json`,
else `application/json` (also for `*/*`, no `Accept` or nothing acceptable, as the
specification's rules for legacy clients ask). The two differ in status codes:
with `application/graphql-response+json` a request error (nothing was executed,
so the response has no `data`) is a 4xx; with `application/json` every
well-formed GraphQL response is a 200, since legacy clients read errors only
from a 200's body.

A GET answered without errors may be kept by the caller's own cache (never a
shared one: answers depend on the caller's credentials) and revalidated by its
ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = [
    "GRAPHQL_RESPONSE",
    "JSON",
    "cache_headers",
    "etag_of",
    "media_type_for",
    "matches",
    "request_error_status",
]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

_REQUEST_ERROR_STATUS = {
    "PERSISTED_QUERY_NOT_FOUND": 404,
    "PERSISTED_QUERY_NOT_IN_LIST": 403,
    "INTERNAL_SERVER_ERROR": 500,
}


def _ranges(accept: str) -> list[tuple[str, float]]:
    """`Accept`'s media ranges with their quality, malformed qualities read as 0."""
    ranges = []
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_range:
            ranges.append((media_range.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> tuple[float, bool]:
    """The quality of the most specific range that matches, and whether it names the type."""
    kind = media_type.split("/")[0]
    for candidate in (media_type, f"{kind}/*", "*/*"):
        for media_range, quality in ranges:
            if media_range == candidate:
                return quality, candidate == media_type
    return 0.0, False


def media_type_for(accept: str) -> str:
    ranges = _ranges(accept)
    graphql, named = _quality(GRAPHQL_RESPONSE, ranges)
    json, _ = _quality(JSON, ranges)
    prefers_graphql = graphql > json or (graphql == json and named)
    return GRAPHQL_RESPONSE if graphql > 0 and prefers_graphql else JSON


def request_error_status(response: Mapping[str, Any]) -> int:
    """The 4xx (or 500) for a response without `data`, by its first error's code."""
    errors = response.get("errors") or [{}]
    code = (errors[0].get("extensions") or {}).get("code")
    return _REQUEST_ERROR_STATUS.get(str(code), 400)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def matches(if_none_match: str, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weakly: a `W/` prefix is ignored)."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags


def cache_headers(max_age_seconds: int) -> dict[str, str]:
    """For a GET answered without errors: the caller's cache only, varying by credentials."""
    freshness = f"max-age={max_age_seconds}" if max_age_seconds > 0 else "no-cache"
    return {"Cache-Control": f"private, {freshness}", "Vary": "Accept, Authorization, X-API-Key"}
