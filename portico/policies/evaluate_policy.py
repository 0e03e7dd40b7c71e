"""``evaluatePolicy`` ("Identify & Authorize", IAM stage): find the calling application.

Each identification rule names a credential type and a lookup scope:
``strict`` (applications registered to the API) or ``global`` (any
application). With OR the first rule that identifies an application wins; with
AND every rule must identify the same application. Anonymous calls pass only
when ``allowAnonymous`` is true."""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from portico.policies.base import PolicyConfig, PolicyHandler, Violation
from portico.policies.inbound_auth_transport import basic_credentials

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.snapshot import AppView, Snapshot

IdentificationType = Literal["apiKey", "httpBasicAuth", "ipAddressRange", "hostNameAddress"]

UNIDENTIFIED = Violation(403, "APPLICATION_NOT_IDENTIFIED", "Unable to identify the application for the request.")
UNAUTHENTICATED = Violation(401, "AUTHENTICATION_FAILED", "The request cannot be authenticated.")


class IdentificationRuleConfig(PolicyConfig):
    identificationType: IdentificationType = Field(description="Which credential identifies the application.")
    applicationLookup: Literal["strict", "global", "open"] = Field(
        default="strict",
        description="strict: only applications registered to the API; global (or open): any application.",
    )


class EvaluatePolicyConfig(PolicyConfig):
    logicalConnector: Literal["OR", "AND"] = Field(default="OR", description="How the rules combine.")
    allowAnonymous: bool = Field(default=False, description="Let calls no rule identifies through.")
    triggerPolicyViolationOnMissingAuthorizationHeader: bool = Field(
        default=False, description="Fail with 401 when an Authorization header is required but absent."
    )
    IdentificationRule: list[IdentificationRuleConfig] = Field(min_length=1, description="The identification rules.")


class _Outcome:
    """Result of one rule: an application, nothing found, or a hard failure."""

    __slots__ = ("app", "violation")

    def __init__(self, app: AppView | None = None, violation: Violation | None = None) -> None:
        self.app = app
        self.violation = violation


_NONE = _Outcome()


def _by_api_key(ex: Exchange, snap: Snapshot) -> _Outcome:
    raw = ex.request.header(snap.settings.api_key_header)
    if raw is None:
        return _NONE
    app = snap.apps_by_key.get(raw.decode("latin-1").strip())
    if app is None:
        return _Outcome(violation=Violation(403, "INVALID_API_KEY", "The API key is not valid."))
    if app.key_expires_at is not None and time.time() * 1000 >= app.key_expires_at:
        return _Outcome(violation=Violation(403, "API_KEY_EXPIRED", "The API key has expired."))
    return _Outcome(app)


async def _by_basic_auth(ex: Exchange, snap: Snapshot) -> _Outcome:
    creds = basic_credentials(ex)
    if creds is None:
        return _NONE
    user, password = creds
    if not user or not await snap.users.verify_async(user, password):
        return _Outcome(violation=UNAUTHENTICATED)
    ex.user = user
    apps = snap.apps_by_basic_user.get(user)
    return _Outcome(apps[0]) if apps else _NONE


def _by_ip(ex: Exchange, snap: Snapshot) -> _Outcome:
    try:
        ip = int(ipaddress.ip_address(ex.client_ip))
    except ValueError:
        return _NONE
    for low, high, app in snap.apps_by_ip_range:
        if low <= ip <= high:
            return _Outcome(app)
    return _NONE


async def _by_host_name(ex: Exchange, snap: Snapshot) -> _Outcome:
    names = await snap.hostnames.names_of(ex.client_ip)
    for name in names:
        app = snap.apps_by_host.get(name)
        if app is not None:
            return _Outcome(app)
    return _NONE


class EvaluatePolicy(PolicyHandler):
    template_key = "evaluatePolicy"
    stage = "IAM"
    title = "Identify & Authorize Application"
    Config = EvaluatePolicyConfig

    def __init__(self, config: EvaluatePolicyConfig) -> None:
        super().__init__(config)
        self._rules = [(r.identificationType, r.applicationLookup == "strict") for r in config.IdentificationRule]
        self._and = config.logicalConnector == "AND"
        self._anonymous = config.allowAnonymous

    async def _apply(self, kind: str, ex: Exchange) -> _Outcome:
        snap = ex.snapshot
        if kind == "apiKey":
            return _by_api_key(ex, snap)
        if kind == "httpBasicAuth":
            return await _by_basic_auth(ex, snap)
        if kind == "ipAddressRange":
            return _by_ip(ex, snap)
        return await _by_host_name(ex, snap)

    async def run(self, ex: Exchange) -> Violation | None:
        found: AppView | None = None
        failure: Violation | None = None
        for kind, strict in self._rules:
            outcome = await self._apply(kind, ex)
            app = outcome.app
            if app is not None and strict and ex.api.id not in app.api_ids:
                app = None
                outcome = _Outcome(violation=UNIDENTIFIED)
            if app is None:
                failure = failure or outcome.violation
                if self._and:
                    found = None
                    break
                continue
            if self._and and found is not None and found.id != app.id:
                found, failure = None, UNIDENTIFIED
                break
            found = app
            if not self._and:
                break
        if found is None:
            if self._anonymous and (failure is None or failure.status != 401):
                return None
            return failure or UNIDENTIFIED
        return self._admit(found, ex)

    @staticmethod
    def _admit(app: AppView, ex: Exchange) -> Violation | None:
        if app.suspended:
            return Violation(403, "APPLICATION_SUSPENDED", f"The application {app.name} is suspended.")
        ex.application = app
        return None
