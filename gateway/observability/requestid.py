"""One id per request, in our logs, in the caller's response and in every upstream call it causes.

The id travels in a context variable, so log lines, upstream requests and
errors made anywhere inside the request (loaders and tasks included: asyncio
copies the context) carry it without being handed it. A caller's own
`X-Request-ID` is kept when it is a plain token, so its logs and ours join; one
that could forge log fields or headers is replaced.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "RequestIds", "current", "or_new"]

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def current() -> str | None:
    return _request_id.get()


def or_new() -> str:
    """The request's id; work outside any request (start-up subscriptions) gets a fresh one."""
    return _request_id.get() or uuid.uuid4().hex


def _chosen(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            offered: str = value.decode("latin-1")
            if _SANE.fullmatch(offered):
                return offered
            break
    return uuid.uuid4().hex


class RequestIds:
    """Sets the request's id for everything the request does, and returns it as a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _chosen(scope)
        token = _request_id.set(request_id)
        header = (b"x-request-id", request_id.encode())

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if all(name.lower() != b"x-request-id" for name, _ in headers):
                    message["headers"] = [*headers, header]
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        finally:
            _request_id.reset(token)
