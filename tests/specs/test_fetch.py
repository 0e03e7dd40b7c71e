"""fetch_spec against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portico.specs import SpecError, fetch_spec

SPEC = b'{"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}}'


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        route = {
            "/spec.json": self._spec,
            "/big": self._big,
            "/big-unannounced": self._big_unannounced,
            "/slow": self._slow,
            "/trickle": self._trickle,
            "/redirect": lambda: self._redirect("/spec.json"),
            "/redirect-ftp": lambda: self._redirect("ftp://127.0.0.1/spec.json"),
            "/accepted": lambda: self._send(202, b"later"),
            "/no-content": lambda: self._send(204, b""),
        }.get(self.path)
        if route is None:
            self._send(404, b"nope")
        else:
            route()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up first (timeout tests)

    def _spec(self) -> None:
        self._send(200, SPEC)

    def _big(self) -> None:
        self._send(200, b"x" * 5000)

    def _big_unannounced(self) -> None:
        # No Content-Length: the client only learns the size while reading.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"y" * 1000)
        except OSError:
            pass  # the client stopped reading, as it should

    def _slow(self) -> None:
        time.sleep(1.5)
        self._send(200, SPEC)

    def _trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_fetches_the_body(base_url: str) -> None:
    assert await fetch_spec(f"{base_url}/spec.json") == SPEC


async def test_follows_http_redirects(base_url: str) -> None:
    assert await fetch_spec(f"{base_url}/redirect") == SPEC


async def test_refuses_redirects_to_other_schemes(base_url: str) -> None:
    with pytest.raises(SpecError, match=r"redirected to unsupported URL 'ftp://127\.0\.0\.1/spec\.json'"):
        await fetch_spec(f"{base_url}/redirect-ftp")


async def test_not_found_names_url_and_status(base_url: str) -> None:
    with pytest.raises(SpecError) as info:
        await fetch_spec(f"{base_url}/missing")
    assert str(info.value) == f"cannot fetch {base_url}/missing: HTTP status 404 Not Found"


@pytest.mark.parametrize(("path", "body"), [("/accepted", b"later"), ("/no-content", b"")])
async def test_other_2xx_statuses_are_accepted(base_url: str, path: str, body: bytes) -> None:
    assert await fetch_spec(f"{base_url}{path}") == body


async def test_declared_oversized_body_is_rejected(base_url: str) -> None:
    with pytest.raises(SpecError, match=r"/big: the document is larger than 1000 bytes"):
        await fetch_spec(f"{base_url}/big", max_bytes=1000)


async def test_undeclared_oversized_body_stops_reading(base_url: str) -> None:
    with pytest.raises(SpecError, match=r"/big-unannounced: the document is larger than 2500 bytes"):
        await fetch_spec(f"{base_url}/big-unannounced", max_bytes=2500)


async def test_body_at_the_limit_is_fine(base_url: str) -> None:
    assert len(await fetch_spec(f"{base_url}/big", max_bytes=5000)) == 5000


async def test_slow_server_times_out(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(
        SpecError, match=r"^cannot fetch http://127\.0\.0\.1:\d+/slow: timed out after 0\.3 s$"
    ):
        await fetch_spec(f"{base_url}/slow", timeout=0.3)
    assert time.monotonic() - started < 1.4


async def test_trickling_server_hits_the_overall_deadline(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(SpecError, match=r"timed out after 0\.5 s"):
        await fetch_spec(f"{base_url}/trickle", timeout=0.5)
    assert time.monotonic() - started < 2.0


async def test_connection_refused_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SpecError, match=rf"^cannot fetch http://127\.0\.0\.1:{port}/x: .*refused"):
        await fetch_spec(f"http://127.0.0.1:{port}/x", timeout=2)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.json", "example.com/a.json", "http://"]
)
async def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(SpecError, match="is not an http or https URL"):
        await fetch_spec(url)


async def test_malformed_port_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"^cannot fetch http://127\.0\.0\.1:99999/"):
        await fetch_spec("http://127.0.0.1:99999/", timeout=1)
