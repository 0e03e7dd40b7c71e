"""The gateway's read-only view of configuration, as every request reads it: the compiled
:class:`Snapshot` and what it holds per API and application. Compiled with mypyc (with the rest of
the data plane), so that reading a field on the request path is a struct read; built by
:mod:`portico.gateway.snapshot`, which also says how."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from portico.gateway.lookups import HostNames, UserCredentials
from portico.gateway.router import ResourceRouter
from portico.policies.base import PolicyHandler, Step

log = logging.getLogger("portico.gateway")


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The settings the gateway consults, parsed once per snapshot."""

    api_key_header: bytes
    connect_timeout: float
    read_timeout: float
    return_408_for_timeout: bool
    strict_resource_matching: bool
    default_to_oldest_version: bool
    forward_query_params: bool
    decode_all_delimiters: bool
    ignore_x_forwarded_for: bool
    send_native_provider_fault: bool
    error_template: str
    # xmlToJSONConversion_keepString: XML->JSON conversions keep every value a string (issue 3).
    xml_to_json_keep_string: bool = True


@dataclass(frozen=True, slots=True)
class AppView:
    id: str
    name: str
    api_key: str
    key_expires_at: int | None
    suspended: bool
    api_ids: frozenset[str]


@dataclass(slots=True)
class PhasePlan:
    """The handlers of one API per phase, in execution order; computed once per snapshot."""

    request: tuple[PolicyHandler, ...] = ()
    # What the request phase calls: each request handler's step and whether it needs the body first
    # (snapshot.with_request changes both together).
    request_steps: tuple[tuple[Step, bool], ...] = ()
    response: tuple[PolicyHandler, ...] = ()
    fault: tuple[PolicyHandler, ...] = ()
    complete: tuple[PolicyHandler, ...] = ()
    needs_response_body: bool = False


@dataclass(slots=True)
class CompiledApi:
    id: str
    name: str
    version: str
    active: bool
    router: ResourceRouter
    chain: dict[str, list[PolicyHandler]]
    created: int
    native_endpoint: str = ""
    plan: PhasePlan = field(default_factory=PhasePlan)
    # (resource template, METHOD) -> plan, only where resource/method-level policies apply.
    scoped_plans: dict[tuple[str, str], PhasePlan] = field(default_factory=dict)


@dataclass(slots=True)
class ApiVersions:
    """All versions of one API name, oldest first."""

    by_version: dict[str, CompiledApi] = field(default_factory=dict)
    ordered: list[CompiledApi] = field(default_factory=list)


class Services:
    """Long-lived shared objects the policies use (counter stores, caches), created once per
    process on first use and kept across snapshots. ``options`` carries the start options
    (e.g. ``redis_url``)."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = options or {}
        self._items: dict[str, Any] = {}
        self.closers: list[Callable[[], Awaitable[None]]] = []

    def get_or_create(self, name: str, factory: Callable[[Services], Any]) -> Any:
        item = self._items.get(name)
        if item is None:
            item = self._items[name] = factory(self)
        return item

    async def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:  # closing one service must not keep the others open
                log.exception("closing a gateway service failed")


@dataclass(slots=True)
class Snapshot:
    revision: int
    settings: RuntimeSettings
    apis: dict[str, ApiVersions]
    apis_by_id: dict[str, CompiledApi]
    apps_by_key: dict[str, AppView]
    apps_by_basic_user: dict[str, list[AppView]]
    apps_by_ip_range: list[tuple[int, int, AppView]]
    apps_by_host: dict[str, AppView]
    users: UserCredentials
    hostnames: HostNames
    services: Services = field(default_factory=Services)
    simple_aliases: dict[str, str] = field(default_factory=dict)
    # Indexes contributed by snapshot parts (packages, plans, aliases, ...), by name.
    extras: dict[str, Any] = field(default_factory=dict)


