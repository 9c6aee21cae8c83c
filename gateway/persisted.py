"""Persisted operations: Apollo's automatic persisted queries, and an optional safelist.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`
instead of its query; the first time the gateway answers `PersistedQueryNotFound`
and the client sends both, which registers the query under its hash. Short
hash-only requests then fit in a GET URL, so they can be cached. The store is in
memory and bounded in characters, least recently used first out: a caller can
fill it, never grow it.

With a safelist, the operations a deployment accepts are fixed in advance, from
a manifest built from the clients' own documents: only those run, by hash or by
their exact text, and nothing is registered at run time.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from gateway.errors import ConfigError, GatewayError

__all__ = [
    "PersistedQueries",
    "PersistedQueryRefused",
    "load_safelist",
    "not_in_safelist",
    "sha256_of",
]

_HASH = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryRefused(GatewayError):
    """A persisted-query request that cannot run; clients switch on the code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sha256_of(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def not_in_safelist() -> PersistedQueryRefused:
    return PersistedQueryRefused(
        "PERSISTED_QUERY_NOT_IN_LIST",
        "Only operations on this gateway's safelist run; this one is not on it.",
    )


class PersistedQueries:
    """Turns a request's `query` and `extensions` into the query to run, or refuses it."""

    def __init__(self, *, store_characters: int, safelist: Mapping[str, str] | None = None):
        self.safelist = dict(safelist) if safelist is not None else None
        self.store: LRUCache[str, str] = LRUCache(maxsize=store_characters, getsizeof=len)

    def query_for(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The query text; with a safelist, whether that text may run is checked later, for
        every transport alike (`schema/safelist.py`)."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        digest = _hash_in(persisted)
        if query is None:
            return self._recall(digest)
        if sha256_of(query) != digest:
            raise PersistedQueryRefused(
                "PERSISTED_QUERY_HASH_MISMATCH",
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query.",
            )
        if self.safelist is None and len(query) <= self.store.maxsize:
            self.store[digest] = query
        return query

    def _recall(self, digest: str) -> str:
        if self.safelist is not None:
            if digest not in self.safelist:
                raise not_in_safelist()
            return self.safelist[digest]
        query = self.store.get(digest)
        if query is None:
            raise PersistedQueryRefused("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
        return query


def _hash_in(persisted: Any) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise PersistedQueryRefused(
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
            'extensions.persistedQuery must be {"version": 1, "sha256Hash": "<hex>"}.',
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _HASH.match(digest):
        raise PersistedQueryRefused(
            "BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits."
        )
    return digest


def load_safelist(path: str | Path) -> dict[str, str]:
    """Hash -> query, from an Apollo persisted query manifest
    (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}, ...]}`)
    or a flat `{"<sha256>": "<query>"}` object (graphql-codegen's persisted documents).

    Every id must be the SHA-256 of its body: the same hash a client computes, so
    the client's hash-only requests and its full-text ones both match.
    """
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"Cannot read the safelist {path}: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"The safelist {path} is not valid JSON: {error}.") from None
    if isinstance(manifest, dict) and isinstance(manifest.get("operations"), list):
        pairs = [
            (item.get("id"), item.get("body")) if isinstance(item, dict) else (None, None)
            for item in manifest["operations"]
        ]
    elif isinstance(manifest, dict):
        pairs = list(manifest.items())
    else:
        raise ConfigError(f"The safelist {path} is neither a manifest nor a hash -> query object.")
    safelist: dict[str, str] = {}
    for digest, body in pairs:
        if not isinstance(body, str) or digest != sha256_of(body):
            raise ConfigError(
                f"The safelist {path}: the id {digest!r} is not the SHA-256 of its operation."
            )
        safelist[digest] = body
    return safelist
