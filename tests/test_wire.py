"""The wire to a provider, on real sockets: aiohttp's transport (what the gateway sends with)
behaves as httpx's own did, fault by fault, with each request sent once.

Each test runs both transports against the same misbehaving loopback server, so what is
asserted is what httpcore did: the exception classes the layers above tell apart (nothing
sent, or maybe sent), the bytes of the request, and the body handed up.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.tools.loopback import free_port
from gateway.upstream.wire import AiohttpTransport

pytestmark = pytest.mark.every_loop
"""Each event loop drives its sockets its own way: the transport is held to the same outcomes
on uvloop, which `gateway serve` runs on, and on asyncio's own loop (`tests/conftest.py`)."""

TRANSPORTS = ["httpcore", "aiohttp"]
FAST = httpx.Timeout(0.5)


@dataclass
class Arrived:
    """What the server was sent: each request's target, headers and body, and how many
    connections carried them."""

    connections: int = 0
    requests: list[tuple[str, list[tuple[str, str]], bytes]] = field(default_factory=list)
    one: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a request has arrived."""


Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Arrived], Awaitable[None]]


async def _request(reader: asyncio.StreamReader, arrived: Arrived) -> bool:
    """Reads one request off the connection; False when the client has closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (h.partition(": ") for h in lines if h)]
    length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
    arrived.requests.append((line.split(" ")[1], headers, await reader.readexactly(length)))
    arrived.one.set()
    return True


def _answer(body: bytes = b'{"ok": true}', *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived) -> None:
    while await _request(reader, a):
        writer.write(_answer(b'{"ok": true}', "Set-Cookie: a=1", "Set-Cookie: b=2", "X-N: 1"))
        await writer.drain()


async def answers_once(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived
) -> None:
    if await _request(reader, a):
        writer.write(_answer())
        await writer.drain()


async def hangs_up(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter, a: Arrived) -> None:
    await _request(reader, a)


async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived) -> None:
    await _request(reader, a)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def stalls(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter, a: Arrived) -> None:
    await _request(reader, a)
    await asyncio.sleep(30)


async def hangs_up_mid_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived
) -> None:
    """Sends the headers of a 100-byte body and 10 bytes of it."""
    await _request(reader, a)
    writer.write(_answer(b"0123456789" * 10)[:-90])
    await writer.drain()


async def stalls_mid_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived
) -> None:
    await hangs_up_mid_body(reader, writer, a)
    await asyncio.sleep(30)


async def garbles(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived) -> None:
    await _request(reader, a)
    writer.write(b"HTTP/1.1 two hundred\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def never_reads(
    _reader: asyncio.StreamReader, _writer: asyncio.StreamWriter, _arrived: Arrived
) -> None:
    await asyncio.sleep(30)


async def chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived) -> None:
    while await _request(reader, a):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"a": ', b"[1, 2, 3]", b"}"):
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def gzips(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived) -> None:
    while await _request(reader, a):
        writer.write(_answer(gzip.compress(b'{"zipped": true}'), "Content-Encoding: gzip"))
        await writer.drain()


@asynccontextmanager
async def server(
    behaviour: Behaviour, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Arrived]]:
    """A loopback server acting out `behaviour` on each connection, stopped on leaving."""
    arrived = Arrived()
    handlers: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.connections += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await behaviour(reader, writer, arrived)
        except asyncio.CancelledError:
            return
        finally:
            writer.close()

    listening = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=tls)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", arrived
    finally:
        listening.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await listening.wait_closed()


def transport(
    kind: str, max_connections: int = 10, verify: ssl.SSLContext | None = None
) -> httpx.AsyncBaseTransport:
    if kind == "httpcore":
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=max_connections), verify=verify or True
        )
    return AiohttpTransport(max_connections=max_connections, verify=verify)


@asynccontextmanager
async def client(
    kind: str,
    bounds: httpx.Timeout = FAST,
    max_connections: int = 10,
    verify: ssl.SSLContext | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=transport(kind, max_connections, verify), timeout=bounds
    ) as http:
        yield http


def _self_signed(directory: Path) -> Path:
    """A certificate for 127.0.0.1 that signs itself, written with its key as one PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "propgate test provider")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = directory / "provider.pem"
    pem.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_an_answer_arrives_whole_with_every_header_and_the_url_as_httpx_wrote_it(
    kind: str,
) -> None:
    async with server(answers) as (url, arrived), client(kind) as http:
        target = "/api/Units?$filter=UnitCode%20eq%20'%20775'%20and%20Name%20eq%20'a%2Bb%7E%27'"
        response = await http.get(url + target)
        assert response.status_code == 200
        assert response.json() == {"ok": True}
        assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert response.reason_phrase == "OK"
        assert response.http_version == "HTTP/1.1"
    assert [sent for sent, _, _ in arrived.requests] == [response.request.url.raw_path.decode()]
    assert "%20" in arrived.requests[0][0]
    assert "%7E%27" in arrived.requests[0][0], "yarl, left to itself, writes ~ and '"


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_only_the_headers_httpx_set_go_out_as_it_wrote_them(kind: str) -> None:
    async with server(answers) as (url, arrived), client(kind) as http:
        sent = [
            await http.get(url + "/read", headers={"Authorization": "Bearer t", "X-Id": "7"}),
            await http.post(url + "/write", json={"name": "Ada"}),
            await http.post(url + "/bare", content=b"raw"),
            await http.post(url + "/empty"),
            await http.delete(url + "/gone"),
        ]
    for response, (_, headers, body) in zip(sent, arrived.requests, strict=True):
        written = [(n.decode(), v.decode()) for n, v in response.request.headers.raw]
        if kind == "aiohttp" and response.request.method == "DELETE":
            written.append(("Content-Length", "0"))
        assert sorted(headers) == sorted(written)
        assert body == response.request.content


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_credentials_in_the_url_go_out_as_httpx_writes_them(kind: str) -> None:
    async with server(answers) as (url, arrived), client(kind) as http:
        response = await http.get(url.replace("//", "//ada:secret@") + "/mine")
    assert response.status_code == 200
    ((target, headers, _),) = arrived.requests
    assert target == "/mine"
    assert ("Authorization", "Basic YWRhOnNlY3JldA==") in headers


async def reason_in_latin_1(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived
) -> None:
    await _request(reader, a)
    writer.write("HTTP/1.1 409 Conflit détecté\r\nContent-Length: 0\r\n\r\n".encode("latin-1"))
    await writer.drain()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_reason_phrase_in_any_bytes_comes_up_as_sent(kind: str) -> None:
    async with server(reason_in_latin_1) as (url, _), client(kind) as http:
        response = await http.post(url + "/tenants", json={})
    assert response.status_code == 409
    assert response.extensions["reason_phrase"] == "Conflit détecté".encode("latin-1")


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_url_of_another_scheme_is_an_unsupported_protocol(kind: str) -> None:
    sent = transport(kind)
    with pytest.raises(httpx.UnsupportedProtocol):
        await sent.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/file"))
    await sent.aclose()


async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, a: Arrived) -> None:
    while await _request(reader, a):
        writer.write(_answer(b"x" * (4 * 1024 * 1024)))
        await writer.drain()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_response_left_unread_does_not_hand_its_connection_on(kind: str) -> None:
    async with server(large) as (url, arrived), client(kind) as http:
        async with http.stream("GET", url + "/big") as response:
            async for _ in response.aiter_raw():
                break
        assert len((await http.get(url + "/big")).content) == 4 * 1024 * 1024
    assert (arrived.connections, len(arrived.requests)) == (2, 2)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_requests_share_a_kept_connection(kind: str) -> None:
    async with server(answers) as (url, arrived), client(kind) as http:
        for _ in range(3):
            assert (await http.get(url + "/again")).status_code == 200
    assert (arrived.connections, len(arrived.requests)) == (1, 3)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_connection_the_server_closed_after_answering_is_not_reused(kind: str) -> None:
    async with server(answers_once) as (url, arrived), client(kind) as http:
        for _ in range(3):
            assert (await http.get(url + "/once")).status_code == 200
            await asyncio.sleep(0.05)
    assert (arrived.connections, len(arrived.requests)) == (3, 3)


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (hangs_up, httpx.RemoteProtocolError),
        (resets, httpx.ReadError),
        (stalls, httpx.ReadTimeout),
        (garbles, httpx.RemoteProtocolError),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "POST"])
async def test_a_fault_after_sending_is_its_httpx_error_and_the_request_went_once(
    kind: str, behaviour: Behaviour, error: type[httpx.TransportError], method: str
) -> None:
    async with server(behaviour) as (url, arrived), client(kind) as http:
        with pytest.raises(error):
            await http.request(method, url + "/fault", content=b"{}")
    assert len(arrived.requests) == 1, "sent once: retrying is the retry layer's to decide"


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(
    ("behaviour", "error"),
    [(stalls_mid_body, httpx.ReadTimeout), (hangs_up_mid_body, httpx.RemoteProtocolError)],
)
async def test_a_body_cut_short_is_its_httpx_error_when_read(
    kind: str, behaviour: Behaviour, error: type[httpx.TransportError]
) -> None:
    async with server(behaviour) as (url, _), client(kind) as http:
        async with http.stream("GET", url + "/body") as response:
            assert response.status_code == 200
            with pytest.raises(error):
                await response.aread()


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_no_listener_is_a_connect_error(kind: str) -> None:
    async with client(kind) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{free_port()}/nobody")


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_full_pool_times_out_before_anything_is_sent(kind: str) -> None:
    """aiohttp bounds waiting for a connection and making it together (their sum); what
    the layers above see is the same: an error that says nothing was sent."""
    timeout = httpx.Timeout(2.0, connect=0.1, pool=0.2)
    async with server(stalls) as (url, arrived), client(kind, timeout, 1) as http:
        holding = asyncio.create_task(http.get(url + "/holds"))
        await arrived.one.wait()
        with pytest.raises((httpx.PoolTimeout, httpx.ConnectTimeout)):
            await http.get(url + "/waits")
        holding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding
    assert [target for target, _, _ in arrived.requests] == ["/holds"]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_body_the_server_will_not_read_is_a_write_timeout(kind: str) -> None:
    async with server(never_reads) as (url, _), client(kind, httpx.Timeout(0.3)) as http:
        with pytest.raises(httpx.WriteTimeout):
            await http.post(url + "/big", content=b"x" * (64 * 1024 * 1024))


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(
    ("behaviour", "body"), [(chunks, {"a": [1, 2, 3]}), (gzips, {"zipped": True})]
)
async def test_chunked_and_compressed_bodies_come_up_as_httpx_reads_them(
    kind: str, behaviour: Behaviour, body: object
) -> None:
    async with server(behaviour) as (url, _), client(kind) as http:
        for _ in range(2):
            assert (await http.get(url + "/framed")).json() == body


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_certificate_nobody_vouches_for_is_refused_before_anything_is_sent(
    kind: str, tmp_path: Path
) -> None:
    pem = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pem)
    async with server(answers, tls) as (url, arrived):
        async with client(kind) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(url + "/secret")
        async with client(kind, verify=ssl.create_default_context(cafile=pem)) as http:
            assert (await http.get(url + "/secret")).json() == {"ok": True}
    assert [target for target, _, _ in arrived.requests] == ["/secret"]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_an_exchange_leaves_nothing_for_the_collector(kind: str) -> None:
    """What the gateway's heap tests hold its requests to, for the wire they go out on
    (httpx's client is left out: its responses keep themselves in cycles, which the
    connectors undo with `unbound`)."""
    sent = transport(kind)
    timeout = {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}
    async with server(answers) as (url, _):
        for _ in range(3):
            warm = await sent.handle_async_request(httpx.Request("GET", url + "/warm"))
            await warm.aread()
        del warm
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                request = httpx.Request("GET", url + "/heap", extensions={"timeout": timeout})
                response = await sent.handle_async_request(request)
                await response.aread()
                await response.aclose()
            del request, response
            left = gc.collect()
        finally:
            gc.enable()
        await sent.aclose()
    assert left == 0


async def test_a_streamed_body_goes_out_whole_with_its_length() -> None:
    """httpx marks a body it would stream `Transfer-Encoding: chunked`; it is handed to
    aiohttp whole, so that header stays behind and the length frames it."""

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"Ada"}'

    async with server(answers) as (url, arrived), client("aiohttp") as http:
        await http.post(url + "/streamed", content=parts())
    ((_, headers, body),) = arrived.requests
    assert body == b'{"name": "Ada"}'
    names = {name.lower(): value for name, value in headers}
    assert names["content-length"] == str(len(body))
    assert "transfer-encoding" not in names


async def test_a_transport_serves_the_loop_it_was_first_used_in() -> None:
    sent = AiohttpTransport(max_connections=1)
    async with server(answers) as (url, _):
        first = await sent.handle_async_request(httpx.Request("GET", url + "/here"))
        await first.aread()

        def elsewhere() -> None:
            async def ask() -> None:
                await sent.handle_async_request(httpx.Request("GET", url + "/there"))

            asyncio.run(ask())

        with pytest.raises(RuntimeError, match="event loop it was first used in"):
            await asyncio.to_thread(elsewhere)
        await sent.aclose()
