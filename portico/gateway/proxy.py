"""Forwarding one request to the native service and sending the answer back."""

from __future__ import annotations

from portico.gateway.exchange import BufferedResponse, Exchange, RouteTarget
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

# Set by the gateway from what it saw; a client's own values would let it claim another origin.
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})


def upstream_headers(ex: Exchange, route: RouteTarget) -> list[tuple[bytes, bytes]]:
    req = ex.request
    drop = _DROP_REQUEST
    connection = req.header(b"connection")
    if connection is not None and connection.lower() not in (b"keep-alive", b"close"):
        # Headers the client named in Connection are hop-by-hop too (RFC 9110 7.6.1).
        drop = drop | {t.strip().lower() for t in connection.split(b",")}
    headers = [(n, v) for n, v in ex.headers if n not in drop and n not in _FORWARDED]
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
    if ex.body is not None:  # a policy buffered (and maybe changed) the body
        body: object = ex.body
        length: int | None = len(ex.body)
    elif req.body.has_body:
        body, length = req.body, req.content_length
    else:
        body, length = None, 0
    return await pool.request(
        route.method,
        route.scheme,
        route.host,
        route.port,
        route.target,
        upstream_headers(ex, route),
        body,  # type: ignore[arg-type]
        length,
        route.connect_timeout,
        route.read_timeout,
    )


def _response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in headers if n not in _DROP_RESPONSE]


async def relay_buffered(response: BufferedResponse, resp: ResponseWriter, method: str) -> int:
    headers = _response_headers(response.headers)
    if method == "HEAD":
        await resp.start(response.status, headers, len(response.body))
        await resp.end()
        return 0
    await resp.respond(response.status, headers, response.body)
    return len(response.body)


async def relay_response(up: UpstreamResponse, resp: ResponseWriter, head_only: bool) -> int:
    """Stream the native response to the client; returns the body bytes relayed."""
    headers = _response_headers(up.headers)
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
