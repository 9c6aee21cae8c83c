"""The safelist: the only operations a deployment runs, fixed before it starts.

It is a manifest built from the clients' own operation documents (`gateway
safelist FILE...` writes one; Apollo's and graphql-codegen's persisted-document
files are read too). An operation on it runs when it arrives by its SHA-256
alone (a persisted query), by its exact text, or as the same document in other
whitespace, comments or indentation: a generated client may re-indent the text it
sends, and the meaning is what the list fixes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graphql import DocumentNode, GraphQLSyntaxError, OperationDefinitionNode, parse, print_ast

from gateway.edge.persisted.queries import PersistedQueryRefused, sha256_of
from gateway.errors import ConfigError

__all__ = ["Safelist", "load_safelist", "manifest_of", "not_in_safelist"]


def not_in_safelist() -> PersistedQueryRefused:
    return PersistedQueryRefused(
        "PERSISTED_QUERY_NOT_IN_LIST",
        "Only operations on this gateway's safelist run; this one is not on it.",
    )


class Safelist:
    def __init__(self, operations: Mapping[str, str]) -> None:
        """`operations`: SHA-256 -> text; every text must parse."""
        self.by_hash = dict(operations)
        self.documents = {print_ast(parse(text)) for text in operations.values()}

    def query_for(self, digest: str) -> str:
        query = self.by_hash.get(digest)
        if query is None:
            raise not_in_safelist()
        return query

    def allows(self, query: str, document: DocumentNode | None) -> bool:
        return sha256_of(query) in self.by_hash or (
            document is not None and print_ast(document) in self.documents
        )


def load_safelist(path: str | Path) -> Safelist:
    """From an Apollo persisted query manifest (`{"format":
    "apollo-persisted-query-manifest", "operations": [{"id", "body"}, ...]}`, what
    `gateway safelist` writes) or a flat `{"<sha256>": "<query>"}` object
    (graphql-codegen's persisted documents with `hashAlgorithm: "sha256"`).

    Every id must be the SHA-256 of its body, the hash a client computes, so the
    client's hash-only requests match.
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
    operations: dict[str, str] = {}
    for digest, body in pairs:
        if not isinstance(body, str) or digest != sha256_of(body):
            raise ConfigError(
                f"The safelist {path}: the id {digest!r} is not the SHA-256 of its operation."
            )
        operations[digest] = body
    try:
        return Safelist(operations)
    except GraphQLSyntaxError as error:
        raise ConfigError(
            f"The safelist {path} holds an operation that does not parse: {error}."
        ) from None


def manifest_of(paths: Sequence[str | Path]) -> dict[str, Any]:
    """An Apollo persisted query manifest with one operation per file, the file's text as
    its body (fragments it uses go in the same file)."""
    operations = []
    seen: dict[str, str | Path] = {}
    for path in paths:
        body = Path(path).read_text(encoding="utf-8")
        digest = sha256_of(body)
        if digest in seen:
            raise ConfigError(f"{path} holds the same operation as {seen[digest]}: list it once.")
        seen[digest] = path
        try:
            document = parse(body)
        except GraphQLSyntaxError as error:
            raise ConfigError(f"{path} does not parse: {error}.") from None
        found = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
        if len(found) != 1:
            raise ConfigError(
                f"{path} holds {len(found) or 'no'} operation{'s' if len(found) != 1 else ''}: "
                "one operation per file (with the fragments it uses), named for it in the list."
            )
        (definition,) = found
        operations.append(
            {
                "id": sha256_of(body),
                "name": definition.name.value if definition.name else "",
                "type": definition.operation.value,
                "body": body,
            }
        )
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
