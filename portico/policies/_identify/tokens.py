"""Token identification for ``evaluatePolicy`` (issue 5): ``jwtClaims``, ``oAuth2Token`` and
``openIdConnect``.

Each rule reads ``Authorization: Bearer <token>`` and returns what it found, like the other rules:
an application, nothing (no bearer token: the rule does not apply), or a :class:`Violation`.

- ``jwtClaims``: a JWT access token verified by its issuer (``OAuthView.verify_jwt``), then matched
  against the applications' ``jwtClaims`` identifiers (every claim of one claim set must be in the
  token); failing that, the applications with a JWT strategy on that server.
- ``oAuth2Token``: an access token (JWT or opaque) -> its client id -> the applications whose
  strategy uses that client (``OAuthView.identify_oauth2``).
- ``openIdConnect``: an OpenID Connect ID token is the credential (``OAuthView.identify_id_token``).

Whatever the type, once the token is valid the API's scope mappings are enforced with the token's
scopes (``scope``, space-separated, or an ``scp`` list) on the server that issued it: a token without
a mapped scope is a 403 ``INSUFFICIENT_SCOPE`` (``gateway/parts/scopes.py``), which ``allowAnonymous``
does not forgive (:func:`is_refusal`).

A token that fails validation is a 401 (``The request cannot be authenticated.``, the reference's
wording, plus the reason and a ``WWW-Authenticate: Bearer error="invalid_token"`` header, RFC 6750);
a valid token that identifies no application is a 403 (``Unable to identify the application...``).
Verified JWTs are cached until they expire by the validation core, so a repeated token costs a
dictionary lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from portico.oauth.runtime import EXTRAS as OAUTH
from portico.oauth.validate import TokenError, VerifiedToken
from portico.policies.base import Violation

if TYPE_CHECKING:
    from portico.gateway.exchange import Exchange
    from portico.gateway.parts.jwt_claims import ClaimIndex
    from portico.gateway.snapshot import AppView, Snapshot
    from portico.oauth.runtime import OAuthView

JWT_CLAIMS = "jwtClaims"  # snap.extras key of gateway/parts/jwt_claims.py
SCOPES = "scopes"  # snap.extras key of gateway/parts/scopes.py
TOKEN_TYPES = ("jwtClaims", "oAuth2Token", "openIdConnect")

NOT_IDENTIFIED = Violation(403, "APPLICATION_NOT_IDENTIFIED", "Unable to identify the application for the request.")
NO_AUTHORIZATION_SERVER = Violation(401, "AUTHENTICATION_FAILED", "The request cannot be authenticated.")


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def token_failure(exc: TokenError) -> Violation:
    """A token that failed validation: 401 with a stable key per reason (``TOKEN_EXPIRED``...)."""
    challenge = f'Bearer error="invalid_token", error_description="{_quoted(exc.message)}"'
    return Violation(401, f"TOKEN_{exc.key.upper()}", f"The request cannot be authenticated: {exc.message}.",
                     headers=((b"www-authenticate", challenge.encode("latin-1", "replace")),))


INSUFFICIENT_SCOPE = Violation(
    403, "INSUFFICIENT_SCOPE", "The access token does not have a scope mapped to this resource.",
    headers=((b"www-authenticate", b'Bearer error="insufficient_scope"'),))


def is_refusal(violation: Violation) -> bool:
    """A failure ``allowAnonymous`` does not forgive: credentials that failed authentication (401),
    or a valid token without the scope this resource requires (403). A caller that sent such
    credentials is not anonymous."""
    return violation.status == 401 or violation.key == INSUFFICIENT_SCOPE.key


def bearer_token(ex: Exchange) -> str | None:
    raw = ex.request.header(b"authorization")
    if raw is None:
        return None
    scheme, _, value = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = value.strip().decode("latin-1")
    return token or None


def _oauth(snap: Snapshot) -> OAuthView | None:
    view: OAuthView | None = snap.extras.get(OAUTH)
    return view


def _pick(ex: Exchange, snap: Snapshot, app_ids: tuple[str, ...] | list[str]) -> AppView | None:
    """The application among ``app_ids``: one registered to the API first (strict lookups need it)."""
    index: ClaimIndex | None = snap.extras.get(JWT_CLAIMS)
    if index is None:
        return None
    found = [app for app in (index.by_id.get(i) for i in app_ids) if app is not None]
    for app in found:
        if ex.api.id in app.api_ids:
            return app
    return found[0] if found else None


async def by_jwt_claims(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    token = bearer_token(ex)
    view = _oauth(snap)
    if token is None:
        return None
    if view is None:
        return NO_AUTHORIZATION_SERVER
    try:
        server, verified = await view.verify_jwt(token)
    except TokenError as exc:
        return token_failure(exc)
    if not allowed_by_scopes(ex, snap, server.name, verified):
        return INSUFFICIENT_SCOPE
    index: ClaimIndex | None = snap.extras.get(JWT_CLAIMS)
    matched = index.matching(verified.claims) if index is not None else []
    app = _pick(ex, snap, [a.id for a in matched] or view.jwt_applications(server.name, verified))
    if app is None:
        return NOT_IDENTIFIED
    ex.user = ex.user or verified.subject
    return app


async def by_oauth2_token(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    token = bearer_token(ex)
    view = _oauth(snap)
    if token is None:
        return None
    if view is None:
        return NO_AUTHORIZATION_SERVER
    try:
        identified = await view.identify_oauth2(token)
    except TokenError as exc:
        return token_failure(exc)
    if not allowed_by_scopes(ex, snap, identified.server, identified.token):
        return INSUFFICIENT_SCOPE
    app = _pick(ex, snap, identified.application_ids)
    if app is None:
        return NOT_IDENTIFIED
    ex.user = ex.user or identified.token.subject
    return app


async def by_openid(ex: Exchange, snap: Snapshot) -> AppView | Violation | None:
    token = bearer_token(ex)
    view = _oauth(snap)
    if token is None:
        return None
    if view is None:
        return NO_AUTHORIZATION_SERVER
    try:
        identified = await view.identify_id_token(token)
    except TokenError as exc:
        return token_failure(exc)
    if not allowed_by_scopes(ex, snap, identified.server, identified.token):
        return INSUFFICIENT_SCOPE
    app = _pick(ex, snap, identified.application_ids)
    if app is None:
        return NOT_IDENTIFIED
    ex.user = ex.user or identified.token.subject
    return app


def allowed_by_scopes(ex: Exchange, snap: Snapshot, server: str, verified: VerifiedToken) -> bool:
    """Whether the token may call this API's resource and method under the scope mappings (an API
    no mapping names is open to any valid token)."""
    scopes: Any = snap.extras.get(SCOPES)
    if scopes is None:
        return True
    allowed: bool = scopes.allows(ex.api.id, ex.resource or "", ex.request.method, server, verified)
    return allowed


RULES = {"jwtClaims": by_jwt_claims, "oAuth2Token": by_oauth2_token, "openIdConnect": by_openid}
