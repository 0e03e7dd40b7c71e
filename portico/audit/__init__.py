"""Audit log: who did what to which asset, when and from where.

Producers (the management API's write path, authentication) call ``ctx.audit.record(AuditEntry(...))``;
recording never blocks or fails the action it records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AuditEntry:
    object_type: str        # management area / asset type, e.g. "API", "Application", "User", "Login"
    action: str             # "Create", "Update", "Delete", "Activate", "Deactivate", "Login", "Failed login", ...
    object: str             # the asset's name (or id when it has none)
    message: str
    user: str               # login id of the caller ("" when unknown, e.g. a failed login for no such user)
    client_ip: str = ""


class AuditSink(Protocol):
    def record(self, entry: AuditEntry) -> None: ...


class NoAudit:
    """Records nothing (stand-alone tests of components that do not care)."""

    def record(self, entry: AuditEntry) -> None:
        return None
