"""``evaluatePolicy`` ("Identify & Authorize", IAM stage): find the calling application.

Each identification rule names a credential type and a lookup scope:
``strict`` (applications registered to the API) or ``global`` (any
application). With OR the first rule that identifies an application wins; with
AND every rule must identify the same application. Anonymous calls pass only
when ``allowAnonymous`` is true, and never with refused credentials (a 401, or
a token lacking the resource's scope: ``_identify/tokens.py``)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from portico.gateway.client_certs import by_certificate
from portico.policies._identify.tokens import RULES as TOKEN_RULES
from portico.policies._identify.tokens import is_refusal
from portico.policies.base import PolicyConfig, PolicyHandler, Violation
from portico.policies.inbound_auth_transport import basic_credentials

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.snapshot import AppView, Snapshot

IdentificationType = Literal["apiKey", "httpBasicAuth", "ipAddressRange", "hostNameAddress", "jwtClaims",
                             "oAuth2Token", "openIdConnect", "httpsCertificate"]

UNIDENTIFIED = Violation(403, "APPLICATION_NOT_IDENTIFIED", "Unable to identify the application for the request.")
UNAUTHENTICATED = Violation(401, "AUTHENTICATION_FAILED", "The request cannot be authenticated.")
INVALID_KEY = Violation(403, "INVALID_API_KEY", "The API key is not valid.")
KEY_EXPIRED = Violation(403, "API_KEY_EXPIRED", "The API key has expired.")


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
        default=False, description="Fail with 401 when no rule identified the application and the request has "
                                   "no Authorization header, even with allowAnonymous."
    )
    IdentificationRule: list[IdentificationRuleConfig] = Field(min_length=1, description="The identification rules.")


# Each rule returns what it found: an application, nothing (None), or a hard failure (a Violation).


def _by_api_key(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    raw = ex.request.header(snap.settings.api_key_header)
    if raw is None:
        return None
    app = snap.apps_by_key.get(raw.decode("latin-1").strip())
    if app is None:
        return INVALID_KEY
    if app.key_expires_at is not None and time.time() * 1000 >= app.key_expires_at:
        return KEY_EXPIRED
    return app


async def _by_basic_auth(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    creds = basic_credentials(ex)
    if creds is None:
        return None
    user, password = creds
    if not user or not await snap.users.verify_async(user, password):
        return UNAUTHENTICATED
    ex.user = user
    apps = snap.apps_by_basic_user.get(user)
    return apps[0] if apps else None


def _by_ip(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    try:
        ip = int(ipaddress.ip_address(ex.client_ip))
    except ValueError:
        return None
    for low, high, app in snap.apps_by_ip_range:
        if low <= ip <= high:
            return app
    return None


async def _by_host_name(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    names = await snap.hostnames.names_of(ex.client_ip)
    for name in names:
        app = snap.apps_by_host.get(name)
        if app is not None:
            return app
    return None


_SYNC_RULES = {"apiKey": _by_api_key, "ipAddressRange": _by_ip, "httpsCertificate": by_certificate}
_ASYNC_RULES = {"httpBasicAuth": _by_basic_auth, "hostNameAddress": _by_host_name, **TOKEN_RULES}  # tokens: issue 5


class _Verdict:
    """The rules' combined finding so far (OR: the first application wins; AND: all must agree)."""

    __slots__ = ("failure", "found", "refusal")

    def __init__(self) -> None:
        self.found: AppView | None = None
        self.failure: Violation | None = None
        self.refusal: Violation | None = None  # the first failure allowAnonymous cannot forgive

    def add(self, outcome: AppView | Violation | None, strict: bool, conjunctive: bool, ex: Exchange) -> bool:
        """Take one rule's outcome; True when no further rule can change the verdict."""
        if isinstance(outcome, Violation):
            app, violation = None, outcome
        else:
            app, violation = outcome, None
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


def _missing_header_violation(config: EvaluatePolicyConfig) -> Violation | None:
    """``triggerPolicyViolationOnMissingAuthorizationHeader``: the 401 for a call that no rule
    identified and that sent no ``Authorization`` header (whatever ``allowAnonymous`` says), with a
    challenge for the schemes the rules read (Bearer for tokens, Basic for HTTP basic)."""
    if not config.triggerPolicyViolationOnMissingAuthorizationHeader:
        return None
    kinds = {r.identificationType for r in config.IdentificationRule}
    schemes = [name for name, wanted in (("Bearer", TOKEN_RULES), ("Basic", ("httpBasicAuth",)))
               if kinds & set(wanted)] or ["Bearer"]
    challenge = ", ".join(schemes).encode("latin-1")
    return Violation(401, "MISSING_AUTHORIZATION", "The request cannot be authenticated: the Authorization header "
                     "is missing.", headers=((b"www-authenticate", challenge),))


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
        self._missing_header = _missing_header_violation(config)
        # API keys and IP ranges are looked up without waiting: then the phase answers at once,
        # with no coroutine (the common case, on every call of an API-key protected API).
        self._sync_rules = (
            [(_SYNC_RULES[kind], strict) for kind, strict in self._rules]
            if all(kind in _SYNC_RULES for kind, _ in self._rules) else None
        )

    def run(self, ex: Exchange) -> Violation | Awaitable[Violation | None] | None:
        if self._sync_rules is None:
            return self._run_async(ex)
        verdict = _Verdict()
        snap = ex.snapshot
        for rule, strict in self._sync_rules:
            if verdict.add(rule(ex, snap), strict, self._and, ex):
                break
        return self._judge(verdict, ex)

    async def _run_async(self, ex: Exchange) -> Violation | None:
        verdict = _Verdict()
        snap = ex.snapshot
        for kind, strict in self._rules:
            sync_rule = _SYNC_RULES.get(kind)
            outcome = sync_rule(ex, snap) if sync_rule is not None else await _ASYNC_RULES[kind](ex, snap)
            if verdict.add(outcome, strict, self._and, ex):
                break
        return self._judge(verdict, ex)

    def _judge(self, verdict: _Verdict, ex: Exchange) -> Violation | None:
        found, failure = verdict.found, verdict.failure
        if found is None:
            if self._missing_header is not None and ex.request.header(b"authorization") is None:
                return self._missing_header
            if self._anonymous:  # only a caller whose credentials were not refused is anonymous
                return verdict.refusal
            return failure or UNIDENTIFIED
        if found.suspended:
            return Violation(403, "APPLICATION_SUSPENDED", f"The application {found.name} is suspended.")
        ex.application = found
        return None
