"""The HTTP/1.1 protocol `gateway serve` speaks to its callers: uvicorn's, on h11, mended
where a malformed request left it at odds with the app.

Named rather than left to uvicorn's "auto", which takes httptools wherever it is installed
(`uvicorn[standard]` brings it): the framing the gateway is tested against on sockets
(`tests/test_http_framing.py`) is h11's, and uvicorn's httptools protocol bounds neither the
request line nor the headers."""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["Http11"]


class Http11(H11Protocol):
    """uvicorn's h11 protocol refuses a request found malformed after its head (a chunk size
    that is not hex) with a 400 and closes the connection, but leaves the request's cycle
    believing its caller is still there. The app, by then answering the head, sends its
    answer into a connection h11 has given up on: h11 raises, and uvicorn logs "Exception in
    ASGI application" with a traceback at ERROR, for a caller who already has its 400. Marked
    gone instead, as uvicorn marks a connection its caller closed, the cycle drops what the
    app sends and answers a read with `http.disconnect`.

    Where the app had already begun its answer (a 401 to a head without a key, sent before
    the bad chunk came), a 400 cannot follow it: h11 raised inside the protocol's own
    callback, and the event loop logged a fatal error on the transport. The connection is
    closed instead, and the caller keeps the answer it has."""

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.close()
            return
        super().send_400_response(msg)
