"""Relay connections. The federation's `ListResult` already has this shape, so nothing is copied."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

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


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Summed from the providers' own counts (those that answered)."
    )
