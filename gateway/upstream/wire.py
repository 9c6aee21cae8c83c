"""The bottom of every provider's stack: HTTP/1.1 over aiohttp's connection pool, speaking
httpx's requests and responses to the layers above.

httpx's own transport (httpcore, parsing with h11 in pure Python over anyio streams) costs
about 0.3 ms of CPU more a request than this one, 0.6 ms more for a page of 1,000 units
(`gateway bench --wire`: a third to two fifths less), since aiohttp parses with llhttp, in
C. The layers above, the connectors' `httpx.Auth` flows and the tests all keep
httpx's types; only the bytes on the socket move.

What httpcore gave those layers is kept, and `tests/test_wire.py` holds both transports to
it on real sockets, fault by fault:
- the same exception classes for the same faults: a connection never made is
  `ConnectError` or `ConnectTimeout` (nothing left, so a write is known not to have
  happened); anything later is a `ReadTimeout`, `WriteTimeout`, `ReadError` or
  `RemoteProtocolError` (a write may have happened);
- timeouts per phase, from the `timeout` extension httpx puts on each request (aiohttp
  bounds waiting for a free connection and making one together, so by their sum, and
  never a write, so a large body gets a bound of its own: `_write_bound`);
- a request is sent once: aiohttp sends an idempotent request again, by itself, when its
  connection drops, which would hide a provider's failure from the retry layer and its
  budget, and send a PUT or DELETE twice;
- the URL goes out byte for byte as httpx encoded it, and the body comes back undecoded
  and unread, for `BoundedBody` to bound and httpx to decode;
- the headers httpx set, as it wrote them (aiohttp would add its own `User-Agent`,
  `Accept` and a `Content-Type` to a bare body; it adds only a `Content-Length: 0` where
  a method that may carry a body has none), at most 128 lines of 16 KiB in an answer
  (h11 took any number within 16 KiB in all), no cookie kept here (httpx keeps them), no
  proxy or `.netrc` taken from the environment (a client given its transport, as ours are,
  keeps httpx from taking a proxy from it either), and certificates verified as httpx
  verifies them.
"""

from __future__ import annotations

import asyncio
import io
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport"]

_HEADER_BYTES = 16 * 1024
"""The longest header line and field taken, as h11 takes a whole header block of 16 KiB
(aiohttp's own default is 8 KiB a line)."""

_ONE_WRITE = 1024 * 1024
"""The largest body written in one go (aiohttp's own threshold for warning)."""

_NEVER_WAITS = 32 * 1024
"""A body this small is written without waiting for the server to read it: aiohttp waits for
its buffer to drain only past 64 KiB (headers included), and the socket takes far more."""

_KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept, httpcore's default: under most servers' own idle
limit, so a kept connection is rarely one the server has just closed."""


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    """aiohttp's exceptions as the httpx ones httpcore raises for the same fault."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error), request=request) from error
    except aiohttp.ClientConnectorError as error:
        raise httpx.ConnectError(str(error), request=request) from error
    except aiohttp.SocketTimeoutError as error:
        raise httpx.ReadTimeout(str(error), request=request) from error
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as error:
        raise httpx.RemoteProtocolError(str(error), request=request) from error
    except aiohttp.ClientResponseError as error:
        raise httpx.RemoteProtocolError(error.message, request=request) from error
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as error:
        raise httpx.ReadError(str(error), request=request) from error
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as error:
        raise httpx.UnsupportedProtocol(str(error), request=request) from error
    except aiohttp.ClientError as error:
        raise httpx.RemoteProtocolError(str(error), request=request) from error


class _Body(httpx.AsyncByteStream):
    """The response body as aiohttp reads it, chunk by chunk, its errors httpx's."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One provider's connections: at most `max_connections`, kept alive between requests.

    The session is made on first use, inside the event loop that serves: aiohttp binds it
    to the loop it is made in, and its connections cannot be closed from another. A gateway
    is built and served in one loop; a transport asked from a second one says so, rather
    than failing inside aiohttp on a loop that has closed.
    """

    def __init__(self, *, max_connections: int, verify: ssl.SSLContext | None = None) -> None:
        self._max_connections = max_connections
        self._ssl = verify or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is not loop:
            raise RuntimeError(
                "A provider's transport serves the event loop it was first used in; "
                "build the gateway in the loop that serves it."
            )
        if self._session is None:
            self._loop = loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    limit_per_host=0,
                    keepalive_timeout=_KEEPALIVE_SECONDS,
                    ssl=self._ssl,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                auto_decompress=False,
                trust_env=False,
                requote_redirect_url=False,
                max_line_size=_HEADER_BYTES,
                max_field_size=_HEADER_BYTES,
            )
            # aiohttp's own switch for sending an idempotent request again when its
            # connection drops has no public setter; its test utilities set it just so.
            # tests/test_wire.py fails should a release move it.
            self._session._retry_connection = False
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._current_session()
        timeout = request.extensions.get("timeout", {})
        connect = timeout.get("connect")
        pool = timeout.get("pool")
        body = await request.aread()
        with _as_httpx(request):
            bound = asyncio.timeout(_write_bound(timeout, body))
            try:
                async with bound:
                    response = await session.request(
                        request.method,
                        _target(request.url),
                        headers=_headers(request.headers),
                        data=_payload(body),
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(
                            total=None,
                            connect=_sum(connect, pool),
                            sock_connect=connect,
                            sock_read=timeout.get("read"),
                        ),
                    )
            except TimeoutError:
                if not bound.expired():
                    raise
                raise httpx.WriteTimeout(
                    "The request could not be written in time.", request=request
                ) from None
        try:
            return _response(response, request)
        except BaseException:
            response.release()
            raise

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _target(url: httpx.URL) -> yarl.URL:
    """The URL as httpx encoded it (yarl would otherwise write `%7E` as `~` and `%27` as
    `'`), without the credentials httpx has already turned into an `Authorization`
    header (aiohttp refuses a URL with credentials beside one)."""
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    return yarl.URL(str(url), encoded=True)


def _headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The headers httpx set, names in the case it wrote them. A body is always handed over
    whole, so aiohttp frames it with a length: httpx's `Transfer-Encoding: chunked` for a
    body it would have streamed is left out, or the body would go out unframed."""
    encoding = headers.encoding
    return [
        (name.decode(encoding), value.decode(encoding))
        for name, value in headers.raw
        if name.lower() != b"transfer-encoding"
    ]


def _response(response: aiohttp.ClientResponse, request: httpx.Request) -> httpx.Response:
    version = response.version or aiohttp.HttpVersion11
    return httpx.Response(
        response.status,
        headers=list(response.raw_headers),
        stream=_Body(response, request),
        extensions={
            "http_version": f"HTTP/{version.major}.{version.minor}".encode(),
            # aiohttp's parser reads the phrase as UTF-8, keeping other bytes as escapes.
            "reason_phrase": (response.reason or "").encode("utf-8", "surrogateescape"),
        },
    )


def _payload(body: bytes) -> bytes | io.BytesIO | None:
    """A body as aiohttp writes it best: small ones in one write, large ones in chunks (in
    one write aiohttp would hand the socket a whole large body at once, and warns so)."""
    if not body:
        return None
    return body if len(body) <= _ONE_WRITE else io.BytesIO(body)


def _sum(*seconds: float | None) -> float | None:
    """Timeouts added up; None (no bound) if any is None."""
    if any(part is None for part in seconds):
        return None
    return sum(part for part in seconds if part is not None)


def _write_bound(timeout: dict[str, float | None], body: bytes) -> float | None:
    """How long a request with a large body may take until its answer's headers arrive.

    aiohttp bounds connecting and each read but never a write: a server that stops reading
    a large body would hold the request for ever. A body of up to `_NEVER_WAITS` goes into
    the socket's buffer without waiting for the server, so only larger ones get this bound.
    Connecting and waiting for the headers have their own bounds inside it, so it is reached
    only when writing took longer than `write`, and it is reported as the `WriteTimeout`
    httpcore would have raised. Headers the server trickles out byte by byte after a large
    body could reach it too; they would have kept httpcore waiting for ever.
    """
    if len(body) <= _NEVER_WAITS:
        return None
    return _sum(*(timeout.get(phase) for phase in ("connect", "pool", "write", "read")))
