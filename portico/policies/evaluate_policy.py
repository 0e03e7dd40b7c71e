"""``evaluatePolicy`` ("Identify & Authorize", IAM stage): find the calling application.

Each identification rule names a credential type and a lookup scope:
``strict`` (applications registered to the API) or ``global`` (any
application). With OR the first rule that identifies an application wins; with
AND every rule must identify the same application. Anonymous calls pass only
when ``allowAnonymous`` is true, and never with refused credentials (a 401, or
a token lacking the resource's scope: ``_identify/tokens.py``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from portico.policies._identify.tokens import RULES as TOKEN_RULES
from portico.policies._identify.verdict import SYNC_RULES, Judge, Verdict
from portico.policies.base import PolicyConfig, PolicyHandler, Step, Violation
from portico.policies.inbound_auth_transport import basic_credentials

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.snapshot import AppView, Snapshot

IdentificationType = Literal["apiKey", "httpBasicAuth", "ipAddressRange", "hostNameAddress", "jwtClaims",
                             "oAuth2Token", "openIdConnect", "httpsCertificate"]

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
        default=False, description="Fail with 401 when no rule identified the application and the request has "
                                   "no Authorization header, even with allowAnonymous."
    )
    IdentificationRule: list[IdentificationRuleConfig] = Field(min_length=1, description="The identification rules.")


# Each rule returns what it found: an application, nothing (None), or a hard failure (a Violation).
# The rules that answer at once are in _identify/verdict.py, compiled.


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


async def _by_host_name(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    names = await snap.hostnames.names_of(ex.client_ip)
    for name in names:
        app = snap.apps_by_host.get(name)
        if app is not None:
            return app
    return None


_ASYNC_RULES = {"httpBasicAuth": _by_basic_auth, "hostNameAddress": _by_host_name, **TOKEN_RULES}  # tokens: issue 5


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
        self._judge = Judge(self._rules, config.logicalConnector == "AND", config.allowAnonymous,
                            _missing_header_violation(config))

    def run(self, ex: Exchange) -> Violation | Awaitable[Violation | None] | None:
        # API keys, IP ranges and certificates are looked up without waiting: then the phase answers
        # at once, with no coroutine (the common case, on every call of an API-key protected API).
        if self._judge.sync_rules is not None:
            return self._judge.run_sync(ex)
        return self._run_async(ex)

    def request_step(self) -> Step:
        # Rules that answer at once: the compiled judge is the whole step (no interpreted frame).
        return self._judge.run_sync if self._judge.sync_rules is not None else self.run

    async def _run_async(self, ex: Exchange) -> Violation | None:
        judge = self._judge
        verdict = Verdict()
        snap = ex.snapshot
        for kind, strict in self._rules:
            sync_rule = SYNC_RULES.get(kind)
            outcome = sync_rule(ex, snap) if sync_rule is not None else await _ASYNC_RULES[kind](ex, snap)
            if verdict.add(outcome, strict, judge.conjunctive, ex):
                break
        return judge.judge(verdict, ex)
