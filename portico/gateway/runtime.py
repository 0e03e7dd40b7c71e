"""The data plane's request handler: resolve the API, run the policy phases, proxy, record.

One request's path through this module:
``handle`` -> ``_resolve`` (API + version + resource) -> ``_request_phase`` (transport, IAM,
request processing, routing, LMT handlers' ``run``) -> ``_forward`` (native call; the answer is
streamed, or buffered when a response policy needs the body, then ``on_response``) ->
on failure ``_send_fault`` (``on_fault`` handlers, then the error template) -> ``_finish``
(``on_complete`` handlers, transaction event; never blocks)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

from portico.events.calls import CallQueue, loggable_headers, query_dict
from portico.events.model import TransactionEvent
from portico.gateway.errors import render_template, send_error
from portico.gateway.exchange import EVENT_HOOKS, BufferedResponse, Exchange, Fault, RouteTarget
from portico.gateway.http import BodyTooLarge, ClientDisconnected, Request, ResponseWriter
from portico.gateway.parts.federated import FEDERATED_APIS
from portico.gateway.parts.ip_deny import EXTRAS as _IP_DENY_EXTRAS
from portico.gateway.parts.ip_deny import counts_as_failure
from portico.gateway.proxy import call_upstream, relay_buffered, relay_response
from portico.gateway.snapshot import CompiledApi, Snapshot
from portico.gateway.tls import TLS_FAILURE, note_tls_failure
from portico.gateway.upstream import (
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamTlsError,
)
from portico.ids import fast_id
from portico.policies.base import Violation
from portico.policies.cors import preflight as cors_preflight
from portico.policies.straight_through_routing import StraightThroughRouting, StraightThroughRoutingConfig

if TYPE_CHECKING:
    from portico.events.recorder import EventRecorder

log = logging.getLogger("portico.gateway")

_PREFIX_LEN: Final = len("/gateway/")
# Final: compiled, a C static each; an imported or plain module-level name is a dict lookup per use.
IP_DENY: Final = _IP_DENY_EXTRAS
perf_counter: Final = time.perf_counter
wall_clock: Final = time.time
MAX_BUFFERED_BODY = 32 * 1024 * 1024


class Failure(Exception):
    """A request the gateway answers itself (no native answer relayed), with a stable key."""

    def __init__(
        self, status: int, key: str, message: str, native: BufferedResponse | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status, self.key, self.message, self.native = status, key, message, native
        self.headers = headers  # e.g. WWW-Authenticate of a 401
        self.api: CompiledApi | None = None  # the API, when known before the exchange exists


class Gateway:
    """Holds the current snapshot; ``handle`` is called by the HTTP server for /gateway/ paths."""

    def __init__(self, snapshot: Snapshot, pool: UpstreamPool, events: EventRecorder | None) -> None:
        self.snapshot = snapshot
        self.pool = pool
        self.events = events
        # The recorder's compiled queue, held here so that a call's record is one native call.
        self._calls: CallQueue | None = events.calls if events is not None else None
        self._fallback_routes: dict[str, StraightThroughRouting] = {}

    def swap(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._fallback_routes = {}

    async def handle(self, req: Request, resp: ResponseWriter) -> None:
        started = perf_counter()
        snap = self.snapshot
        client_ip = self._client_ip(req, snap)
        api: CompiledApi | None = None
        ex: Exchange | None = None
        status, provider_ms, sent = 500, 0.0, 0
        failure_key = ""
        ip_guard = snap.extras.get(IP_DENY)  # parts/ip_deny.py: only while the setting is enabled
        try:
            if ip_guard is not None and (refusal := await ip_guard.refusal(client_ip)) is not None:
                raise Failure(403, "IP_DENIED", refusal)
            api, resource_path = self._resolve(req, snap)
            ex = Exchange(req, snap, api, resource_path, client_ip, started, fast_id())
            violation = await self._request_phase(ex)
            if violation is not None:
                raise Failure(violation.status, violation.key, violation.message, headers=violation.headers)
            status, provider_ms, sent = await self._forward(ex, resp)
        except Failure as f:
            status, failure_key = f.status, f.key
            if ip_guard is not None and counts_as_failure(f.status, f.key):
                await ip_guard.failed(client_ip)
            if not resp.started:
                status, sent = await self._send_fault(resp, snap, f, api, req, ex, client_ip)
        except ClientDisconnected:
            status, failure_key = 499, "CLIENT_DISCONNECTED"
        except asyncio.CancelledError:
            # The server cancels a request only at shutdown, past its grace period, after
            # answering 503 (or cutting an answer under way): say so in the event.
            status, failure_key = 503, "GATEWAY_SHUTDOWN"
            raise
        finally:
            if ex is not None and ex.plan.complete:
                self._complete(ex, status)
            if api is not None and self.events is not None:
                self._record(ex, api, req, client_ip, status, failure_key, started, provider_ms, sent)

    # -- resolution ------------------------------------------------------------------------------

    @staticmethod
    def _client_ip(req: Request, snap: Snapshot) -> str:
        if not snap.settings.ignore_x_forwarded_for:
            xff = req.header(b"x-forwarded-for")
            if xff:
                return xff.split(b",", 1)[0].strip().decode("latin-1")
        return req.client_ip

    @staticmethod
    def _resolve(req: Request, snap: Snapshot) -> tuple[CompiledApi, str]:
        rest = req.path[_PREFIX_LEN:]
        name_raw, _, rest = rest.partition("/")
        versions = snap.apis.get(_unquote(name_raw))
        if versions is None or not versions.ordered:
            raise Failure(404, "API_NOT_FOUND", f"No API named {_unquote(name_raw)!r} is deployed")
        version_raw, slash, tail = rest.partition("/")
        if not version_raw and slash:  # /gateway/Name//x: no version given
            rest = tail
        api = versions.by_version.get(_unquote(version_raw))
        if api is None:
            # No known version in the URL: the whole rest is the resource path.
            api = versions.ordered[0] if snap.settings.default_to_oldest_version else versions.ordered[-1]
            resource_path = "/" + rest
        else:
            resource_path = "/" + tail if slash else "/"
        if not api.active:
            failure = Failure(404, "API_NOT_ACTIVE", f"The API {api.name} {api.version} is not active")
            federated = snap.extras.get(FEDERATED_APIS, {}).get(api.id)  # parts/federated.py
            if federated is not None:
                failure = Failure(404, "API_FEDERATED", f"The API {api.name} {api.version} is not served by "
                                  f"Portico: it is federated and lives at {federated}")
            failure.api = api
            raise failure
        return api, resource_path

    @staticmethod
    def _match_resource(ex: Exchange) -> None:
        settings = ex.snapshot.settings
        path = decode_path(ex.resource_path, settings.decode_all_delimiters)
        match = ex.api.router.match(path, strict=settings.strict_resource_matching)
        if match is None:
            raise Failure(404, "RESOURCE_NOT_FOUND", f"No resource matches {ex.resource_path}")
        method = ex.request.method
        if method == "OPTIONS" and (answer := cors_preflight(ex, match.resource.methods)) is not None:
            ex.resource, ex.path_params, ex.response = match.resource.template, match.params, answer
            return
        if method not in match.resource.methods and not (method == "HEAD" and "GET" in match.resource.methods):
            raise Failure(405, "METHOD_NOT_ALLOWED", f"Method {method} is not defined for {match.resource.template}")
        ex.resource = match.resource.template
        ex.path_params = match.params
        if ex.api.scoped_plans:
            ex.plan = ex.api.scoped_plans.get((ex.resource, method), ex.plan)

    # -- request phase ---------------------------------------------------------------------------

    async def _request_phase(self, ex: Exchange) -> Violation | None:
        self._match_resource(ex)
        if ex.response is not None:  # a CORS preflight, answered before any policy runs
            return None
        for step, needs_body in ex.plan.request_steps:
            if needs_body and ex.body is None:
                await self._buffer_request_body(ex)
            # A step returns None, a Violation, or an awaitable of either (no wrapper coroutine:
            # this runs for every handler of every request).
            result = step(ex)
            if result is None:
                continue
            violation = result if isinstance(result, Violation) else await result
            if violation is not None:
                return violation
        if ex.route is None and ex.response is None:  # a mocked API answers without a route
            self._default_route(ex)
        return None

    @staticmethod
    async def _buffer_request_body(ex: Exchange) -> None:
        body = ex.request.body
        if not body.has_body:
            ex.body = b""
            return
        try:
            ex.body = await body.read_all(MAX_BUFFERED_BODY)
        except BodyTooLarge:
            message = f"The request body is larger than {MAX_BUFFERED_BODY} bytes"
            raise Failure(413, "PAYLOAD_TOO_LARGE", message) from None
        except TimeoutError:
            raise Failure(408, "REQUEST_BODY_TIMEOUT", "The client stopped sending the request body") from None

    def _default_route(self, ex: Exchange) -> None:
        """An API without a routing action goes straight to its native endpoint."""
        endpoint = ex.api.native_endpoint
        if not endpoint:
            raise Failure(502, "NO_ROUTE", "The API has no native endpoint to route to")
        handler = self._fallback_routes.get(endpoint)
        if handler is None:
            base = endpoint.rstrip("/") + "/${sys:resource_path}"
            handler = StraightThroughRouting(StraightThroughRoutingConfig(endpointUri=base))
            self._fallback_routes[endpoint] = handler
        handler.request_step()(ex)

    # -- native call and response phase ----------------------------------------------------------

    async def _call_with_failover(self, ex: Exchange, route: RouteTarget) -> UpstreamResponse:
        """Load-balanced routing: try ``route``, then its fallbacks in order, on downtime errors
        (connect failures, timeouts) or, with ``failover_on_fault``, also on 5xx answers and broken
        connections. Nothing has reached the client yet; the request body is buffered (replayable)."""
        candidates = (route, *route.fallbacks)
        last = ""
        for i, candidate in enumerate(candidates):
            ex.route = candidate
            try:
                up = await self._call_one(ex, candidate)
            except Failure as f:
                downtime = f.key in ("NATIVE_TIMEOUT", "NATIVE_UNAVAILABLE")
                if not (downtime or (route.failover_on_fault and f.key == "NATIVE_PROTOCOL_ERROR")):
                    raise
                last = f.message
                continue
            if route.failover_on_fault and up.status >= 500 and i < len(candidates) - 1:
                await up.aclose()
                last = f"{candidate.url} answered {up.status}"
                continue
            return up
        raise Failure(503, "ALL_ENDPOINTS_DOWN", f"None of the {len(candidates)} endpoints answered; last: {last}")

    async def _call_one(self, ex: Exchange, route: RouteTarget) -> UpstreamResponse:
        try:
            return await call_upstream(self.pool, ex, route)
        except (UpstreamError, TimeoutError) as exc:
            raise _native_failure(ex, exc) from None

    async def _forward(self, ex: Exchange, resp: ResponseWriter) -> tuple[int, float, int]:
        if ex.response is not None:  # answered by a policy (serviceResultCache) without the native call
            await self._response_phase(ex)
            return ex.response.status, 0.0, await relay_buffered(ex.response, resp, ex.request.method)
        route = ex.route
        assert route is not None
        t0 = perf_counter()
        try:
            # The pool's coroutine awaited here, not through _call_one: an await layer less per call.
            up = await (self._call_with_failover(ex, route) if route.fallbacks else call_upstream(self.pool, ex, route))
        except (UpstreamError, TimeoutError) as exc:  # _call_with_failover raises Failures only
            raise _native_failure(ex, exc) from None
        provider_ms = (perf_counter() - t0) * 1000
        plan = ex.plan
        fault = up.status >= 400 and not ex.snapshot.settings.send_native_provider_fault
        if fault or plan.needs_response_body:
            buffered = await self._buffer_response(up)
            if fault:
                raise Failure(up.status, "NATIVE_FAULT", f"The native service answered {up.status} {up.reason}",
                              native=buffered)
            ex.response = buffered
            await self._response_phase(ex)
            return ex.response.status, provider_ms, await relay_buffered(ex.response, resp, ex.request.method)
        try:
            if plan.response:
                ex.response = BufferedResponse(up.status, list(up.headers), b"", up.reason)
                await self._response_phase(ex)
                up.headers = ex.response.headers
            sent = await relay_response(up, resp, ex.request.method == "HEAD")
        except (UpstreamTimeout, UpstreamClosed) as exc:
            # Mid-body failure: the head is out, so the only honest signal left is to cut the connection.
            log.warning("native response of %s broke off: %s", ex.api.name, exc)
            await up.aclose()
            raise Failure(502, "NATIVE_BODY_BROKEN", str(exc)) from None
        except BaseException:
            # The client went away mid-body, a response policy refused the answer, or shutdown
            # cancelled the request: the rest of the native body is never read, so close its
            # connection (a half-read one would sit paused, outside the pool, for as long as the
            # native service keeps it open).
            await up.aclose()
            raise
        return up.status, provider_ms, sent

    @staticmethod
    async def _buffer_response(up: UpstreamResponse) -> BufferedResponse:
        try:
            body = await up.read_all(MAX_BUFFERED_BODY)
        except (UpstreamTimeout, UpstreamClosed) as exc:
            await up.aclose()
            raise Failure(502, "NATIVE_BODY_BROKEN", str(exc)) from None
        except BodyTooLarge:
            await up.aclose()
            raise Failure(502, "NATIVE_BODY_TOO_LARGE", "The native response is too large to process") from None
        return BufferedResponse(up.status, list(up.headers), body, up.reason)

    @staticmethod
    async def _response_phase(ex: Exchange) -> None:
        for handler in ex.plan.response:
            result = handler.on_response(ex)
            if result is None:
                continue
            violation = result if isinstance(result, Violation) else await result
            if violation is not None:
                raise Failure(violation.status, violation.key, violation.message)

    # -- faults and completion -------------------------------------------------------------------

    async def _send_fault(
        self,
        resp: ResponseWriter,
        snap: Snapshot,
        f: Failure,
        api: CompiledApi | None,
        req: Request,
        ex: Exchange | None,
        client_ip: str,
    ) -> tuple[int, int]:
        fault = Fault(f.status, f.key, f.message, headers=list(f.headers), native=f.native)
        if ex is not None:
            ex.fault = fault
            for handler in ex.plan.fault:
                result = handler.on_fault(ex, fault)
                if result is not None:
                    await result
        if fault.body is not None:
            await resp.respond(fault.status, fault.headers, fault.body)
            return fault.status, len(fault.body)
        text = render_template(
            snap.settings.error_template,
            fault.message,
            service=api.name if api else (f.api.name if f.api else ""),
            operation=(ex.resource or ex.resource_path) if ex else req.path,
            client_ip=client_ip,
            user=(ex.user or "") if ex else "",
            application=ex.application.name if ex and ex.application else "",
        )
        return fault.status, await send_error(resp, fault.status, text, tuple(fault.headers))

    @staticmethod
    def _complete(ex: Exchange, status: int) -> None:
        for handler in ex.plan.complete:
            try:
                handler.on_complete(ex, status)
            except Exception:  # monitoring must never break the exchange it observes
                log.exception("policy %s failed after the response", handler.template_key)

    def _record(
        self,
        ex: Exchange | None,
        api: CompiledApi,
        req: Request,
        client_ip: str,
        status: int,
        failure_key: str,
        started: float,
        provider_ms: float,
        sent: int,
    ) -> None:
        total_ms = (perf_counter() - started) * 1000
        app = ex.application if ex else None
        route = ex.route if ex else None
        hooks = ex.state.get(EVENT_HOOKS) if ex is not None and ex.state else None
        # The common case: a cheap record the background writer expands. A plain tuple of atomic
        # values and one flat tuple of header names and values, so the garbage collector stops
        # tracking it by its second young collection: records waiting for the writer would otherwise
        # be promoted to the oldest generation by the thousand and set off full collections (pauses
        # of 100+ ms every few seconds at saturation).
        if not hooks:
            flat: list[bytes] = []  # compiled, a native loop (chain.from_iterable is a Python call)
            for name, value in req.headers:
                flat.append(name)
                flat.append(value)
            if ex is None:
                correlation_id = operation = package_id = plan_id = None
                key_header = b""
            else:
                correlation_id, operation = ex.correlation_id, ex.resource or None
                package_id, plan_id = ex.package_id, ex.plan_id
                key_header = ex.snapshot.settings.api_key_header
            self._calls.append((  # type: ignore[union-attr]  # a call record (events.calls.CALL_FIELDS)
                int(wall_clock() * 1000), api.id, api.name, api.version, app.id if app else None,
                app.name if app else None, client_ip, correlation_id, req.method, operation, req.query,
                tuple(flat), key_header, status, failure_key, route.url if route else None,
                route.method if route else None, package_id, plan_id, int(total_ms), int(provider_ms),
                sent + req.body.received,  # a request without a body has EMPTY_BODY: 0 received
            ))
            return
        event = TransactionEvent(
            api_id=api.id,
            api_name=api.name,
            api_version=api.version,
            application_id=app.id if app else None,
            application_name=app.name if app else None,
            application_ip=client_ip,
            consumer_ip=client_ip,
            correlation_id=ex.correlation_id if ex else None,
            http_method=req.method,
            operation_name=ex.resource if ex and ex.resource else None,
            query_parameters=query_dict(req.query) if req.query else None,
            request_headers=loggable_headers(req.headers, ex.snapshot.settings.api_key_header if ex else b""),
            response_code=status,
            status="SUCCESS" if status < 400 and not failure_key else "FAILURE",
            error_origin=failure_key or None,
            native_url=route.url if route else None,
            native_http_method=route.method if route else None,
            package_id=ex.package_id if ex else None,
            plan_id=ex.plan_id if ex else None,
            total_time=int(total_ms),
            provider_time=int(provider_ms),
            gateway_time=int(max(total_ms - provider_ms, 0)),
            total_data_size=sent + (req.body.received if req.body.has_body else 0),
        )
        # Policies that enrich the event (logInvocation payloads, cache hits) register callables here.
        for hook in hooks.values():
            hook(event)
        self.events.record(event)  # type: ignore[union-attr]


def _native_failure(ex: Exchange, exc: Exception) -> Failure:
    """The failure to answer for an error of the native call (the pool's, or the client's body
    timing out while it was streamed there)."""
    if isinstance(exc, UpstreamTimeout):
        status = 408 if ex.snapshot.settings.return_408_for_timeout else 504
        return Failure(status, "NATIVE_TIMEOUT", f"The native service did not answer in time ({exc.phase})")
    if isinstance(exc, UpstreamTlsError):  # an untrusted native certificate: 502 and why (issue 5)
        return Failure(502, TLS_FAILURE, note_tls_failure(ex, str(exc)))
    if isinstance(exc, UpstreamConnectError):
        return Failure(503, "NATIVE_UNAVAILABLE", f"Cannot connect to the native service: {exc}")
    if isinstance(exc, UpstreamClosed):
        return Failure(502, "NATIVE_PROTOCOL_ERROR", f"The native service closed the connection: {exc}")
    return Failure(408, "REQUEST_BODY_TIMEOUT", "The client stopped sending the request body")


def _unquote(text: str) -> str:
    """``unquote`` without its call when there is nothing to decode (a compiled caller pays a full
    Python call for it otherwise)."""
    return unquote(text) if "%" in text else text


def decode_path(path: str, all_delimiters: bool) -> str:
    """Percent-decode a resource path for matching; ``%2F`` stays encoded (it is data, not a
    separator) unless ``decodeAllDelimitersInURI`` is true."""
    if "%" not in path:
        return path
    if all_delimiters:
        return unquote(path)
    return "%2F".join(unquote(part) for part in re.split("%2[fF]", path))
