"""Forwarding one request to the native service and sending the answer back."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Final

from portico.gateway.exchange import BufferedResponse, Exchange, RouteTarget, authority
from portico.gateway.http import ResponseWriter
from portico.gateway.upstream import UpstreamPool, UpstreamResponse

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the gateway sets itself.
_DROP_REQUEST: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization",
     b"te", b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length", b"expect"}
)
_DROP_RESPONSE: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"te", b"trailer",
     b"transfer-encoding", b"upgrade", b"content-length"}
)

# Set by the gateway from what it saw; a client's own values would let it claim another origin.
_FORWARDED: Final = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})


# Request headers the loop below looks at: everything else is forwarded as it is.
_SPECIAL_REQUEST: Final = _DROP_REQUEST | _FORWARDED
_HOST_HEADERS: Final[dict[tuple[str, str, int], bytes]] = {}


def _host_header(route: RouteTarget) -> bytes:
    if route.host_header:  # a fixed endpoint's, worked out once
        return route.host_header
    key = (route.scheme, route.host, route.port)
    value = _HOST_HEADERS.get(key)
    if value is None:
        if len(_HOST_HEADERS) > 10_000:  # endpoints built from request data must not grow it forever
            _HOST_HEADERS.clear()
        value = _HOST_HEADERS[key] = authority(route.scheme, route.host, route.port)
    return value


def upstream_headers(ex: Exchange, route: RouteTarget) -> list[tuple[bytes, bytes]]:
    """The headers sent to the native service: the exchange's, less hop-by-hop ones, plus Host and
    X-Forwarded-*. One pass over the headers (this runs for every request)."""
    req = ex.request
    connection = prior = original_host = None
    headers: list[tuple[bytes, bytes]] = []
    special = _SPECIAL_REQUEST
    for item in req.headers:
        name = item[0]
        if name not in special:
            headers.append(item)  # compiled: a native append (a bound method in a local would be a call)
        elif name == b"connection":
            if connection is None:
                connection = item[1]
        elif name == b"x-forwarded-for":
            if prior is None:
                prior = item[1]
        elif name == b"host":
            if original_host is None:
                original_host = item[1]
    if ex.headers is not req.headers:  # a policy changed them: forward its version
        headers = [item for item in ex.headers if item[0] not in special]
    if connection is not None and connection.lower() not in (b"keep-alive", b"close"):
        # Headers the client named in Connection are hop-by-hop too (RFC 9110 7.6.1).
        named = {t.strip().lower() for t in connection.split(b",")}
        headers = [item for item in headers if item[0] not in named]
    client = req.client_ip.encode("latin-1")
    headers.append((b"host", _host_header(route)))
    headers.append((b"x-forwarded-for", prior + b", " + client if prior else client))
    headers.append((b"x-forwarded-proto", b"https" if req.scheme == "https" else b"http"))
    if original_host is not None:
        headers.append((b"x-forwarded-host", original_host))
    return headers


def call_upstream(pool: UpstreamPool, ex: Exchange, route: RouteTarget) -> Awaitable[UpstreamResponse]:
    """The native call (a plain function returning the pool's coroutine: one await layer less)."""
    req = ex.request
    if ex.body is not None:  # a policy buffered (and maybe changed) the body
        body: object = ex.body
        length: int | None = len(ex.body)
    elif req.body.has_body:
        body, length = req.body, req.content_length
    else:
        body, length = None, 0
    return pool.request(
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
        route.tls,
    )


def _response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [item for item in headers if item[0] not in _DROP_RESPONSE]  # the pairs as they are: no new tuples


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
        body = up.whole_body()
        if body is None:
            body = await up.read_all(length)
        waiting = resp.send(up.status, headers, body)  # no coroutine for the common small answer
        if waiting is not None:
            await waiting
        return len(body)
    await resp.start(up.status, headers, length)
    sent = 0
    async for chunk in up:
        sent += len(chunk)
        await resp.write(chunk)
    await resp.end()
    return sent
