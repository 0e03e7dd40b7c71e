"""Pooled HTTP/1.1 client to native services: asyncio Protocol + httptools.HttpResponseParser.

``UpstreamPool.request`` sends one request and returns as soon as the response head arrived; the
body is then read through the returned ``UpstreamResponse``. A connection goes back to the pool only
when its response body was fully read and both sides allow keep-alive. Bodies stream in both
directions with flow control, so memory stays flat whatever their size.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Final, Literal, cast

import httptools

from portico.gateway.http import EMPTY_BODY, JOIN_BYTES, LOWER_ASCII, BodyReader, BodyTooLarge

__all__ = [
    "UpstreamClosed",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamTlsError",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
# Headers the pool writes itself: framing must match how it sends the body, and Host is added
# when missing.
_OWN_HEADERS: Final = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_SMALL_BODY = 16384  # bodies up to this size are copied into the head's write; bigger ones are not
_WRITE_HIGH_WATER = 256 * 1024
# How much of the request went out on a connection: a stale one may be retried only if replaying is safe.
_NOT_SENT: Final = 0
_SENDING: Final = 1
_SENT: Final = 2
# Read timeouts are checked by one sweep over the pool's connections this often, instead of a timer
# per request (a timer costs ~2 us per request; the sweep costs nothing per request).
_SWEEP_INTERVAL: Final = 0.1

# (scheme, host, port), plus the TLS context for https routes that bring their own (gateway/tls.py)
Key = tuple[str, str, int] | tuple[str, str, int, ssl.SSLContext]
SSLContextFactory = Callable[[str, int], ssl.SSLContext]


class UpstreamError(Exception):
    """Base of the errors ``UpstreamPool`` raises."""


class UpstreamConnectError(UpstreamError):
    """The upstream could not be reached: refused, unresolvable, unreachable, TLS handshake failed."""


class UpstreamTlsError(UpstreamConnectError):
    """The TLS handshake failed: the upstream's certificate is not trusted (or does not match its
    name), or it refused ours."""


class UpstreamTimeout(UpstreamError):
    """``phase`` "connect": no connection within connect_timeout; "read": the upstream was silent
    for read_timeout while a response head or the next body chunk (or a write drain) was awaited."""

    def __init__(self, phase: Literal["connect", "read"]) -> None:
        super().__init__(f"upstream {phase} timed out")
        self.phase = phase


class UpstreamClosed(UpstreamError):
    """The upstream closed the connection before or in the middle of a response, or broke HTTP."""


def _read_timeout() -> UpstreamTimeout:
    return UpstreamTimeout("read")


class UpstreamResponse:
    """A response whose head has arrived; iterate it (or ``read_all``) for the de-chunked body.

    Consume the body or call ``aclose()``: until then the connection is neither pooled nor closed.
    A body that arrived whole with its head (the common small answer) is held as its chunks,
    without a ``BodyReader``.
    """

    __slots__ = ("_body", "_chunks", "_conn", "chunked", "content_length", "headers", "status")

    def __init__(
        self,
        conn: _UpstreamConnection,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content_length: int | None,
        chunked: bool,
        body: BodyReader,
        chunks: list[bytes] | None = None,
    ) -> None:
        self._conn: _UpstreamConnection | None = conn
        self.status = status
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self._body = body
        self._chunks = chunks  # the whole body's unread chunks, when it came with the head

    @property
    def reason(self) -> str:
        """The standard reason phrase of ``status`` (the upstream's own phrase is not kept: parsing
        it costs a callback per response and HTTP gives it no meaning)."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return ""

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        if chunks is not None:
            if chunks:
                return chunks.pop(0)
            self._release()
            raise StopAsyncIteration
        try:
            return await self._body.__anext__()
        except StopAsyncIteration:
            self._release()
            raise
        except BaseException:
            await self.aclose()
            raise

    def whole_body(self) -> bytes | None:
        """The whole body if it arrived with the head (then the connection is released), else None
        (read it with ``read_all``): the common small answer, without a coroutine."""
        chunks = self._chunks
        if chunks is None:
            return None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._release()
        return data

    async def read_all(self, limit: int) -> bytes:
        """The whole body; ``BodyTooLarge`` past ``limit`` bytes (the connection is then closed)."""
        chunks = self._chunks
        if chunks is not None:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            if len(data) > limit:
                await self.aclose()
                raise BodyTooLarge(limit)
            self._release()
            return data
        body = self._body
        if body.complete and body.buffered <= limit:
            data = body.take_all()  # fast path: small bodies arrive with the head
            self._release()
            return data
        try:
            data = await self._body.read_all(limit)
        except BaseException:
            await self.aclose()
            raise
        if self._body.complete:
            self._release()
        return data

    async def aclose(self) -> None:
        """Give up on the rest of the body; the connection is closed unless the body was complete
        (a HEAD, 204 or 304 answer, or a body that arrived whole, still pools the connection)."""
        if self._chunks is not None:
            self._chunks.clear()
            self._release()
            return
        body = self._body
        if body.complete and not body.buffered:
            self._release()
            return
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.abort()

    def _release(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.response_consumed()


class _UpstreamConnection(asyncio.Protocol):
    """One connection to an upstream, carrying one request at a time."""

    def __init__(self, pool: UpstreamPool, key: Key) -> None:
        self._pool = pool
        self.key = key
        self.idle_list = pool.idle_list(key)
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.closed = False
        self.idle = False
        self.reused = False  # carried a request before the current one
        self.got_bytes = False  # some byte of the current response arrived
        self.send_state = _NOT_SENT
        self.read_timeout = 60.0
        self.deadline = 0.0  # loop time after which the awaited head or drain times out; 0: none
        self.keep_alive = True  # the request allows reuse (no "connection: close" from the caller)
        self._head_only = False
        self._waiter: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._body: BodyReader = EMPTY_BODY
        self._headers: list[tuple[bytes, bytes]] = []
        # A head parsed during the current data_received, handed over when that read is parsed
        # (with the whole body, when it came along): (status, content_length, chunked), and the
        # body chunks seen meanwhile.
        self._head: tuple[int, int | None, bool] | None = None
        self._early_chunks: list[bytes] | None = None
        self._message_done = False
        self._reusable = False  # the response allows reuse
        self._until_eof = False  # body delimited by the connection's end
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- request side ---------------------------------------------------------------------------

    def begin(self, head_only: bool, keep_alive: bool, read_timeout: float) -> asyncio.Future[UpstreamResponse]:
        """Prepare for a new exchange; the future resolves with the response head."""
        self.got_bytes = False
        self.send_state = _NOT_SENT
        self.keep_alive = keep_alive
        self.read_timeout = read_timeout
        self._head_only = head_only
        self._headers = []  # set here rather than in on_message_begin: one callback less
        self._response = None
        self._message_done = False
        self._until_eof = False
        waiter = self._waiter = self._pool.loop.create_future()
        return waiter

    async def drain(self) -> None:
        """Wait until the transport's write buffer drained below its low mark (at most read_timeout)."""
        if not self._write_paused or self.closed:
            return
        loop = self._pool.loop
        waiter = self._drain_waiter = loop.create_future()
        self.deadline = loop.time() + self.read_timeout
        try:
            await waiter
        finally:
            self.deadline = 0.0
            self._drain_waiter = None

    def expire(self) -> None:
        """read_timeout passed while a response head or a write drain was awaited."""
        self.deadline = 0.0
        for waiter in (self._waiter, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_exception(UpstreamTimeout("read"))
        self.abort()

    def response_consumed(self) -> None:
        """The caller read the whole body: pool the connection if both sides allow it."""
        self._response = None
        if self._message_done and self._reusable and self.keep_alive and self.send_state == _SENT and not self.closed:
            self.reused = True
            self._pool._release(self)
        else:
            self.abort()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they implement it.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        self._pool._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._head = self._early_chunks = None
            self._fail(UpstreamClosed(f"malformed upstream response: {exc.__context__ or exc}"))
            self.abort()
            return
        if self._head is not None:
            self._hand_over()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool._connections.discard(self)
        if self.idle:
            self._pool._forget(self)
        if self._until_eof and self._response is not None and not self._message_done:
            self._message_done = True  # the end of the connection is the end of this body
            self._body.feed_eof()
        elif isinstance(exc, ssl.SSLError) and not self.got_bytes and not self.reused:
            # Under TLS 1.3 a native service refusing our client certificate says so after the
            # handshake: an alert on the first read.
            self._fail(UpstreamTlsError(_tls_reason(self.key[1], self.key[2], exc, "refused")))
        elif isinstance(exc, ConnectionError) and self.key[0] == "https" and not self.got_bytes and not self.reused:
            # The same refusal when our request's write hits the closed socket before the alert is
            # read (a race under load): the connection broke right after the handshake.
            self._fail(UpstreamTlsError(
                f"TLS connection to {self.key[1]}:{self.key[2]} closed by the native service right after the "
                f"handshake, before any answer (it may require a client certificate, or refuse ours): {exc}"))
        else:
            self._fail(UpstreamClosed("upstream closed the connection" + (f": {exc}" if exc else "")))
        for waiter in (self._drain_waiter,):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: UpstreamError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        elif not self._message_done:
            self._body.set_exception(exc)

    # -- FlowControl for the response body ------------------------------------------------------

    def pause_reading(self) -> None:
        if not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.closed:
            self.transport.resume_reading()

    def on_first_read(self) -> None:
        pass

    # -- httptools callbacks --------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.translate(LOWER_ASCII), value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 200:
            self._headers = []  # 1xx interim response (100 Continue, 103 Early Hints): the real one follows
            return
        self.deadline = 0.0
        content_length: int | None = None
        chunked = False
        for name, value in self._headers:
            if name == b"content-length":
                content_length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        self._reusable = parser.should_keep_alive()
        # The response is handed over once this read is parsed (data_received): a small body has
        # usually arrived with the head by then, and needs no BodyReader.
        self._head = (status, content_length, chunked)
        self._early_chunks = []
        if self._head_only:
            # httptools cannot be told a HEAD response has no body: finish here, with a new parser
            # so a Content-Length in the head is not waited for.
            self._message_done = True
            self._parser = httptools.HttpResponseParser(self)

    def _hand_over(self) -> None:
        """Give the caller the response whose head the last read completed."""
        assert self._head is not None and self._early_chunks is not None
        status, content_length, chunked = self._head
        chunks = self._early_chunks
        self._head = self._early_chunks = None
        if self._message_done:  # the whole response is here
            if self._head_only:
                chunks.clear()
            response = UpstreamResponse(self, status, self._headers, content_length, chunked, EMPTY_BODY, chunks)
        else:
            body = BodyReader(self, self.read_timeout, _read_timeout)
            for chunk in chunks:
                body.feed(chunk)
            self._body = body
            self._until_eof = not chunked and content_length is None
            response = UpstreamResponse(self, status, self._headers, content_length, chunked, body)
        self._response = response
        waiter = self._waiter
        self._waiter = None
        if waiter is not None:
            try:
                waiter.set_result(response)
            except asyncio.InvalidStateError:  # cancelled meanwhile (cheaper than asking done() first)
                pass

    def on_body(self, body: bytes) -> None:
        chunks = self._early_chunks
        if chunks is not None:
            chunks.append(body)
        else:
            self._body.feed(body)

    def on_message_complete(self) -> None:
        if self._response is None and self._head is None:
            return  # end of a 1xx interim response
        self._message_done = True
        self._until_eof = False
        self._body.feed_eof()
        self._body = EMPTY_BODY


class UpstreamPool:
    """Keep-alive connections to upstreams, keyed by (scheme, host, port).

    ``ssl_context_factory(host, port)`` supplies the TLS context for https upstreams (called once
    per host and port, the result is cached); by default a verifying ``ssl.create_default_context()``.
    """

    def __init__(self, max_idle_per_host: int = 64, ssl_context_factory: SSLContextFactory | None = None) -> None:
        self.max_idle_per_host = max_idle_per_host
        self._ssl_context_factory = ssl_context_factory
        self._ssl_contexts: dict[tuple[str, int], ssl.SSLContext] = {}
        self._idle: dict[Key, list[_UpstreamConnection]] = {}
        self._connections: set[_UpstreamConnection] = set()
        self._host_headers: dict[Key, bytes] = {}
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # bound on first use
        # The loop's time as of the last sweep (about _SWEEP_INTERVAL old at most): read timeouts
        # are armed from it, since a deadline is only checked by the sweeps anyway.
        self.now = 0.0

    async def request(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        content_length: int | None,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> UpstreamResponse:
        """Send a request and return once the response head arrived.

        ``target`` is the request target (path and query). ``headers`` must not carry framing:
        the pool sends Content-Length for ``bytes`` bodies and for iterators with a known
        ``content_length``, chunked encoding otherwise, and adds Host when missing. A pooled
        connection that turns out stale before any response byte is retried once on a new one
        when the method is idempotent or the body was not yet sent.
        """
        if self._closed:
            raise UpstreamClosed("pool is closed")
        if self.loop is None:
            self._bind_loop()
        key: Key = (scheme, host, port) if tls is None else (scheme, host, port, tls)
        head, keep_alive = _request_head(method, target, headers, body, content_length, self, key)
        conn = self._pop_idle(key)
        fresh = conn is None
        # One coroutine for the whole exchange (no helper coroutine): every await layer costs on
        # the hot path.
        while True:
            if conn is None:
                conn = await self._connect(key, connect_timeout, tls)
            waiter = conn.begin(method == "HEAD", keep_alive, read_timeout)
            try:
                if conn.closed:
                    raise UpstreamClosed("pooled connection was closed")
                if body is None or isinstance(body, bytes):
                    # Armed before the write: no answer can come before this coroutine yields, and
                    # on_headers_complete disarms it. From the sweep's clock (no call per request),
                    # which may be one interval behind: never early, at most two intervals late.
                    conn.deadline = self.now + _SWEEP_INTERVAL + read_timeout
                    _send_bytes(conn, head, body)
                else:
                    conn.transport.write(head)
                    await _stream_body(conn, body, chunked=content_length is None)
                    if not waiter.done():  # the native service may have answered before the body's end
                        conn.deadline = self.loop.time() + read_timeout
                return await waiter
            except UpstreamClosed:
                conn.abort()
                _abandon(waiter)
                if fresh or conn.got_bytes or not _can_retry(method, body, conn):
                    raise
                conn, fresh = None, True  # a stale pooled connection: once more on a new one
            except BaseException:
                conn.abort()
                _abandon(waiter)
                raise

    async def close(self) -> None:
        """Close every idle connection; connections still in use close when their response ends."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.idle = False
                conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # -- internals ------------------------------------------------------------------------------

    async def _connect(self, key: Key, connect_timeout: float, tls: ssl.SSLContext | None) -> _UpstreamConnection:
        scheme, host, port = key[0], key[1], key[2]
        context = (tls or self._ssl_context(host, port)) if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _UpstreamConnection(self, key),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("connect") from None
        except ssl.SSLError as tls_error:
            raise UpstreamTlsError(_tls_reason(host, port, tls_error)) from tls_error
        except OSError as os_error:  # refused, DNS, unreachable
            raise UpstreamConnectError(f"cannot connect to {host}:{port}: {os_error}") from os_error
        return conn

    def _bind_loop(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        self._sweeper = self.loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        now = self.now = self.loop.time()
        for conn in list(self._connections):
            if conn.deadline and now > conn.deadline:
                conn.expire()
        if not self._closed:
            self._sweeper = self.loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def host_header(self, key: Key) -> bytes:
        """The Host header the pool sends to ``key`` when the caller's headers have none."""
        value = self._host_headers.get(key)
        if value is None:
            scheme, host, port = key[0], key[1], key[2]
            default_port = 443 if scheme == "https" else 80
            authority = host if port == default_port else f"{host}:{port}"
            value = self._host_headers[key] = authority.encode("idna")
        return value

    def idle_list(self, key: Key) -> list[_UpstreamConnection]:
        """Where the idle connections to ``key`` wait (each connection keeps it: releasing one
        needs no lookup)."""
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = []
        return idle

    def _ssl_context(self, host: str, port: int) -> ssl.SSLContext:
        context = self._ssl_contexts.get((host, port))
        if context is None:
            if self._ssl_context_factory is not None:
                context = self._ssl_context_factory(host, port)
            else:
                context = ssl.create_default_context()
            self._ssl_contexts[(host, port)] = context
        return context

    def _pop_idle(self, key: Key) -> _UpstreamConnection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            conn.idle = False
            if not conn.closed:
                return conn
        return None

    def _release(self, conn: _UpstreamConnection) -> None:
        idle = conn.idle_list
        if self._closed or len(idle) >= self.max_idle_per_host:
            conn.abort()
            return
        conn.idle = True
        idle.append(conn)

    def _forget(self, conn: _UpstreamConnection) -> None:
        conn.idle = False
        if conn in conn.idle_list:
            conn.idle_list.remove(conn)


def _abandon(waiter: asyncio.Future[UpstreamResponse]) -> None:
    """Nobody will await ``waiter`` any more (sending the request failed: the client went away
    mid-upload, say). Cancel it, or mark its exception retrieved, so that the connection's end
    does not make asyncio log "Future exception was never retrieved" for it."""
    if not waiter.done():
        waiter.cancel()
    elif not waiter.cancelled():
        waiter.exception()


def _tls_reason(host: str, port: int, exc: ssl.SSLError, outcome: str = "failed") -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS handshake with {host}:{port} failed: certificate verify failed ({exc.verify_message})"
    return f"TLS handshake with {host}:{port} {outcome}: {exc.reason or exc}"


def _can_retry(method: str, body: bytes | AsyncIterator[bytes] | None, conn: _UpstreamConnection) -> bool:
    """A stale pooled connection may be retried if resending is safe and possible."""
    if not conn.reused:
        return False
    if conn.send_state == _NOT_SENT:
        return True
    if body is not None and not isinstance(body, bytes):
        return False  # an iterator body that was (partly) consumed cannot be replayed
    return method in IDEMPOTENT_METHODS


def _request_head(
    method: str,
    target: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes | AsyncIterator[bytes] | None,
    content_length: int | None,
    pool: UpstreamPool,
    key: Key,
) -> tuple[bytes, bool]:
    """The serialized request head, and whether the caller's headers allow keep-alive."""
    # Compiled, a bytes % of bytes and ints is one native build and the shared join skips a method
    # lookup; += of a tuple would be a Python call.
    parts = [method.encode("ascii"), b" ", target.encode("latin-1"), b" HTTP/1.1\r\n"]
    has_host = False
    keep_alive = True
    for name, value in headers:
        if name in _OWN_HEADERS:
            if name == b"host":
                has_host = True
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
            else:
                continue  # framing is ours
        parts.append(b"%s: %s\r\n" % (name, value))
    if not has_host:  # the gateway always sends one
        parts.append(b"host: %s\r\n" % pool.host_header(key))
    if isinstance(body, bytes):
        parts.append(b"content-length: %d\r\n" % len(body))
    elif body is not None:
        if content_length is None:
            parts.append(b"transfer-encoding: chunked\r\n")
        else:
            parts.append(b"content-length: %d\r\n" % content_length)
    parts.append(b"\r\n")
    return JOIN_BYTES(parts), keep_alive


def _send_bytes(conn: _UpstreamConnection, head: bytes, body: bytes | None) -> None:
    transport = conn.transport
    if not body:
        transport.write(head)
    elif len(body) <= _SMALL_BODY:
        transport.write(head + body)
    else:
        transport.writelines((head, body))
    conn.send_state = _SENT


async def _stream_body(conn: _UpstreamConnection, body: AsyncIterator[bytes], chunked: bool) -> None:
    """Pipe ``body`` to the upstream, pausing while the transport's buffer is full."""
    conn.send_state = _SENDING
    transport = conn.transport
    async for chunk in body:
        if conn.closed:
            return  # the upstream gave up (maybe after an early response); the head wait tells
        if not chunk:
            continue
        if chunked:
            transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
        else:
            transport.write(chunk)
        if conn._write_paused:
            await conn.drain()
    if conn.closed:
        return
    if chunked:
        transport.write(b"0\r\n\r\n")
    conn.send_state = _SENT
