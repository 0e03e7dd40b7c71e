"""Helpers shared by the gateway tests: a raw HTTP/1.1 client over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import httptools


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    body_size: int
    keep_alive: bool
    chunked: bool = field(default=False)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RawClient:
    """Writes whatever bytes a test wants and parses the responses that come back, in order.

    With ``keep_body=False`` bodies are only counted (for 100 MB downloads with flat memory).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep_body: bool = True) -> None:
        self.reader = reader
        self.writer = writer
        self.keep_body = keep_body
        self._parser = httptools.HttpResponseParser(self)
        self._done: deque[RawResponse] = deque()
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._chunked = False
        self.eof = False

    @classmethod
    async def open(cls, port: int, keep_body: bool = True) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer, keep_body)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def request(self, data: bytes, timeout: float = 5.0) -> RawResponse:
        self.send(data)
        return await self.response(timeout)

    async def response(self, timeout: float = 5.0) -> RawResponse:
        """The next complete response; raises ``EOFError`` if the server closes before one."""
        async with asyncio.timeout(timeout):
            while not self._done:
                data = await self.reader.read(1 << 18)
                if not data:
                    self.eof = True
                    raise EOFError("server closed the connection")
                self._parser.feed_data(data)
        return self._done.popleft()

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server closes the connection (any unread data is dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(1 << 16):
                    pass
        except (TimeoutError, ConnectionError):
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers, self._body, self._size, self._chunked = [], [], 0, False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self.keep_body:
            self._body.append(body)

    def on_message_complete(self) -> None:
        response = RawResponse(
            self._parser.get_status_code(),
            self._headers,
            b"".join(self._body),
            self._size,
            self._parser.should_keep_alive(),
            self._chunked,
        )
        self._done.append(response)


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    """A bodiless request's bytes."""
    lines = [f"GET {path} HTTP/{version}", "host: test", *headers, "", ""]
    return "\r\n".join(lines).encode()


def post(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: test", f"content-length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body


def chunked(*parts: bytes) -> bytes:
    """``parts`` in chunked transfer coding, with the last-chunk marker."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
