"""evaluatePolicy's per-request core (compiled with mypyc, with the rest of the data plane): the
rules that answer without waiting (API key, IP range, client certificate), how the rules' outcomes
combine, and the final judgement. ``policies/evaluate_policy.py`` holds the config model and the
rules that wait (HTTP basic, host names, tokens), and calls this."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Union

from portico.gateway.client_certs import by_certificate
from portico.policies._identify.tokens import is_refusal
from portico.policies.base import Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.snapshot import AppView, Snapshot

UNIDENTIFIED = Violation(403, "APPLICATION_NOT_IDENTIFIED", "Unable to identify the application for the request.")
INVALID_KEY = Violation(403, "INVALID_API_KEY", "The API key is not valid.")
KEY_EXPIRED = Violation(403, "API_KEY_EXPIRED", "The API key has expired.")

# A rule returns what it found: an application, nothing (None), or a hard failure (a Violation).
Outcome = Union["AppView", Violation, None]
SyncRule = Callable[["Exchange", "Snapshot"], Outcome]


def by_api_key(ex: Exchange, snap: Snapshot) -> Outcome:
    raw = ex.request.header(snap.settings.api_key_header)
    if raw is None:
        return None
    app = snap.apps_by_key.get(raw.decode("latin-1").strip())
    if app is None:
        return INVALID_KEY
    if app.key_expires_at is not None and time.time() * 1000 >= app.key_expires_at:
        return KEY_EXPIRED
    return app


def by_ip(ex: Exchange, snap: Snapshot) -> Outcome:
    try:
        ip = int(ipaddress.ip_address(ex.client_ip))
    except ValueError:
        return None
    for low, high, app in snap.apps_by_ip_range:
        if low <= ip <= high:
            return app
    return None


SYNC_RULES: dict[str, SyncRule] = {"apiKey": by_api_key, "ipAddressRange": by_ip, "httpsCertificate": by_certificate}


class Verdict:
    """The rules' combined finding so far (OR: the first application wins; AND: all must agree)."""

    def __init__(self) -> None:
        self.found: AppView | None = None
        self.failure: Violation | None = None
        self.refusal: Violation | None = None  # the first failure allowAnonymous cannot forgive

    def add(self, outcome: Outcome, strict: bool, conjunctive: bool, ex: Exchange) -> bool:
        """Take one rule's outcome; True when no further rule can change the verdict."""
        app: AppView | None = None
        violation: Violation | None = None
        if isinstance(outcome, Violation):
            violation = outcome
        else:
            app = outcome
        if app is not None and strict and ex.api.id not in app.api_ids:
            app, violation = None, UNIDENTIFIED
        if app is None:
            self.failure = self.failure or violation
            if violation is not None and self.refusal is None and is_refusal(violation):
                self.refusal = violation
            if conjunctive:
                self.found = None
                return True
            return False
        if conjunctive and self.found is not None and self.found.id != app.id:
            self.found, self.failure = None, UNIDENTIFIED
            return True
        self.found = app
        return not conjunctive


class Judge:
    """One evaluatePolicy action's rules and how they combine. ``run_sync`` is the whole phase when
    every rule answers without waiting (``sync_rules`` is set), the common case of an API-key
    protected API: no coroutine."""

    def __init__(self, rules: Sequence[tuple[str, bool]], conjunctive: bool, anonymous: bool,
                 missing_header: Violation | None) -> None:
        self.conjunctive = conjunctive
        self.anonymous = anonymous
        self.missing_header = missing_header
        self.sync_rules: list[tuple[SyncRule, bool]] | None = None
        if all(kind in SYNC_RULES for kind, _ in rules):
            self.sync_rules = [(SYNC_RULES[kind], strict) for kind, strict in rules]

    def run_sync(self, ex: Exchange) -> Violation | None:
        assert self.sync_rules is not None
        verdict = Verdict()
        snap = ex.snapshot
        conjunctive = self.conjunctive
        for rule, strict in self.sync_rules:
            if verdict.add(rule(ex, snap), strict, conjunctive, ex):
                break
        return self.judge(verdict, ex)

    def judge(self, verdict: Verdict, ex: Exchange) -> Violation | None:
        found, failure = verdict.found, verdict.failure
        if found is None:
            if self.missing_header is not None and ex.request.header(b"authorization") is None:
                return self.missing_header
            if self.anonymous:  # only a caller whose credentials were not refused is anonymous
                return verdict.refusal
            return failure or UNIDENTIFIED
        if found.suspended:
            return Violation(403, "APPLICATION_SUSPENDED", f"The application {found.name} is suspended.")
        ex.application = found
        return None
