"""The agent's local HTTP endpoint (``services.core.http``): ``GET /health`` reports the link and
each provider's state as JSON (200 when every link is up, 503 otherwise); ``GET /metrics`` serves
Prometheus text when ``services.metrics.prometheus.enabled``. Basic auth when users are configured."""

from __future__ import annotations

import asyncio
import base64
import hmac
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from portico.federation.agent import Agent

_MAX_HEAD = 16 * 1024


def _authorized(head: list[bytes], users: dict[str, str]) -> bool:
    if not users:
        return True
    for line in head[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() != b"basic":
                return False
            try:
                user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            expected = users.get(user)
            return expected is not None and hmac.compare_digest(expected.encode(), password.encode())
    return False


def _response(status: int, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 431: "Too Large",
              503: "Service Unavailable"}.get(status, "Error")
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n")
    return head.encode() + body


async def serve_health(agent: Agent) -> asyncio.Server:
    users = dict(agent.config.health.users)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        head = raw.split(b"\r\n")
        parts = head[0].split(b" ")
        method, path = (parts[0], parts[1].split(b"?")[0]) if len(parts) >= 2 else (b"", b"")
        if not _authorized(head, users):
            answer = _response(401, b'{"errorDetails": "authentication required"}',
                               extra='www-authenticate: Basic realm="portico-agent"\r\n')
        elif method not in (b"GET", b"HEAD"):
            answer = _response(405, b'{"errorDetails": "only GET"}')
        elif path in (b"/health", b"/_node/health", b"/"):
            status = agent.status()
            answer = _response(200 if status["status"] == "UP" else 503, orjson.dumps(status))
        elif path in (b"/metrics", b"/_node/metrics/prometheus") and agent.config.health.prometheus:
            answer = _response(200, agent.metrics().encode(), "text/plain; version=0.0.4")
        else:
            answer = _response(404, b'{"errorDetails": "no such resource"}')
        try:
            writer.write(answer)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    h = agent.config.health
    return await asyncio.start_server(handle, h.host, h.port, limit=_MAX_HEAD)
