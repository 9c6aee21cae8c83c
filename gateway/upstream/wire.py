"""The bottom of every provider's stack: HTTP/1.1 over aiohttp's connection pool, speaking
httpx's requests and responses to the layers above.

httpx's own transport (httpcore, parsing with h11 in pure Python over anyio streams) cost
about 0.3 ms of CPU a request more than this one, measured on the same loopback server
(README, Performance): more than a whole upstream request costs aiohttp, whose parser is
llhttp in C. The layers above, the connectors' `httpx.Auth` flows and the tests all keep
httpx's types; only the bytes on the socket move.

What httpcore gave those layers is kept, and `tests/test_wire.py` holds both transports to
it on real sockets, fault by fault:
- the same exception classes for the same faults: a connection never made is
  `ConnectError` or `ConnectTimeout` (nothing left, so a write is known not to have
  happened); anything later is a `ReadTimeout`, `WriteTimeout`, `ReadError` or
  `RemoteProtocolError` (a write may have happened);
- timeouts per phase, from the `timeout` extension httpx puts on each request (aiohttp
  bounds waiting for a free connection and making one together, so by their sum);
- a request is sent once: aiohttp sends an idempotent request again, by itself, when its
  connection drops, which would hide a provider's failure from the retry layer and its
  budget, and send a PUT or DELETE twice;
- the URL goes out byte for byte as httpx encoded it, and the body comes back undecoded
  and unread, for `BoundedBody` to bound and httpx to decode;
- no header the caller did not set (aiohttp would add its own `User-Agent`, `Accept` and
  a `Content-Type` to a bare body), no cookie kept here (httpx keeps them), no proxy or
  `.netrc` taken from the environment (a client given its transport, as ours are, keeps
  httpx from taking a proxy from it either), and certificates verified as httpx verifies
  them.
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
    except aiohttp.InvalidURL as error:
        raise httpx.UnsupportedProtocol(str(error), request=request) from error


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

    The session is made on first use, inside the event loop that serves (aiohttp binds it
    to the loop it is made in, as httpcore's pool bound its connections).
    """

    def __init__(self, *, max_connections: int, verify: ssl.SSLContext | None = None) -> None:
        self._max_connections = max_connections
        self._ssl = verify or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None

    def _current_session(self) -> aiohttp.ClientSession:
        if self._session is None:
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
        read = timeout.get("read")
        write = timeout.get("write")
        body = await request.aread()
        with _as_httpx(request):
            try:
                async with asyncio.timeout(_write_bound(connect, pool, write, read)):
                    response = await session.request(
                        request.method,
                        yarl.URL(str(request.url), encoded=True),
                        headers=request.headers.multi_items(),
                        data=_payload(body),
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(
                            total=None,
                            connect=_sum(connect, pool),
                            sock_connect=connect,
                            sock_read=read,
                        ),
                    )
            except TimeoutError as error:
                if isinstance(error, aiohttp.ServerTimeoutError):
                    raise
                raise httpx.WriteTimeout(
                    "The request could not be written in time.", request=request
                ) from None
        version = response.version or aiohttp.HttpVersion11
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions={
                "http_version": f"HTTP/{version.major}.{version.minor}".encode(),
                "reason_phrase": (response.reason or "").encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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


def _write_bound(
    connect: float | None, pool: float | None, write: float | None, read: float | None
) -> float | None:
    """How long the request may take until its answer's headers arrive.

    aiohttp bounds connecting and each read but never a write: a server that stops reading
    a large body would hold the request for ever. Connecting and waiting for the headers
    have their own bounds inside this one, so only a write that took longer than `write`
    can reach it, and it is reported as the `WriteTimeout` httpcore would have raised.
    """
    return _sum(connect, pool, write, read)
