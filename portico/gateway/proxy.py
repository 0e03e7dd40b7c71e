"""Forwarding one request to the native service and streaming the answer back."""

from __future__ import annotations

from portico.gateway.exchange import Exchange, RouteTarget
from portico.gateway.http import ResponseWriter
from portico.gateway.upstream import UpstreamPool, UpstreamResponse

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the gateway sets itself.
_DROP_REQUEST = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
     b"te", b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect"}
)
_DROP_RESPONSE = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"te", b"trailer",
     b"transfer-encoding", b"upgrade", b"content-length"}
)


def upstream_headers(ex: Exchange, route: RouteTarget) -> list[tuple[bytes, bytes]]:
    req = ex.request
    headers = [(n, v) for n, v in req.headers if n not in _DROP_REQUEST and n != b"x-forwarded-for"]
    default_port = 443 if route.scheme == "https" else 80
    host = route.host if route.port == default_port else f"{route.host}:{route.port}"
    headers.append((b"host", host.encode("latin-1")))
    prior = req.header(b"x-forwarded-for")
    client = req.client_ip.encode("latin-1")
    headers.append((b"x-forwarded-for", prior + b", " + client if prior else client))
    headers.append((b"x-forwarded-proto", req.scheme.encode("latin-1")))
    original_host = req.header(b"host")
    if original_host is not None:
        headers.append((b"x-forwarded-host", original_host))
    return headers


async def call_upstream(pool: UpstreamPool, ex: Exchange, route: RouteTarget) -> UpstreamResponse:
    req = ex.request
    has_body = req.body.has_body
    return await pool.request(
        route.method,
        route.scheme,
        route.host,
        route.port,
        route.target,
        upstream_headers(ex, route),
        req.body if has_body else None,
        req.content_length if has_body else 0,
        route.connect_timeout,
        route.read_timeout,
    )


async def relay_response(up: UpstreamResponse, resp: ResponseWriter, head_only: bool) -> int:
    """Stream the native response to the client; returns the body bytes relayed."""
    headers = [(n, v) for n, v in up.headers if n not in _DROP_RESPONSE]
    length = up.content_length
    if head_only or up.status in (204, 304):
        # The server knows a HEAD answer carries no body; the length still describes the resource.
        await resp.start(up.status, headers, length if head_only else 0)
        await resp.end()
        await up.aclose()
        return 0
    if length is not None and length <= 65536:
        body = await up.read_all(length)
        await resp.respond(up.status, headers, body)
        return len(body)
    await resp.start(up.status, headers, length)
    sent = 0
    async for chunk in up:
        sent += len(chunk)
        await resp.write(chunk)
    await resp.end()
    return sent
