"""The request and response types a gateway handler sees.

A handler is ``async def handler(request: Request, response: ResponseWriter) -> None``. It reads the
request body (if it wants it) through ``request.body`` and answers through exactly one of
``response.respond(...)`` or ``response.start(...)`` / ``write(...)`` / ``end()``.

Everything here sits on the per-request path: classes use ``__slots__`` and do no work the handler
did not ask for.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, Protocol

from portico.gateway.disconnect import ClientDisconnected

if TYPE_CHECKING:
    from portico.gateway.client_certs import TlsPeer

__all__ = [
    "EMPTY_BODY",
    "JOIN_BYTES",
    "LOWER_ASCII",
    "BodyReader",
    "BodyTooLarge",
    "ClientDisconnected",
    "FlowControl",
    "Request",
    "ResponseWriter",
]

# Header names are lowercased with ``name.translate(LOWER_ASCII)``: compiled, ``bytes.translate`` is
# a native operation and ``bytes.lower`` a Python method call (about ten times the cost).
LOWER_ASCII: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")

# Heads are joined with this bound method: compiled, ``b"".join(parts)`` looks the method up and
# calls it by name on every use (Python 3.11 has no C API for it).
JOIN_BYTES: Final = b"".join

# Reading from the socket pauses once this much body is buffered and resumes below the low mark,
# so a slow consumer holds at most ~256 KiB (plus one socket read) per body in memory.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class BodyTooLarge(Exception):
    """``read_all(limit)`` saw more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


class FlowControl(Protocol):
    """What a ``BodyReader`` needs from the connection that feeds it."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def on_first_read(self) -> None:
        """Called when the consumer first asks for data (the server answers ``100 Continue`` here)."""


class BodyReader:
    """Body chunks as they arrive; an async iterator of ``bytes`` that yields nothing for no body.

    The connection calls ``feed``/``feed_eof``/``set_exception``; the consumer iterates or calls
    ``read_all``. Each body can be consumed once. When a ``timeout`` is given, waiting longer than
    that for the next chunk raises ``timeout_error()``.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_discarding",
        "_eof",
        "_exc",
        "_flow",
        "_paused",
        "_read_started",
        "_timeout",
        "_timeout_error",
        "_waiter",
        "received",
    )

    def __init__(
        self,
        flow: FlowControl | None,
        timeout: float | None = None,
        timeout_error: Callable[[], BaseException] | None = None,
    ) -> None:
        self._flow = flow
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = flow is None
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._read_started = False
        self._discarding = False
        self._timeout = timeout
        self._timeout_error = timeout_error
        self.received = 0  # body bytes fed so far, for limits and for diagnostics

    # -- consumer side --------------------------------------------------------------------------

    @property
    def has_body(self) -> bool:
        """False when the message has no body at all (no Content-Length > 0, not chunked)."""
        return self._flow is not None

    @property
    def complete(self) -> bool:
        """True once the whole body has been received (not necessarily consumed)."""
        return self._eof

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return self._buffered

    def __aiter__(self) -> BodyReader:
        return self

    async def __anext__(self) -> bytes:
        while True:
            chunks = self._chunks
            if chunks:
                chunk = chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= LOW_WATER:
                    self._paused = False
                    self._flow.resume_reading()  # type: ignore[union-attr]
                return chunk
            if self._exc is not None:
                raise self._exc
            if self._eof:
                raise StopAsyncIteration
            await self._wait()

    async def read_all(self, limit: int) -> bytes:
        """The whole body; raises ``BodyTooLarge`` as soon as more than ``limit`` bytes arrived."""
        if self._eof and self._exc is None:
            # Fast path: the body is already all here (small requests arrive in one read).
            if self._buffered > limit:
                raise BodyTooLarge(limit)
            return self.take_all()
        parts: list[bytes] = []
        size = 0
        async for chunk in self:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            parts.append(chunk)
        return b"".join(parts)

    def take_all(self) -> bytes:
        """Everything buffered, at once (no waiting): for callers that checked ``complete``."""
        chunks = self._chunks
        if len(chunks) == 1:
            data = chunks[0]
        else:
            data = b"".join(chunks)
        chunks.clear()
        self._buffered = 0
        return data

    async def _wait(self) -> None:
        if not self._read_started:
            self._read_started = True
            if self._flow is not None:
                self._flow.on_first_read()
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None
        if self._timeout is not None:
            timer = loop.call_later(self._timeout, self._expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            error = self._timeout_error() if self._timeout_error else TimeoutError("body read timed out")
            waiter.set_exception(error)

    # -- producer side (the connection) ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append a chunk; pauses the connection's reading above the high-water mark."""
        self.received += len(data)
        if self._discarding:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self._flow.pause_reading()  # type: ignore[union-attr]
        waiter = self._waiter  # inlined _wake(): this runs for every chunk
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed_eof(self) -> None:
        self._eof = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        """Fail pending and future reads with ``exc`` unless the body was already complete."""
        if not self._eof:
            self._exc = exc
            self._wake()

    def discard(self) -> None:
        """Drop what is buffered and whatever still arrives; resumes reading if it was paused."""
        self._discarding = True
        self._chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._flow.resume_reading()  # type: ignore[union-attr]

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


# The reader of every request without a body: immutable in practice, since nothing ever feeds it.
EMPTY_BODY: Final = BodyReader(None)


class Request:
    """One parsed HTTP request head plus its body stream.

    ``path`` is the raw, still percent-encoded path without the query; ``query`` is the raw query
    string without ``?``. Header names are lower-cased and kept in arrival order.
    """

    __slots__ = (
        "body",
        "chunked",
        "client_ip",
        "client_port",
        "content_length",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query",
        "scheme",
        "tls",
    )
    # Declared here as well as set in __init__: mypy, checking the import cycle in another order
    # (as mypyc does, see setup.py), would not know the types where other modules use them.
    method: str
    path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    client_ip: str
    client_port: int
    # HTTPS listeners only: the connection's TLS side. Left unset on plain HTTP (no cost per
    # request there): read it with getattr(request, "tls", None).
    tls: TlsPeer | None

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[bytes, bytes]],
        client_ip: str,
        client_port: int,
        http_version: str,
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        body: BodyReader,
        scheme: str = "http",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.client_ip = client_ip
        self.client_port = client_port
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.body = body
        self.scheme = scheme

    def header(self, name: bytes) -> bytes | None:
        """The value of the first header called ``name`` (give it lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}{'?' if self.query else ''}{self.query}>"


class ResponseWriter(ABC):
    """How a handler answers; implemented by the server.

    Framing headers (Content-Length, Transfer-Encoding, Connection) belong to the writer: pass the
    length as ``content_length`` and leave them out of ``headers``. Use either ``respond`` once, or
    ``start`` then any number of ``write`` then ``end``. Writes raise ``ClientDisconnected`` once
    the client is gone.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def started(self) -> bool:
        """True once the status line and headers were handed to the transport."""

    @abstractmethod
    async def start(self, status: int, headers: list[tuple[bytes, bytes]], content_length: int | None) -> None:
        """Send the head. ``content_length=None`` streams the body: chunked for HTTP/1.1 clients,
        delimited by closing the connection for HTTP/1.0 ones."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Send a body chunk; waits while the transport's buffer is above its high-water mark."""

    @abstractmethod
    async def end(self) -> None:
        """Finish the body. Ending short of the announced Content-Length aborts the connection."""

    @abstractmethod
    async def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Send a whole response (head and body) in one transport write."""

    def send(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Awaitable[None] | None:
        """``respond`` without a coroutine where the writer can: None once the response is handed to
        the transport, else an awaitable to await (the transport's buffer is full, or this writer has
        no quicker way than ``respond``)."""
        return self.respond(status, headers, body)

    @abstractmethod
    async def wait_disconnected(self) -> None:
        """Return once the client connection is lost (never, if it stays up)."""
