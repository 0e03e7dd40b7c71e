"""The per-request context passed explicitly through every phase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.gateway.http import Request
    from portico.gateway.snapshot import AppView, CompiledApi, Snapshot


@dataclass(slots=True)
class RouteTarget:
    """Where routing decided to send the request."""

    scheme: str
    host: str
    port: int
    target: str  # path + query as sent on the request line
    method: str
    connect_timeout: float
    read_timeout: float
    url: str  # for events and logs


class Exchange:
    __slots__ = (
        "api", "application", "client_ip", "correlation_id", "path_params", "request",
        "resource", "resource_path", "route", "snapshot", "started", "user",
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
        self.request = request
        self.snapshot = snapshot
        self.api = api
        self.resource_path = resource_path
        self.resource = ""
        self.path_params: dict[str, str] = {}
        self.client_ip = client_ip
        self.application: AppView | None = None
        self.user: str | None = None
        self.route: RouteTarget | None = None
        self.started = started
        self.correlation_id = correlation_id
