"""Relay connections. The federation's `ListResult` already has this shape, so nothing is copied.

Every list's connection and edges are the federation's own (`ListResult`, `Edge`), so the
generic types say so (`Shows`): each specialization (`UnitEdge`, ...) inherits it, and the
compiled executor recognises a page's thousand edges by their class."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

from gateway.federation import fan_out
from schema.shows import declare

__all__ = ["Connection", "Edge", "PageInfo"]

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    cursor: str = strawberry.field(description="Opaque; holds every provider's own position.")


declare(Edge, fan_out.Edge)


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Summed from the providers' own counts (those that answered)."
    )


declare(Connection, fan_out.ListResult)
