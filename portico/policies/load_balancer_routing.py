"""``loadBalancerRouting`` (routing stage): round robin over endpoints, with failover.

Each request starts at the next endpoint in turn; the others follow as fallbacks the runtime
tries, in order, when an endpoint is down (connect failure, timeout) or, when the extended
setting ``pg.lb.failoverOnDowntimeErrorOnly`` is false, on any fault (5xx, broken connection).
The request body is buffered so it can be replayed. All endpoints down -> 503 ALL_ENDPOINTS_DOWN.
An endpoint that failed is skipped for ``suspendDurationOnFailure`` seconds while another is up."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from portico.gateway.endpoint import TlsChoice
from portico.gateway.exchange import Exchange, RouteTarget
from portico.policies._endpoint import LB_FAILOVER_ON_FAULT, RouteTo, RoutingHandler, endpoint_choices, endpoint_of
from portico.policies.base import PolicyConfig, Violation


class LbRouteTo(RouteTo):
    suspendDurationOnFailure: float | None = Field(
        default=None, ge=0, description="Seconds an endpoint that failed is skipped (0 or absent: not skipped)."
    )
    serviceRegistryParameters: Any = Field(default=None, description="Service discovery parameters (not used).")


class LoadBalancerRoutingConfig(PolicyConfig):
    lbRouteTo: list[LbRouteTo] = Field(min_length=1, description="The endpoints to balance over, in order.")


class LoadBalancerRouting(RoutingHandler):
    template_key = "loadBalancerRouting"
    title = "Load Balancer Routing"
    Config = LoadBalancerRoutingConfig
    needs_request_body = True  # a failover resends the body

    def __init__(self, config: LoadBalancerRoutingConfig) -> None:
        super().__init__(config)
        self._endpoints = [endpoint_of(e) for e in config.lbRouteTo]
        self._suspend = [e.suspendDurationOnFailure or 0.0 for e in config.lbRouteTo]
        self._suspended_until = [0.0] * len(self._endpoints)
        self._turn = itertools.count()

    def tls_choices(self) -> Iterable[TlsChoice]:
        return endpoint_choices(self._endpoints)

    def run(self, ex: Exchange) -> Violation | None:
        n = len(self._endpoints)
        start = next(self._turn) % n
        order = [(start + i) % n for i in range(n)]
        now = time.monotonic()
        up = [i for i in order if self._suspended_until[i] <= now]
        order = up + [i for i in order if i not in up]  # suspended ones stay as a last resort
        targets: list[RouteTarget] = []
        for i in order:
            target = self._endpoints[i].route(ex)
            if isinstance(target, Violation):
                return target
            targets.append(target)
        first = targets[0]
        first.fallbacks = tuple(targets[1:])
        first.failover_on_fault = bool(ex.snapshot.extras.get(LB_FAILOVER_ON_FAULT))
        ex.route = first
        if any(self._suspend):
            ex.policy_state(self.template_key)["order"] = (order, targets)
        return None

    def on_complete(self, ex: Exchange, status: int) -> None:
        """Suspend the endpoints that were tried before the one that answered."""
        state = ex.state.get(self.template_key) if ex.state else None
        if not state or ex.route is None:
            return
        order, targets = state["order"]
        now = time.monotonic()
        for i, target in zip(order, targets, strict=True):
            if target is ex.route and (ex.fault is None or ex.fault.key != "ALL_ENDPOINTS_DOWN"):
                break
            if self._suspend[i]:
                self._suspended_until[i] = now + self._suspend[i]
