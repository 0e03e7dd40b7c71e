"""The per-request context passed explicitly through every phase.

Policies read the incoming request from ``ex.request`` and change what is
forwarded through the exchange: ``method``, ``query``, ``set_header``/
``remove_header``, ``body`` (buffered only when a policy asked for it), and
after the native call ``response`` (buffered only when a response policy asked
for it). ``state`` keeps per-policy, per-request data apart from shared data."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from portico.gateway.http import Request
    from portico.gateway.snapshot import AppView, CompiledApi, PhasePlan, Snapshot


# ``ex.policy_state(EVENT_HOOKS)``: name -> callable(TransactionEvent), run before the event is recorded.
EVENT_HOOKS: Final = "eventHooks"


class RouteTarget:
    """Where routing decided to send the request. A plain class, as the others here: compiled, a
    dataclass keeps its generated ``__init__`` in Python, which is several times slower to call."""

    def __init__(
        self, scheme: str, host: str, port: int, target: str, method: str, connect_timeout: float,
        read_timeout: float, url: str, fallbacks: tuple[RouteTarget, ...] = (), failover_on_fault: bool = False,
        tls: ssl.SSLContext | None = None, host_header: bytes = b"",
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.target = target  # path + query as sent on the request line
        self.method = method
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.url = url  # for events and logs
        # Load-balanced routing: endpoints tried in order when this one is down (see runtime._call).
        self.fallbacks = fallbacks
        self.failover_on_fault = failover_on_fault  # also on 5xx (pg.lb.failoverOnDowntimeErrorOnly=false)
        self.tls = tls  # https: the client context (gateway/tls.py); None: the pool's default
        # The Host header for it, when the router knew it in advance (b"": proxy.py works it out).
        self.host_header = host_header


def authority(scheme: str, host: str, port: int) -> bytes:
    """The Host header naming ``host``:``port`` (the port left out when it is the scheme's default)."""
    default_port = 443 if scheme == "https" else 80
    return (host if port == default_port else f"{host}:{port}").encode("latin-1")


class BufferedResponse:
    """A whole response held in memory, for response-processing policies and faults."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, reason: str = "") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def set_header(self, name: bytes, value: bytes) -> None:
        self.headers = [(n, v) for n, v in self.headers if n != name]
        self.headers.append((name, value))

    def remove_header(self, name: bytes) -> None:
        self.headers = [(n, v) for n, v in self.headers if n != name]


@dataclass(slots=True)
class Fault:
    """A failed exchange on its way to the client: responseFaultProcessing policies may rewrite it."""

    status: int
    key: str
    message: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None  # None: render the error template
    native: BufferedResponse | None = None  # the native service's fault, when there was one


class Exchange:
    __slots__ = (
        "_headers", "api", "application", "body", "client_ip", "correlation_id", "fault", "method",
        "package_id", "path_params", "plan", "plan_id", "query", "request", "resource", "resource_path",
        "response", "route", "snapshot", "started", "state", "user", "variables",
    )

    def __init__(
        self,
        request: Request,
        snapshot: Snapshot,
        api: CompiledApi,
        resource_path: str,
        client_ip: str,
        started: float,
        correlation_id: str,
    ) -> None:
        # Annotated although the parameters say it: mypy, checking the import cycle in another
        # order (as mypyc does, see setup.py), would not know these types where other modules use them.
        self.request: Request = request
        self.snapshot: Snapshot = snapshot
        self.api: CompiledApi = api
        self.plan: PhasePlan = api.plan  # the phase plan; the resource/method match may pick a more specific one
        self.resource_path: str = resource_path
        self.resource = ""
        self.path_params: dict[str, str] = {}
        self.client_ip: str = client_ip
        self.application: AppView | None = None
        self.user: str | None = None
        self.route: RouteTarget | None = None
        self.started: float = started
        self.correlation_id: str = correlation_id
        self.method: str = request.method
        self.query: str = request.query
        self._headers: list[tuple[bytes, bytes]] | None = None  # copied on first change
        self.body: bytes | None = None
        self.response: BufferedResponse | None = None
        self.fault: Fault | None = None
        self.package_id: str | None = None
        self.plan_id: str | None = None
        self.variables: dict[str, str] | None = None
        self.state: dict[str, Any] | None = None

    # -- forwarded request headers (copy on write) ---------------------------------------------

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers if self._headers is not None else self.request.headers

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def set_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self._headers = [(n, v) for n, v in self.headers if n != name]
        self._headers.append((name, value))

    def remove_header(self, name: bytes) -> None:
        name = name.lower()
        self._headers = [(n, v) for n, v in self.headers if n != name]

    def set_variable(self, name: str, value: str) -> None:
        if self.variables is None:
            self.variables = {}
        self.variables[name] = value

    def policy_state(self, key: str) -> dict[str, Any]:
        """Per-request scratch space of one policy (kept apart from other policies')."""
        if self.state is None:
            self.state = {}
        bucket: dict[str, Any] = self.state.setdefault(key, {})
        return bucket
