"""HTTP-level guards in front of `/graphql`: body size, GraphQL-shaped refusals, 401s,
and the GraphQL-over-HTTP rules for what leaves (`gateway/edge/responses.py`).

Strawberry refuses what GraphQL over HTTP must refuse (a mutation over GET, a
POST that is not JSON, which is also the CSRF guard: a browser cannot send
`application/json` cross-site without a preflight) but answers in plain text,
and Starlette answers an unknown route or method with its own JSON. Callers get
every refusal as a GraphQL error with a stable code and the request's id, and
nothing a caller sends ends as a plain-text 500: what no guard foresaw is an
`INTERNAL_SERVER_ERROR` with the traceback in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing, suppress
from typing import Any, cast, overload

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from cross_web import parse_content_type as media_type_of
from fastapi.responses import HTMLResponse
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import NonJsonMessageReceived
from strawberry.http.types import QueryParams
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage as TransportCompleteMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    CompleteMessage,
    ConnectionAckMessage,
    ConnectionErrorMessage,
    ConnectionInitMessage,
    ErrorMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from gateway.config import Limits
from gateway.edge import responses
from gateway.edge.callers import Authenticator
from gateway.edge.persisted.queries import PersistedQueries, PersistedQueryRefused
from gateway.errors import Forbidden, Unauthenticated
from gateway.observability import requestid
from schema.context import Context
from schema.documents import limits_of, operation_type
from schema.limits import text_refusal

__all__ = [
    "GatewayRouter",
    "GraphQLRefusals",
    "InternalErrors",
    "OneFraming",
    "asks_for_the_ide",
    "forbidden",
    "not_routed",
    "unauthenticated",
]

logger = logging.getLogger("gateway.http")

_UNSUPPORTED = "Unsupported content type"
_CODES = {
    _UNSUPPORTED: (415, "UNSUPPORTED_MEDIA_TYPE"),
    "mutations are not allowed when using GET": (405, "MUTATION_OVER_GET"),
    "Batching is not enabled": (400, "BATCHING_DISABLED"),
}

_NOT_AN_OBJECT = 'The request body must be a JSON object, such as {"query": "{ __typename }"}.'
_NOT_A_NAME = "The GraphQL operation's `operationName` must be a string or null, if provided."
_CODES_BY_STATUS = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def _refusal(
    status: int,
    message: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A request refused before any operation ran: a GraphQL error with its code and the
    request's id, which is what a caller quotes and what every log line of it carries."""
    error = {
        "message": message,
        "extensions": {"code": code, **extensions, "requestId": requestid.current()},
    }
    return Response(
        orjson.dumps({"errors": [error]}),
        status_code=status,
        media_type=responses.JSON,
        headers=headers,
    )


async def unauthenticated(_: Request, error: Exception) -> Response:
    message = error.message if isinstance(error, Unauthenticated) else "Unauthenticated."
    return _refusal(
        401, message, "UNAUTHENTICATED", headers={"WWW-Authenticate": 'Bearer realm="propgate"'}
    )


async def forbidden(_: Request, error: Exception) -> Response:
    """A caller without the scope an HTTP route (`/metrics`) needs."""
    refused = error if isinstance(error, Forbidden) else Forbidden("Forbidden.")
    return _refusal(403, refused.message, refused.code, **refused.details)


async def not_routed(_: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take), which it
    would write as `{"detail": ...}`."""
    refused = cast(StarletteHTTPException, error)  # the only exception it is registered for
    code = _CODES_BY_STATUS.get(refused.status_code, "BAD_REQUEST")
    return _refusal(refused.status_code, refused.detail, code, headers=refused.headers)


class InternalErrors:
    """The last guard: an exception nothing else caught becomes an `INTERNAL_SERVER_ERROR`
    with the request's id, its traceback logged, instead of uvicorn's plain-text 500. A caller
    that left before its body was read (or whose body the server's parser refused midway, a
    chunk size that is not hex) is no error of ours: one cheap request wrote a traceback at
    ERROR, and a 500 to nobody."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except ClientDisconnect:
            logger.info("the caller of %s left before its request was read", scope.get("path", ""))
        except Exception:
            logger.exception("unexpected error answering %s", scope.get("path", ""))
            if started:
                raise
            request_id = requestid.current()
            message = f"Unexpected error; quote request id {request_id} when reporting it."
            await _refusal(500, message, "INTERNAL_SERVER_ERROR")(scope, receive, send)


class OneFraming:
    """A request that gives both its body's length and chunks is refused, and its connection
    closed, as RFC 9112 §6.1 requires of a server that reads one. h11 read the chunks and
    kept the connection: whatever followed the last chunk, which a proxy in front reading
    the length took for the body, was answered as a request of its own (request smuggling).
    Clients that framed a body both ways are long gone (RFC 9112 names early ones)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _framed_twice(scope["headers"]):
            message = (
                "A request gives its body's length or sends it in chunks, not both "
                "(RFC 9112 §6.1); the connection is closed."
            )
            refusal = _refusal(400, message, "BAD_REQUEST", headers={"Connection": "close"})
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _framed_twice(headers: list[tuple[bytes, bytes]]) -> bool:
    names = [name for name, _ in headers]
    return b"transfer-encoding" in names and b"content-length" in names


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
            await self._too_large(scope, receive, send)
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
                    await _refusal(status, reason, code)(scope, receive, send)
            else:
                await send(message)

        try:
            await self.app(scope, bounded_receive, rewriting_send)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        await _refusal(413, "The request body is too large.", "BODY_TOO_LARGE")(
            scope, receive, send
        )


class _BodyTooLarge(Exception):
    pass


_SUBSCRIPTION_OVER_HTTP = (
    "Subscriptions run over a websocket at /graphql (graphql-transport-ws or graphql-ws); "
    "an HTTP request cannot carry the events."
)
"""Strawberry would run the subscription as a query, whose field then has no value: an
internal error with a traceback in the log. It streams subscriptions over HTTP only with
its multipart protocol on, which is off: its stream skips the persisted queries and the
error codes that `execute_single` and the schema's extensions give everything else."""


def _why_unresolved(document: DocumentNode, name: str | None) -> str:
    if name is not None:
        return f'The document has no operation named "{name}" (`operationName`).'
    count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    if count == 0:
        return "The document holds no operation, only fragments."
    return f"The document holds {count} operations: name the one to run in `operationName`."


def _chosen(
    text: str | None, name: str | None, limits: Limits
) -> OperationType | GraphQLError | None:
    """The type of the operation the document names under `operationName`, or the request
    error GraphQL's GetOperation makes of a document that names none: several operations
    and no name, or a name none has. Strawberry runs the first operation when no name is
    given, a mutation as readily as a query, and answers an unknown name in plain text.

    None when the text does not parse or is too long to: the schema reports that, with its
    own codes. The document is parsed here again only when `operation_type`, which parses
    for execution to take over, cannot say (within the default limits): a refusal, or a
    text longer than the default limits that the gateway's own allow.
    """
    kind = operation_type(text, name)
    if kind is not None or not text or text_refusal(text, limits) is not None:
        return kind
    try:
        document = parse(text)
    except GraphQLError:
        return None
    operation = get_operation_ast(document, name)
    if operation is not None:
        return operation.operation
    return GraphQLError(
        _why_unresolved(document, name), extensions={"code": "OPERATION_RESOLUTION_FAILURE"}
    )


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


class _MediaTypedRequest(StarletteRequestAdapter):
    """A media type is case-insensitive (`APPLICATION/JSON; CHARSET=UTF-8` is JSON), but
    Strawberry compares it as written. Only the type is kept: the body is JSON, so UTF-8,
    whatever `charset` says, and nothing here reads another parameter."""

    @property
    def content_type(self) -> str | None:
        written = self.headers.get("content-type")
        return None if written is None else media_type_of(written)[0]


_ADDRESSED = frozenset({"subscribe", "start", "stop", "complete"})
"""Messages about one operation, which name it by `id`, in either protocol."""
_OPERATIONS = frozenset({"subscribe", "start"})
_OPERATION_MEMBERS = {
    "variables": (dict, "an object"),
    "operationName": (str, "a string"),
    "extensions": (dict, "an object"),
}


def _malformation(message: object) -> str | None:
    """Why a message is not of a shape both GraphQL websocket protocols give it, as far as
    Strawberry relies on that shape without checking; None for a message of that shape. It
    is said in a close frame's reason, so it is short (a reason carries 123 bytes)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "A message must be an object with a string `type`."
    if ("id" in message or message["type"] in _ADDRESSED) and not isinstance(
        message.get("id"), str
    ):
        return "A message's `id` must be a string."
    payload = message.get("payload")
    if payload is not None and not isinstance(payload, dict):
        return "A message's `payload` must be an object."
    if message["type"] not in _OPERATIONS:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return f"A `{message['type']}` payload must have a string `query`."
    for name, (kind, described) in _OPERATION_MEMBERS.items():
        if not isinstance(payload.get(name), kind | None):
            return f"A `{message['type']}` payload's `{name}` must be {described} or null."
    return None


class _MessageSocket(ASGIWebSocketAdapter):
    """Strawberry's websocket handlers index a message as its protocol describes it, so
    `null`, a message without a `type`, a list for an `id`, a subscription without a query
    or with a list for its `variables` ends the connection's handler with a traceback. Such
    a message is refused as a text that is not JSON is: graphql-transport-ws closes with
    4400, graphql-ws ignores it. What was wrong is kept in `_refused_because`: Strawberry's
    close reason for a text that is not JSON would say "must be valid JSON" of one that is."""

    _refused_because: str | None = None

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        async for message in super().iter_json(ignore_parsing_errors=ignore_parsing_errors):
            malformation = _malformation(message)
            if malformation is None:
                yield message
            elif not ignore_parsing_errors:
                self._refused_because = malformation
                raise NonJsonMessageReceived


_NOT_A_SUBSCRIPTION = (
    "The legacy graphql-ws protocol runs subscriptions only: send queries and mutations over "
    "HTTP, or over graphql-transport-ws."
)
_NO_QUERY = "No GraphQL query found in the message."


def _socket_refusal(
    query: str, name: str | None, context: object, *, subscriptions_only: bool
) -> GraphQLError | None:
    """Why an operation a websocket was sent may not run, before the schema sees it: as over
    HTTP, a document that names no single operation, or an empty query; over graphql-ws,
    anything but a subscription. Strawberry's own refusals of these reach the schema's
    error shaping as unexpected errors: `INTERNAL_SERVER_ERROR`, logged with a traceback."""
    if not query:
        return GraphQLError(_NO_QUERY, extensions={"code": "BAD_REQUEST"})
    chosen = _chosen(query, name, limits_of(context))
    if isinstance(chosen, GraphQLError):
        return chosen
    if subscriptions_only and chosen not in (None, OperationType.SUBSCRIPTION):
        return GraphQLError(_NOT_A_SUBSCRIPTION, extensions={"code": "NOT_A_SUBSCRIPTION"})
    return None


def _for_operation(context: object) -> object:
    """One operation's context, made from its websocket's (`Context.for_operation`)."""
    return context.for_operation() if isinstance(context, Context) else context


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    """graphql-transport-ws as its protocol document has it: an operation refused before it
    runs, a syntax error included, is an `error` message for its id, and the connection goes
    on. Strawberry closes the socket with 4400 on a syntax error or an operation it cannot
    find, which ends every other subscription on the connection; the protocol keeps 4400
    for a message of a type or shape it does not define (`_MessageSocket`).

    Strawberry runs every operation of the connection with the connection's context; here
    each runs with its own (`_for_operation`), so what one reports or reads is its own.
    Strawberry's `run_operation` streams with `self.context`, so its body is followed here
    with the operation's context instead; the close it can raise on a refusal is never
    asked for (`_get_pre_execution_close_reason`).
    """

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        refusal = _socket_refusal(
            operation.query, operation.operation_name, self.context, subscriptions_only=False
        )
        if refusal is not None:
            await operation.send_initial_errors([refusal])
            return
        try:
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=_for_operation(self.context),
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(source):
                await self._send_result_stream(operation, source)
            await operation.send_operation_message(
                TransportCompleteMessage(id=operation.id, type="complete")
            )
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message(
                    TransportCompleteMessage(id=operation.id, type="complete")
                )
            self.operations.pop(operation.id, None)
            raise

    async def handle_invalid_message(self, error_message: str) -> None:
        """The 4400 a message of a shape the protocol does not define closes with says what
        was wrong with it (`_MessageSocket`)."""
        malformation = getattr(self.websocket, "_refused_because", None)
        await super().handle_invalid_message(malformation or error_message)

    @staticmethod
    def _get_pre_execution_close_reason(_error: GraphQLError) -> str | None:
        return None


class _LegacyWSHandler(BaseGraphQLWSHandler[Any, None]):
    """The legacy graphql-ws protocol: subscriptions only, as Strawberry runs it.

    Strawberry's handler drops the stream of an operation refused before it ran without
    closing it, so the event loop closes it later from a task of its own, in another
    context: the extensions could not reset their context variables there (the operation's
    warnings, its trace span), and each refusal logged `Task exception was never
    retrieved` and OpenTelemetry's `Failed to detach context`. Here the stream runs to its
    end in the task that started it: a refused operation's ends after its error, and the
    extensions finish as for any operation. Each operation runs with a context of its own
    (`_for_operation`), as over graphql-transport-ws.

    For the same reason the stream is not registered in `subscriptions`, from which
    Strawberry's `stop` closes it in the connection's own task whenever the operation's
    task is not inside it (sending a change to a slow client): the `ValueError` of a
    context variable reset there ended the connection. `stop` cancels the operation's task,
    which closes its stream itself.

    It runs through `stream`, which takes any type of operation: a text too long to parse
    stands in as a query until its refusal is reported, and a query or a mutation was
    refused before.
    """

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """A connection refused (no or wrong credentials) is told `connection_error`, then
        closed with 4403, as over graphql-transport-ws. Strawberry closes it with 1011, an
        internal error, as subscriptions-transport-ws's server did: its PROTOCOL.md says only
        that "the server disconnects the client", so the code is ours to choose, and 1011
        would tell a client the server failed rather than that its credentials did. A
        `payload` that is not an object never reaches here (`_MessageSocket`)."""
        self.context.connection_params = message.get("payload")
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as rejection:
            await self.send_message(
                ConnectionErrorMessage(type="connection_error", payload=rejection.payload)
            )
            await self.websocket.close(code=4403, reason="Forbidden")
            return
        await self.send_message(ConnectionAckMessage(type="connection_ack"))
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        try:
            refusal = _socket_refusal(query, operation_name, self.context, subscriptions_only=True)
            if refusal is not None:
                await self._refuse(operation_id, refusal)
                return
            source = await self.schema.stream(
                query,
                variable_values=variables,
                context_value=_for_operation(self.context),
                root_value=self.root_value,
                operation_name=operation_name,
            )
            refused = False
            async with aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError) and result.errors:
                        await self._refuse(operation_id, result.errors[0])
                        refused = True
                    else:
                        # a subscription's results: incremental delivery is for queries
                        await self.send_data_message(cast(ExecutionResult, result), operation_id)
            if not refused:
                await self.send_message(CompleteMessage(type="complete", id=operation_id))
        except asyncio.CancelledError:
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        finally:
            self.tasks.pop(operation_id, None)

    async def _refuse(self, operation_id: str, error: GraphQLError) -> None:
        await self.send_message(
            ErrorMessage(type="error", id=operation_id, payload=error.formatted)
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

    request_adapter_class = _MediaTypedRequest
    websocket_adapter_class = _MessageSocket
    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler

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
        bytes as binary frames, which GraphQL's websocket protocols do not allow. orjson
        cannot write an integer beyond 64 bits, which JSON allows and an error can quote
        (the `first` a caller asked for); the standard library writes those.
        """
        try:
            return orjson.dumps(data).decode()
        except orjson.JSONEncodeError:
            return json.dumps(data, separators=(",", ":"))

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """A GET's `variables` and `extensions` are JSON in its query string: one that is not
        is named, where Strawberry's words ("request body") sent its caller to a body a GET
        does not have. A member given twice is refused rather than one of them taken: which
        operation would run, with which variables, would be a guess."""
        every = getattr(params, "getlist", None)
        if every is not None:
            for name in ("query", "variables", "operationName", "extensions"):
                if len(every(name)) > 1:
                    raise HTTPException(
                        400, f"`{name}` is given more than once in the query string."
                    )
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if parsed.get(name):
                try:
                    parsed[name] = self.decode_json(parsed[name])
                except ValueError:
                    raise HTTPException(400, f"`{name}` in the query string is not JSON.") from None
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        """orjson refuses what the standard library lets through only to fail later: bytes
        that are not UTF-8 (a `UnicodeDecodeError`, not a `JSONDecodeError`), a lone
        surrogate (which no response could then encode), `NaN`, and nesting deep enough to
        exhaust the recursion limit. Its error is a `JSONDecodeError`, which Strawberry
        answers as a bad request."""
        return orjson.loads(data)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry reads as JSON any body whose media type merely contains
        `application/json` (`application/json5`), and reads that JSON as an object (or a
        batch) without checking, so `null`, a string or a number would fail inside it as an
        internal error. The body is read once and decoded a second time, cheaply, by
        Strawberry itself."""
        if request.method == "POST" and responses.JSON in (request.content_type or ""):
            if request.content_type != responses.JSON:
                raise HTTPException(400, _UNSUPPORTED)
            if not isinstance(self.parse_json(await request.get_body()), dict | list):
                raise HTTPException(400, _NOT_AN_OBJECT)
        return await super().parse_http_body(request)

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
        subscription, whatever `Accept` asks for, and a document that names no single
        operation. Strawberry checks the type of every member of the request but
        `operationName`."""
        if not isinstance(request_data.operation_name, str | None):
            raise HTTPException(400, _NOT_A_NAME)
        try:
            request_data.query = self._persisted.query_for(
                request_data.query, request_data.extensions
            )
        except PersistedQueryRefused as refusal:
            error = GraphQLError(refusal.message, extensions=refusal.extensions)
            return ExecutionResult(data=None, errors=[error])
        chosen = _chosen(request_data.query, request_data.operation_name, limits_of(context))
        if isinstance(chosen, GraphQLError):
            return ExecutionResult(data=None, errors=[chosen])
        if chosen is OperationType.SUBSCRIPTION:
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
        `data` entry, and its errors carry the request's id like every other refusal; the
        response is kept for `run` to choose the status and headers, and `run` lets it go:
        the state is the scope's, which the server keeps until the connection's next request,
        so an idle connection held its last answer whole (1,000 units of three fields: 0.5 MB),
        long enough for collections to promote it to the oldest generation and walk it."""
        response = await super().process_result(request, result)
        if result.data is None and not any(error.path for error in result.errors or []):
            response.pop("data", None)
            request_id = requestid.current()
            for error in cast(list[dict[str, Any]], response.get("errors") or []):
                error["extensions"] = {**(error.get("extensions") or {}), "requestId": request_id}
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
        try:
            response = await super().run(request, context, root_value)
            shaped = getattr(request.state, "graphql_response", None)
        finally:
            if hasattr(request.state, "graphql_response"):
                del request.state.graphql_response
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
