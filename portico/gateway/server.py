"""HTTP/1.1 server of the data plane: asyncio Protocol + httptools, no framework in between.

Requests whose path starts with a gateway prefix go to the gateway handler
(``async handler(Request, ResponseWriter)``); every other request goes to the management ASGI app
through ``AsgiBridge``. One task runs per request; pipelined requests wait in a queue and are
answered in order.

Timeouts are enforced by one sweep per second over all connections instead of a timer per request,
which keeps the request path free of timer bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, cast

import httptools

from portico.gateway.asgi import ASGIApp, AsgiBridge
from portico.gateway.client_certs import TlsPeer
from portico.gateway.http import (
    EMPTY_BODY,
    JOIN_BYTES,
    LOWER_ASCII,
    BodyReader,
    ClientDisconnected,
    Request,
    ResponseWriter,
)

__all__ = ["Handler", "HttpServer", "ServerLimits"]

logger = logging.getLogger(__name__)

Handler = Callable[[Request, ResponseWriter], Awaitable[None]]
UpgradeHandler = Callable[[Request, asyncio.Transport, bytes], None]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Protocol limits and timeouts (seconds) of the HTTP server."""

    max_header_bytes: int = 64 * 1024  # request line + headers; beyond: 431
    max_url_bytes: int = 16 * 1024  # beyond: 414
    header_timeout: float = 30.0  # from the first byte of a request to the end of its head (slowloris)
    keepalive_timeout: float = 75.0  # idle time between requests on a kept-alive connection
    body_timeout: float = 60.0  # a handler waiting this long for the next body chunk gets TimeoutError
    max_discard_bytes: int = 1024 * 1024  # unread body drained to keep the connection; beyond: close


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("latin-1"))


_STATUS_LINES: Final[dict[int, bytes]] = {int(s): _status_line(int(s)) for s in HTTPStatus}
_CONN_CLOSE: Final = b"connection: close\r\n"
_CONN_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_WRITE_HIGH_WATER = 256 * 1024
_METHODS: Final = {m: m.decode() for m in (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS")}
_ERROR_JSON: Final = b'{"errorDetails": "internal error"}'
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


def error_response(status: int, message: str, close: bool = True) -> bytes:
    """A complete ``{"errorDetails": message}`` response, optionally with ``Connection: close``."""
    body = b'{"errorDetails": "%s"}' % message.replace("\\", "\\\\").replace('"', '\\"').encode()
    return b"".join(
        (
            _STATUS_LINES.get(status) or _status_line(status),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            _CONN_CLOSE if close else b"",
            b"\r\n",
            body,
        )
    )


class _Rejected(Exception):
    """The request cannot be served; answer ``status`` with ``message`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_LINGER_SECONDS = 2.0
# Past the shutdown grace period: the answer to a request that has none yet, and how long the
# cancelled requests get to finish their bookkeeping (transaction events) before shutdown returns.
_SHUTDOWN_ANSWER = error_response(503, "the server is shutting down")
_CANCELLED_WAIT = 2.0
# A 503 to a client still sending lingers this long: shorter than _CANCELLED_WAIT, so shutdown
# sees the connection closed within its wait.
_SHUTDOWN_LINGER_SECONDS = 1.0


class HttpServer:
    """The data plane's HTTP/1.1 listener.

    ``handler`` receives every request whose path starts with one of ``gateway_prefixes``; the rest
    go to ``fallback_asgi`` (an ASGI 3 app; None answers them 404).
    """

    def __init__(
        self,
        handler: Handler,
        fallback_asgi: ASGIApp | None,
        gateway_prefixes: tuple[str, ...] = ("/gateway/",),
        limits: ServerLimits = ServerLimits(),  # frozen, so a shared default is safe
        upgrades: dict[str, UpgradeHandler] | None = None,
    ) -> None:
        self.handler = handler
        self.fallback: Handler = AsgiBridge(fallback_asgi) if fallback_asgi is not None else _not_found
        self.prefixes = tuple(gateway_prefixes)
        self.limits = limits
        # Paths whose protocol upgrades (WebSocket) are handed over with the transport, e.g.
        # /integration-controller: handler(request, transport, bytes already read past the head).
        self.upgrades = dict(upgrades or {})
        self.port = 0
        self.closing = False
        self.now = 0.0  # loop time, refreshed by the sweep: timeouts need only 1 s resolution
        self._connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed: asyncio.Event | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        """Bind and start accepting; ``port=0`` picks a free port, exposed afterwards as ``port``.
        With ``ssl_context`` the listener speaks HTTPS (requests get ``scheme`` "https" and ``tls``)."""
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        if ssl_context is None:
            self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=4096)
        else:
            self._server = await loop.create_server(lambda: _TlsConnection(self), host, port, backlog=4096,
                                                    ssl=ssl_context, ssl_handshake_timeout=self.limits.header_timeout)
        sockets = cast(Any, self._server).sockets  # a list under uvloop, a tuple in typeshed
        self.port = sockets[0].getsockname()[1]
        if isinstance(self.fallback, AsgiBridge):
            self.fallback.server = (host, self.port)
        self._sweeper = loop.call_later(1.0, self._sweep)

    def stop_accepting(self) -> None:
        """The first step of ``shutdown``, at once: no new connections, idle ones closed, and the
        responses still to come carry ``Connection: close``. A node with several listeners calls
        it on all of them before draining any, so none keeps accepting while another drains."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._connections):
            conn.close_if_idle()

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 (the documented API)
        """Stop accepting (``stop_accepting``), give in-flight requests ``timeout`` seconds to
        finish (their responses carry ``Connection: close``), then cut what is left: a request
        still without an answer is answered 503, one whose answer is under way is aborted, and
        their handlers are cancelled (the only time the server cancels one). Returns once the
        cancelled handlers have run to their end and the cut connections have closed (a 503 to
        a client still sending lingers: see ``_Connection.cancel``), at most ``_CANCELLED_WAIT``
        more seconds."""
        self.stop_accepting()
        if self._connections:
            self._all_closed = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except TimeoutError:
                logger.warning("shutdown: aborting %d connections still busy", len(self._connections))
            waits: list[asyncio.Task[Any]] = [
                task for conn in list(self._connections) if (task := conn.cancel()) is not None
            ]
            closed = None
            if self._connections:  # the lingering ones among them close within the wait
                closed = asyncio.create_task(self._all_closed.wait())
                waits.append(closed)
            if waits:
                await asyncio.wait(waits, timeout=_CANCELLED_WAIT)
            if closed is not None:
                closed.cancel()  # still waiting only past the timeout
        if self._server is not None:
            await self._server.wait_closed()

    def connection_made(self, conn: _Connection) -> None:
        self._connections.add(conn)

    def connection_lost(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        if self._all_closed is not None and not self._connections:
            self._all_closed.set()

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = now = loop.time()
        limits = self.limits
        for conn in list(self._connections):
            conn.check_timeouts(now, limits)
        self._sweeper = loop.call_later(1.0, self._sweep)


async def _not_found(request: Request, response: ResponseWriter) -> None:
    await response.respond(404, _JSON_HEADERS, b'{"errorDetails": "not found"}')


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs them one at a time, in order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self._client: tuple[str, int] = ("", 0)
        self._closed = False
        self._lingering = False  # linger_close under way: the connection closes on its own
        self._pause_bits = 0  # reasons reading is paused: 1 body buffer full, 2 pipelined requests wait, 4 condemned
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._disconnected: asyncio.Future[None] | None = None
        # request being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: BodyReader = EMPTY_BODY
        self._head_bytes = 0
        self._head_start = b""  # the read a head began with, while that head is parsed
        self._reading_head = True
        self._continue_pending = False
        # requests being served
        self._active: _ResponseStream | None = None
        # Requests parsed and not yet answered, in order (a list: compiled, its append and pop are
        # native, a deque's are Python calls; more than one waits only when a client pipelines).
        self._queue: list[tuple[Request, _ResponseStream]] = []
        self._pending_error: bytes | None = None
        self._stamp = server.now
        # One worker task per connection runs its requests; it sleeps on _idle_waiter between them
        # (cheaper than a task per request).
        self._worker: asyncio.Task[None] | None = None
        self._upgrade: Request | None = None
        self._idle_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they implement it.
        self._transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client = (peer[0], peer[1])
        self._server.connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self._pending_error is not None:
            return  # the connection is condemned; ignore whatever the client still sends
        if self._reading_head:
            if not self._head_bytes:
                self._stamp = self._server.now  # the first byte of a head: its timeout starts
                self._head_start = data
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._on_upgrade(data[int(upgrade.args[0]) :] if upgrade.args else b"")
        except httptools.HttpParserCallbackError as failed:
            cause = failed.__context__
            if isinstance(cause, _Rejected):
                self._reject(cause.status, cause.message)
            else:
                logger.error("HTTP request parsing failed", exc_info=cause or failed)
                self._reject(400, "malformed request")
        except httptools.HttpParserError as malformed:
            self._reject(400, f"malformed request: {malformed}")
        else:
            if self._reading_head and self._head_bytes > self._limits.max_header_bytes:
                # Headers still incomplete but already too big: httptools would buffer them forever.
                self._reject(431, "request headers too large")

    def eof_received(self) -> bool | None:
        # A client's EOF is taken as a disconnect (as uvicorn and nginx do): handlers learn it
        # through wait_disconnected() and failing writes, and stop work nobody will read. A client
        # that half-closes after pipelining requests loses their answers.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        error = ClientDisconnected("client disconnected")
        self._body.set_exception(error)
        self._queue.clear()
        for waiter in (self._drain_waiter, self._disconnected, self._idle_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._server.connection_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks --------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_bytes:
            raise _Rejected(414, "request URL too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.translate(LOWER_ASCII), value))

    def on_headers_complete(self) -> None:
        self._reading_head = False
        head_bytes = self._head_bytes
        self._head_bytes = 0
        if head_bytes > self._limits.max_header_bytes:
            # The read that completed the head was large: count the head itself, not the body after it.
            if len(self._url) + sum(len(n) + len(v) + 4 for n, v in self._headers) > self._limits.max_header_bytes:
                raise _Rejected(431, "request headers too large")
        request = self._build_request()
        self._url = b""  # fresh state for the next head (there is no on_message_begin: one call less)
        self._headers = []
        if self._server.upgrades and request.path in self._server.upgrades and self._active is None \
                and self._parser.should_upgrade():
            self._upgrade = request  # handed over in _on_upgrade, not served as HTTP
            return
        keep_alive = request.keep_alive and not self._server.closing
        response = _ResponseStream(self, keep_alive, request.method == "HEAD", request.http_version == "1.0")
        self._queue.append((request, response))
        if self._active is not None:  # pipelined: waits its turn; read no further meanwhile
            self._pause(2)
            return
        self._active = response
        waiter = self._idle_waiter
        if waiter is not None:
            self._idle_waiter = None
            waiter.set_result(None)
        else:
            self._worker = self._loop.create_task(self._serve())

    def on_body(self, body: bytes) -> None:
        self._body.feed(body)

    def on_message_complete(self) -> None:
        self._reading_head = True
        body = self._body
        if body is not EMPTY_BODY:
            body.feed_eof()
            self._body = EMPTY_BODY
            self._continue_pending = False

    # -- request lifecycle ----------------------------------------------------------------------

    def _build_request(self) -> Request:
        parser = self._parser
        url = raw_url = self._url
        if url[:1] != b"/":
            url = _origin_form(url)
        target = url.decode("latin-1")  # str methods, unlike bytes methods, are native when compiled
        q = target.find("?")
        if q < 0:
            path, query = target, ""
        else:
            path, query = target[:q], target[q + 1 :]
        # A GET whose request line came whole in the read its head began with needs no call to the
        # parser for its method or version (each call costs as much as the rest of this); an
        # HTTP/1.1 request without a Connection header none for its keep-alive.
        start, self._head_start = self._head_start, b""
        method: str | None = None
        version = ""
        if start.startswith(b"GET "):
            method = "GET"
            end = 4 + len(raw_url)
            if start[end : end + 11] == b" HTTP/1.1\r\n" and start[4:end] == raw_url:
                version = "1.1"
        content_length: int | None = None
        chunked = False
        expect = False
        connection = False
        for name, value in self._headers:
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
            elif name == b"connection":
                connection = True
        if not version:
            version = parser.get_http_version()
        if chunked or content_length:
            body = self._body = BodyReader(self, self._limits.body_timeout)
            self._continue_pending = expect and version == "1.1"
        else:
            body = EMPTY_BODY
        if method is None:
            raw = parser.get_method()
            method = _METHODS.get(raw) or raw.decode("latin-1")
        ip, port = self._client
        return Request(
            method,
            path,
            query,
            self._headers,
            ip,
            port,
            version,
            True if version == "1.1" and not connection else parser.should_keep_alive(),
            content_length,
            chunked,
            body,
        )

    async def _serve(self) -> None:
        """The connection's worker: runs queued requests one at a time, in order, until closed."""
        queue = self._queue
        server = self._server
        while queue:
            request, response = queue.pop(0)
            self._active = response
            if not queue and self._pause_bits & 2:  # the last pipelined request: read on
                self._resume(2)
            handler = server.handler if request.path.startswith(server.prefixes) else server.fallback
            try:
                await handler(request, response)
            except ConnectionError:
                self.abort()  # client gone (or upstream pipe broke mid-response): nothing more to say
                return
            except asyncio.CancelledError:
                # Closing or lingering: shutdown's 503 is on its way out.
                if not (self._transport.is_closing() or self._lingering):
                    self.abort()
                raise
            except Exception:
                # The one log of an unexpected error: the ASGI apps answer their 500 and raise on
                # for the server to log (Starlette's ServerErrorMiddleware), so they log nothing.
                logger.exception("unhandled error on %s %s", request.method, request.path)
                if self._closed:
                    return
                if not response.started:
                    await response.respond(500, _JSON_HEADERS, _ERROR_JSON)
                elif not response.ended:
                    self.abort()  # a body cut short: only closing tells the client
                    return
                # else: answered in full before raising; the connection serves on
            if not self._finish(request, response):
                return
            if not queue:
                waiter = self._idle_waiter = self._loop.create_future()
                await waiter

    def _finish(self, request: Request, response: _ResponseStream) -> bool:
        """Complete a request's exchange; False when the connection is done."""
        if self._closed:
            return False
        if not response.ended:
            if not response.started:
                logger.error("gateway handler returned without a response on %s %s", request.method, request.path)
                self._transport.write(error_response(500, "internal error"))
                self.close()
                return False
            response.finish_body()
            if self._closed:
                return False
        body = request.body
        if body is not EMPTY_BODY:
            if not body.complete and not self._can_discard(request):
                self.linger_close()
                return False
            body.discard()
        if not response.keep_alive or self._server.closing:
            self.close()
            return False
        if self._queue:
            return True
        self._active = None
        if self._pending_error is not None:
            self._transport.write(self._pending_error)
            self.close()
            return False
        self._stamp = self._server.now
        return True

    def _can_discard(self, request: Request) -> bool:
        # Draining a small rest is cheaper than a new connection; with a pending 100-continue the
        # client may never send the body, so only closing is safe.
        if self._continue_pending or request.content_length is None:
            return False
        return request.content_length - request.body.received <= self._limits.max_discard_bytes

    def _reject(self, status: int, message: str) -> None:
        """Answer a request that cannot be parsed or served, after the ones before it, then close."""
        self._pending_error = error_response(status, message)
        self._pause(4)
        self._body.set_exception(ClientDisconnected(message))
        if self._active is None:
            self._transport.write(self._pending_error)
            self.close()

    def _on_upgrade(self, rest: bytes) -> None:
        request, self._upgrade = self._upgrade, None
        if request is not None:  # a registered upgrade path: the handler takes the transport over
            self.connection_lost(None)  # no longer an HTTP connection (releases the worker too)
            self._server.upgrades[request.path](request, self._transport, rest)
            return
        # Other protocol upgrades are not supported: the request was dispatched as a plain
        # one; stop reading the other protocol and close after answering it.
        self._pause(4)
        self._pending_error = b""  # nothing to add after the answer: just close
        if self._active is None:
            self.close()

    # -- flow control (FlowControl protocol for BodyReader) -------------------------------------

    def pause_reading(self) -> None:
        self._pause(1)

    def resume_reading(self) -> None:
        self._resume(1)

    def on_first_read(self) -> None:
        if self._continue_pending:
            self._continue_pending = False
            if self._active is not None and not self._active.started and not self._closed:
                self._transport.write(_CONTINUE)

    def _pause(self, bit: int) -> None:
        if not self._pause_bits and not self._closed:
            self._transport.pause_reading()
        self._pause_bits |= bit

    def _resume(self, bit: int) -> None:
        if self._pause_bits & bit:
            self._pause_bits &= ~bit
            if not self._pause_bits and not self._closed:
                self._transport.resume_reading()

    async def drain(self) -> None:
        if self._closed:
            raise ClientDisconnected("client disconnected")
        if self._write_paused:
            self._drain_waiter = self._loop.create_future()
            await self._drain_waiter
            if self._closed:
                raise ClientDisconnected("client disconnected")

    async def wait_disconnected(self) -> None:
        if self._closed:
            return
        if self._disconnected is None:
            self._disconnected = self._loop.create_future()
        await asyncio.shield(self._disconnected)

    # -- closing --------------------------------------------------------------------------------

    def linger_close(self, seconds: float = _LINGER_SECONDS) -> None:
        """Close a connection whose client is still sending a body nobody will read.

        Closing at once would make the kernel answer the unread data with a reset, and the
        client might never read the response already sent (an early 413, say). So: finish
        writing, drop whatever still arrives for a short while, then close."""
        if self._closed or self._lingering:
            return
        self._lingering = True
        self._pending_error = b""  # data_received now drops everything
        if self._transport.can_write_eof():
            self._transport.write_eof()
        self._pause_bits = 0
        self._transport.resume_reading()
        self._loop.call_later(seconds, self.close)

    def close(self) -> None:
        """Close after flushing what was written."""
        if not self._closed:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection now, discarding unsent data."""
        if not self._closed:
            self._transport.abort()

    def cancel(self) -> asyncio.Task[None] | None:
        """Shutdown past its grace period: answer 503 and close if the request being served has no
        answer yet, else abort; cancel its handler. Returns the cancelled worker task, if any.

        The 503 to a client still sending (a body under way, or reading held back) closes
        lingering, as early answers do: closing at once would reset the connection under it."""
        active = self._active
        if active is not None and not active.started and not self._closed:
            active.preempt()
            self._transport.write(_SHUTDOWN_ANSWER)
            if self._body is not EMPTY_BODY or self._pause_bits:
                self.linger_close(_SHUTDOWN_LINGER_SECONDS)
            else:
                self.close()
        else:
            self.abort()
        worker = self._worker
        if worker is None or worker.done():
            return None
        worker.cancel()
        return worker

    def close_if_idle(self) -> None:
        if self._active is None:
            self.close()

    def check_timeouts(self, now: float, limits: ServerLimits) -> None:
        """Close connections stuck reading a request head or idle for too long (called each second)."""
        if self._active is not None:
            return
        # A head under way, or a new connection's first one, gets the (short) header timeout.
        reading = self._reading_head and (self._head_bytes or self._worker is None)
        if now - self._stamp > (limits.header_timeout if reading else limits.keepalive_timeout):
            self.close()

    @property
    def transport(self) -> asyncio.Transport:
        return self._transport


class _TlsConnection(_Connection):
    """A connection of an HTTPS listener: its requests carry ``scheme`` "https" and the TLS side
    (``request.tls``, the verified client certificate). Plain connections never run this."""

    _peer: TlsPeer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._peer = TlsPeer(transport.get_extra_info("ssl_object"))
        super().connection_made(transport)

    def _build_request(self) -> Request:
        request = super()._build_request()
        request.scheme = "https"
        request.tls = self._peer
        return request


def _origin_form(url: bytes) -> bytes:
    """The path and query of an absolute-form (``http://host/p?q``) or asterisk-form target."""
    if url == b"*":
        return b"*"
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise _Rejected(400, "malformed request target") from None
    path = parsed.path or b"/"
    return path + b"?" + parsed.query if parsed.query else path


class _ResponseStream(ResponseWriter):
    """``ResponseWriter`` of one request on a ``_Connection``."""

    __slots__ = (
        "_chunked",
        "_conn",
        "_head_only",
        "_http10",
        "_remaining",
        "_started",
        "ended",
        "keep_alive",
    )

    def __init__(self, conn: _Connection, keep_alive: bool, head_only: bool, http10: bool) -> None:
        self._conn = conn
        self.keep_alive = keep_alive
        self._head_only = head_only
        self._http10 = http10
        self._started = False
        self.ended = False
        self._chunked = False
        self._remaining = -1  # bytes still owed for a Content-Length body; -1: not length-delimited

    @property
    def started(self) -> bool:
        return self._started

    def _head(self, status: int, headers: list[tuple[bytes, bytes]], framing: bytes) -> bytes:
        parts = [_STATUS_LINES.get(status) or _status_line(status)]
        for name, value in headers:  # compiled, a bytes % of bytes and ints is one native build
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(framing)
        if not self.keep_alive or self._conn._server.closing:
            self.keep_alive = False
            parts.append(_CONN_CLOSE)
        elif self._http10:
            parts.append(_CONN_KEEP_ALIVE)
        parts.append(b"\r\n")
        return JOIN_BYTES(parts)

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        waiting = self.send(status, headers, body)
        if waiting is not None:
            await waiting

    def send(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Awaitable[None] | None:
        if self._started:
            raise RuntimeError("response already started")
        self._started = self.ended = True
        conn = self._conn
        if conn._closed:
            raise ClientDisconnected("client disconnected")
        if status < 200 or status == 204 or status == 304:
            head = self._head(status, headers, b"")
            body = b""
        else:
            head = self._head(status, headers, b"content-length: %d\r\n" % len(body))
        if self._head_only or not body:
            conn._transport.write(head)
        elif len(body) <= 16384:
            conn._transport.write(head + body)
        else:
            conn._transport.writelines((head, body))  # no copy of a big body; still one writev
        return conn.drain() if conn._write_paused else None

    async def start(self, status: int, headers: list[tuple[bytes, bytes]], content_length: int | None) -> None:
        if self._started:
            raise RuntimeError("response already started")
        self._started = True
        conn = self._conn
        if conn._closed:
            raise ClientDisconnected("client disconnected")
        if status < 200 or status == 204 or status == 304:
            framing = b""
            self._head_only = True
        elif content_length is not None:
            framing = b"content-length: %d\r\n" % content_length
            self._remaining = content_length
        elif self._http10:
            framing = b""
            self.keep_alive = False  # the end of the body is the end of the connection
        else:
            framing = b"transfer-encoding: chunked\r\n"
            self._chunked = True
        conn._transport.write(self._head(status, headers, framing))
        if conn._write_paused:
            await conn.drain()

    async def write(self, data: bytes) -> None:
        if not self._started or self.ended:
            raise RuntimeError("write() outside start() ... end()")
        if not data or self._head_only:
            return
        conn = self._conn
        if conn._closed:
            raise ClientDisconnected("client disconnected")
        if self._chunked:
            conn._transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            if self._remaining >= 0:
                if len(data) > self._remaining:
                    raise RuntimeError("response body longer than its Content-Length")
                self._remaining -= len(data)
            conn._transport.write(data)
        if conn._write_paused:
            await conn.drain()

    async def end(self) -> None:
        if not self._started:
            raise RuntimeError("end() before start()")
        self.finish_body()

    def finish_body(self) -> None:
        """Terminate the body; a body short of its Content-Length can only abort the connection."""
        if self.ended:
            return
        self.ended = True
        conn = self._conn
        if conn._closed or self._head_only:
            return
        if self._chunked:
            conn._transport.write(b"0\r\n\r\n")
        elif self._remaining > 0:
            logger.warning("response ended %d bytes short of its Content-Length", self._remaining)
            conn.abort()

    async def wait_disconnected(self) -> None:
        await self._conn.wait_disconnected()

    def preempt(self) -> None:
        """The server answers in the handler's place (shutdown's 503): nothing more goes out."""
        self._started = self.ended = True
        self.keep_alive = False
