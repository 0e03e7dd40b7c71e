"""A real native service on a loopback port (stdlib ThreadingHTTPServer).

Paths: ``/echo...`` answers a JSON description of the request; ``/status/N``
answers status N; ``/slow/S`` sleeps S seconds first; ``/cut`` announces a body
and closes half-way; ``/bytes/N`` streams N bytes; ``/reflect`` answers the
request's own body and content type."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _sink(self) -> int:
        """Read and drop the body, counting it: large uploads without holding them."""
        remaining = int(self.headers.get("Content-Length") or 0)
        total = 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            total += len(chunk)
            remaining -= len(chunk)
        return total

    def _dispatch(self) -> None:
        path = self.path
        if path.startswith("/sink"):
            self._send(200, json.dumps({"received": self._sink()}).encode())
            return
        body = self._body()
        if path.startswith("/status/"):
            code = int(path.split("/")[2].split("?")[0])
            self._send(code, json.dumps({"status": code}).encode())
        elif path.startswith("/slow/"):
            time.sleep(float(path.split("/")[2]))
            self._send(200, b'{"slow":true}')
        elif path.startswith("/cut"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
        elif path.startswith("/reflect"):  # answers the request body with the request's content type
            self._send(200, body, self.headers.get("Content-Type") or "text/plain")
        elif path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"a" * 65536
            while n > 0:
                self.wfile.write(chunk[: min(n, len(chunk))])
                n -= len(chunk)
        else:
            info = {
                "method": self.command,
                "path": path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_length": len(body),
                "body": body[:2000].decode("latin-1"),
            }
            self._send(200, json.dumps(info).encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are part of the tests


class Upstream:
    def __init__(self, server: ThreadingHTTPServer, scheme: str = "http") -> None:
        self.server = server
        self.port = server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"


@contextmanager
def running_upstream(tls: ssl.SSLContext | None = None) -> Iterator[Upstream]:
    """With ``tls`` (a server context) the upstream speaks HTTPS; each handshake happens in the
    connection's own thread, so a failing one does not hold up the others."""
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Upstream(server, "https" if tls is not None else "http")
    finally:
        server.shutdown()
        server.server_close()


def spec_for(url: str, title: str = "Echo", version: str = "1.0") -> dict[str, Any]:
    """An OpenAPI 3 document whose server is ``url`` and whose paths the upstream serves."""
    ok = {"200": {"description": "ok"}}
    pid = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "servers": [{"url": url}],
        "paths": {
            "/echo": {"get": {"responses": ok}, "post": {"responses": ok}, "put": {"responses": ok}},
            "/echo/{id}": {"get": {"parameters": pid, "responses": ok}, "delete": {"parameters": pid, "responses": ok}},
            "/status/{id}": {"get": {"parameters": pid, "responses": ok}},
            "/slow/{id}": {"get": {"parameters": pid, "responses": ok}},
            "/cut": {"get": {"responses": ok}},
            "/sink": {"post": {"responses": ok}},
            "/bytes/{id}": {"get": {"parameters": pid, "responses": ok}},
        },
    }
