"""What every management handler can reach: ``request.app.state.portico``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from portico.events.recorder import EventRecorder
    from portico.store import Store


@dataclass
class AdminContext:
    store: Store
    events: EventRecorder
    extras: dict[str, Any] = field(default_factory=dict)


def context_of(request: Request) -> AdminContext:
    ctx: AdminContext = request.app.state.portico
    return ctx
