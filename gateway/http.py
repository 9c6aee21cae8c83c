"""HTTP-level guards in front of `/graphql`: body size, GraphQL-shaped refusals, 401s,
and the GraphQL-over-HTTP rules for what leaves (`gateway/responses.py`).

Strawberry refuses what GraphQL over HTTP must refuse (a mutation over GET, a
POST that is not JSON, which is also the CSRF guard: a browser cannot send
`application/json` cross-site without a preflight) but answers in plain text.
Callers get the same refusals as GraphQL errors with a stable code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, overload

import orjson
from cross_web import AsyncHTTPRequestAdapter
from fastapi.responses import HTMLResponse
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from gateway import responses
from gateway.callers import Authenticator
from gateway.errors import Forbidden, Unauthenticated
from gateway.persisted import PersistedQueries, PersistedQueryRefused
from schema.documents import operation_type

__all__ = [
    "GatewayRouter",
    "GraphQLRefusals",
    "asks_for_the_ide",
    "forbidden",
    "unauthenticated",
]

_CODES = {
    "Unsupported content type": (415, "UNSUPPORTED_MEDIA_TYPE"),
    "mutations are not allowed when using GET": (405, "MUTATION_OVER_GET"),
    "Batching is not enabled": (400, "BATCHING_DISABLED"),
}


def _error_body(message: str, code: str, **extensions: Any) -> bytes:
    payload = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return orjson.dumps(payload)


async def unauthenticated(_: Request, error: Exception) -> Response:
    message = error.message if isinstance(error, Unauthenticated) else "Unauthenticated."
    return Response(
        _error_body(message, "UNAUTHENTICATED"),
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="propgate"'},
    )


async def forbidden(_: Request, error: Exception) -> Response:
    """A caller without the scope an HTTP route (`/metrics`) needs."""
    refusal = error if isinstance(error, Forbidden) else Forbidden("Forbidden.")
    return Response(
        _error_body(refusal.message, refusal.code, **refusal.details),
        status_code=403,
        media_type="application/json",
    )


class GraphQLRefusals:
    """Bounds request bodies (GraphQL and webhooks) and turns plain-text refusals into
    GraphQL errors."""

    def __init__(self, app: ASGIApp, *, paths: tuple[str, ...], max_body_bytes: int) -> None:
        self.app = app
        self.paths = paths
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(send, 413, "The request body is too large.", "BODY_TOO_LARGE")
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                plain = headers.get(b"content-type", b"").startswith(b"text/plain")
                if message["status"] >= 400 and plain:
                    start = message
                    return
                await send(message)
            elif start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    reason = b"".join(chunks).decode("utf-8", "replace")
                    status, code = _CODES.get(reason, (start["status"], "BAD_REQUEST"))
                    await self._refuse(send, status, reason, code)
            else:
                await send(message)

        try:
            await self.app(scope, bounded_receive, rewriting_send)
        except _BodyTooLarge:
            await self._refuse(send, 413, "The request body is too large.", "BODY_TOO_LARGE")

    async def _refuse(self, send: Send, status: int, message: str, code: str) -> None:
        body = _error_body(message, code)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


_SUBSCRIPTION_OVER_HTTP = (
    "Subscriptions run over a websocket at /graphql (graphql-transport-ws or graphql-ws), "
    "or over HTTP as a multipart stream (Accept: multipart/mixed); a plain request cannot "
    "carry the events."
)
"""Strawberry would run the subscription as a query, whose field then has no value: an
internal error with a traceback in the log."""


def asks_for_the_ide(method: str, accept: str, params: Mapping[str, Any]) -> bool:
    """A browser loading GraphiQL: a GET for HTML with no operation in the URL, neither its
    text nor a persisted query's hash. The page needs no credentials; anything that runs an
    operation does, so the caller's context and the router must agree on this one test."""
    return (
        method == "GET"
        and "text/html" in accept
        and "query" not in params
        and "extensions" not in params
    )


class GatewayRouter(GraphQLRouter[Any, None]):
    """Strawberry's router, with persisted queries, the GraphQL-over-HTTP status codes and
    media types, cacheable GETs, the caller authenticated in a websocket's
    `connection_init`, and the gateway's own GraphiQL page in place of Strawberry's, which
    loads from a CDN.

    A websocket cannot send headers from a browser, so its credentials come in the
    `connection_init` payload (`{"X-API-Key": "..."}` or `{"Authorization": "Bearer ..."}`);
    without valid ones the connection is closed (4403) before any operation runs.
    """

    def __init__(
        self,
        *args: Any,
        authenticator: Authenticator,
        persisted: PersistedQueries,
        get_max_age_seconds: int,
        ide: Callable[[], HTMLResponse],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._authenticator = authenticator
        self._persisted = persisted
        self._get_max_age_seconds = get_max_age_seconds
        self._ide = ide

    def encode_json(self, data: object) -> str:
        """orjson writes a 1,000-edge result about ten times faster than the standard library.

        Text, not bytes: websocket messages go through here too, and Strawberry sends
        bytes as binary frames, which GraphQL's websocket protocols do not allow.
        """
        return orjson.dumps(data).decode()

    async def render_graphql_ide(self, _request: Request) -> HTMLResponse:
        return self._ide()

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        headers = {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}
        try:
            context.caller = self._authenticator.authenticate(headers)
        except Unauthenticated as error:
            raise ConnectionRejectionError(
                {"message": error.message, "code": "UNAUTHENTICATED"}
            ) from None
        unset: UnsetType = UNSET
        return unset

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return asks_for_the_ide(
            request.method, request.headers.get("accept", ""), request.query_params
        ) and super().should_render_graphql_ide(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Any,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """A persisted query's hash becomes its text here; a refusal is a request error, as is a
        subscription asked over plain HTTP."""
        try:
            request_data.query = self._persisted.query_for(
                request_data.query, request_data.extensions
            )
        except PersistedQueryRefused as refusal:
            error = GraphQLError(refusal.message, extensions=refusal.extensions)
            return ExecutionResult(data=None, errors=[error])
        if operation_type(
            request_data.query, request_data.operation_name
        ) is OperationType.SUBSCRIPTION and "multipart/mixed" not in request.headers.get(
            "accept", ""
        ):
            error = GraphQLError(
                _SUBSCRIPTION_OVER_HTTP, extensions={"code": "SUBSCRIPTION_OVER_HTTP"}
            )
            return ExecutionResult(data=None, errors=[error])
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """A request error (nothing executed: no data, and no error has a field path) has no
        `data` entry; the response is kept for `run` to choose the status and headers."""
        response = await super().process_result(request, result)
        if result.data is None and not any(error.path for error in result.errors or []):
            response.pop("data", None)
        request.state.graphql_response = response
        return response

    @overload
    async def run(
        self, request: Request, context: Any = UNSET, root_value: None = UNSET
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Any = UNSET, root_value: None = UNSET
    ) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: Any = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        response = await super().run(request, context, root_value)
        shaped = getattr(request.state, "graphql_response", None)
        if shaped is None:
            return response
        media_type = responses.media_type_for(request.headers.get("accept", ""))
        response.headers["content-type"] = media_type
        if "data" not in shaped and media_type == responses.GRAPHQL_RESPONSE:
            response.status_code = responses.request_error_status(shaped)
        if request.method == "GET":
            return self._cacheable(request, response, fresh="errors" not in shaped)
        return response

    def _cacheable(self, request: Request, response: Response, *, fresh: bool) -> Response:
        """A GET answered without errors carries an ETag and may be kept by the caller;
        a repeat with that ETag in `If-None-Match` is a 304 without a body."""
        if not fresh or response.status_code != 200:
            response.headers["cache-control"] = "no-store"
            return response
        etag = responses.etag_of(bytes(response.body))
        headers = {**responses.cache_headers(self._get_max_age_seconds), "ETag": etag}
        if responses.matches(request.headers.get("if-none-match", ""), etag):
            return Response(status_code=304, headers=headers)
        response.headers.update(headers)
        return response
