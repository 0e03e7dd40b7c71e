"""What every management handler can reach: ``request.app.state.portico``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from portico.audit import AuditSink, NoAudit

if TYPE_CHECKING:
    from portico.events.recorder import EventRecorder
    from portico.store import Store


def _nothing() -> None:
    return None


async def _settled() -> None:
    return None


@dataclass
class AdminContext:
    store: Store
    events: EventRecorder
    extras: dict[str, Any] = field(default_factory=dict)
    audit: AuditSink = field(default_factory=NoAudit)
    # Called after a committed configuration change so this node's gateway reloads at once
    # (other nodes notice the store's revision on their next poll).
    on_change: Callable[[], None] = _nothing
    # Awaited after every successful write, before the response: brings this node's gateway up to
    # the store's revision (a no-op when nothing changed).
    settle: Callable[[], Awaitable[None]] = _settled

    def notify_change(self) -> None:
        self.on_change()


def context_of(request: Request) -> AdminContext:
    ctx: AdminContext = request.app.state.portico
    return ctx
