"""Persisted operations: Apollo's automatic persisted queries, and an optional safelist.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`
instead of its query; the first time the gateway answers `PersistedQueryNotFound`
and the client sends both, which registers the query under its hash. Short
hash-only requests then fit in a GET URL, so they can be cached. The store is in
memory and bounded in characters, least recently used first out: a caller can
fill it, never grow it. It keeps text only (parsed documents are
`schema.documents`' to keep), so its bytes are its characters, plus some 250 bytes
an entry for the hash and the bookkeeping: 5 MB and a little for the default.

With a safelist (`gateway/edge/persisted/safelist.py`) hashes are looked up there instead, and
nothing is registered at run time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.edge.persisted.safelist import Safelist

__all__ = ["PersistedQueries", "PersistedQueryRefused", "sha256_of"]

_HASH = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryRefused(GatewayError):
    """A persisted-query request that cannot run; clients switch on the code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sha256_of(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class PersistedQueries:
    """Turns a request's `query` and `extensions` into the query to run, or refuses it."""

    def __init__(self, *, store_characters: int, safelist: Safelist | None = None):
        self.safelist = safelist
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
            return self.safelist.query_for(digest)
        query = self.store.get(digest)
        if query is None:
            raise PersistedQueryRefused("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
        return query


def _hash_in(persisted: Any) -> str:
    """The hash asked for. A member of the wrong shape is a malformed request; only a
    version that is a whole number other than 1 is one the gateway does not speak (`true`
    and `1.0` are equal to 1 in Python, not in JSON)."""
    version = persisted.get("version") if isinstance(persisted, dict) else None
    if version.__class__ is not int:
        raise PersistedQueryRefused(
            "BAD_REQUEST",
            'extensions.persistedQuery must be {"version": 1, "sha256Hash": "<hex>"}.',
        )
    if version != 1:
        raise PersistedQueryRefused(
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
            f"extensions.persistedQuery version {version} is not supported; version 1 is.",
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _HASH.match(digest):
        raise PersistedQueryRefused(
            "BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits."
        )
    return digest
