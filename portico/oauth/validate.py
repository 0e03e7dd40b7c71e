"""The token-validation core: JWTs checked against keys, OAuth2 access tokens introspected.

What the gateway's identification (``evaluatePolicy``: ``jwtClaims``, ``oAuth2Token``, OpenID ID
tokens) calls; it never touches the management API. Every failure is a :class:`TokenError` with a
stable ``key`` (``malformed``, ``algorithm``, ``unknown_key``, ``signature``, ``expired``,
``not_yet_valid``, ``issuer``, ``audience``, ``token_type``, ``inactive``, ``unavailable``) and a
message.

- :class:`JwtVerifier`: one issuer's JWTs. The algorithm comes from an allow-list of asymmetric
  algorithms and must fit the key's type (so ``none`` and HS256-signed-with-the-public-key never
  pass); ``exp`` is required; ``exp``/``nbf``/``iat`` are checked with the issuer's clock skew,
  ``iss`` exactly, ``aud`` when an audience is configured. A verified token is remembered until it
  expires, so a repeated token costs a dictionary lookup, not a signature check.
- Key sources: :class:`StaticKeys` (the local server's own keys, a truststore certificate) and
  :class:`JwksKeys` (a JWKS URI: keys cached by ``kid``, fetched again on an unknown ``kid`` at
  most once per ``min_refresh`` seconds, and after ``max_age``).
- :class:`RemoteIntrospector`: RFC 7662 against another server, answers cached (an active one
  until the token's ``exp`` or ``cache_seconds``, an inactive one ``inactive_seconds``); with an
  audience configured, the answer's ``aud`` must name it.
- :func:`is_id_token`: an OpenID Connect ID token is not an access token (RFC 9068 header type
  ``at+jwt``, ``token_use``, and the claims only ID tokens carry tell them apart).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import extract_compact

log = logging.getLogger("portico.oauth")

# Asymmetric algorithms only: a verifier never holds a shared secret, so an HS* token can never be
# checked "with the public key as the HMAC secret". ``none`` is not an algorithm here.
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
ALLOWED_ALGORITHMS = RSA_ALGORITHMS | frozenset(EC_ALGORITHMS)
MAX_TOKEN_BYTES = 16 * 1024
AnyKey = RSAKey | ECKey
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
ID_TOKEN_ONLY_CLAIMS = ("nonce", "at_hash", "c_hash")  # OpenID Connect Core 2, 3.1.3.6, 3.3.2.11


class TokenError(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: dict[str, Any]
    issuer: str
    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    expires_at: float | None  # epoch seconds; None: no expiry (introspected tokens may have none)
    typ: str | None = None  # the JWT header's "typ" (None for introspected tokens)


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def is_access_type(verified: VerifiedToken) -> bool:
    return (verified.typ or "").lower() in ACCESS_TOKEN_TYPES


def is_id_token(verified: VerifiedToken) -> bool:
    """Whether a verified JWT is an OpenID Connect ID token rather than an access token: the header
    type ``at+jwt`` says access token (RFC 9068); else ``token_use`` (``id``/``access``) decides;
    else the claims that only ID tokens carry (``nonce``, ``at_hash``, ``c_hash``)."""
    if is_access_type(verified):
        return False
    use = verified.claims.get("token_use")
    if use in ("id", "access"):
        return use == "id"
    return any(name in verified.claims for name in ID_TOKEN_ONLY_CLAIMS)


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def client_of(claims: dict[str, Any]) -> str | None:
    for name in ("client_id", "azp", "cid"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _verified(claims: dict[str, Any], issuer: str, typ: str | None = None) -> VerifiedToken:
    exp = claims.get("exp")
    sub = claims.get("sub")
    return VerifiedToken(claims=claims, issuer=issuer, subject=sub if isinstance(sub, str) else None,
                         client_id=client_of(claims), scopes=scopes_of(claims),
                         expires_at=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
                         typ=typ)


class TokenCache:
    """Verified tokens until they expire; bounded (least recently used go first)."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, VerifiedToken] = OrderedDict()

    def get(self, token: str, now: float) -> VerifiedToken | None:
        hit = self._items.get(token)
        if hit is None:
            return None
        if hit.expires_at is not None and hit.expires_at <= now:
            del self._items[token]
            return None
        self._items.move_to_end(token)
        return hit

    def put(self, token: str, verified: VerifiedToken) -> None:
        self._items[token] = verified
        self._items.move_to_end(token)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _fits(key: AnyKey, alg: str) -> bool:
    if alg in RSA_ALGORITHMS:
        return isinstance(key, RSAKey)
    curve = EC_ALGORITHMS.get(alg)
    return isinstance(key, ECKey) and curve is not None and key.curve_name == curve


class StaticKeys:
    """Keys known up front: by ``kid``, and/or one key used whatever the token's ``kid``."""

    def __init__(self, keys: dict[str, AnyKey] | None = None, default: AnyKey | None = None) -> None:
        self.keys = dict(keys or {})
        self.default = default

    async def key_for(self, kid: str | None, alg: str) -> AnyKey:
        key = self.keys.get(kid) if kid else None
        if key is None:
            key = self.default
        if key is None:
            raise TokenError("unknown_key", f"no key with kid {kid!r} is known for this issuer")
        return key


def import_jwks(document: Any) -> dict[str, AnyKey]:
    """The signing keys of a JWKS document by ``kid`` (keys it cannot use are skipped)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    found: dict[str, AnyKey] = {}
    for item in document["keys"]:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig" or item.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = KeySet.import_key_set({"keys": [item]}).keys[0]
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, RSAKey | ECKey):
            found[str(item.get("kid") or key.thumbprint())] = key
    return found


Fetch = Callable[[str], Awaitable[Any]]


class JwksKeys:
    """Keys from a JWKS URI, cached by ``kid``. An unknown ``kid`` fetches the document again,
    at most once per ``min_refresh`` seconds (a flood of made-up kids costs one fetch); the
    document is also fetched again after ``max_age`` seconds."""

    def __init__(self, url: str, fetch: Fetch, min_refresh: float = 30.0, max_age: float = 3600.0) -> None:
        if max_age < min_refresh:
            max_age = min_refresh  # the document is not fetched more often than an unknown kid allows
        self.url = url
        self.fetch = fetch
        self.min_refresh = min_refresh
        self.max_age = max_age
        self.keys: dict[str, AnyKey] = {}
        self.fetched_at = float("-inf")  # monotonic time of the last attempt
        self.fetches = 0
        self._lock = asyncio.Lock()

    async def _refresh(self, reason: str) -> None:
        async with self._lock:
            if time.monotonic() - self.fetched_at < self.min_refresh:
                return  # fetched meanwhile, or too recently to ask again
            self.fetched_at = time.monotonic()
            self.fetches += 1
            try:
                self.keys = import_jwks(await self.fetch(self.url))
            except Exception as exc:  # keep the keys we had; the caller sees unknown_key/unavailable
                log.warning("JWKS %s could not be fetched (%s): %s", self.url, reason, exc)

    async def key_for(self, kid: str | None, alg: str) -> AnyKey:
        if time.monotonic() - self.fetched_at > self.max_age:
            await self._refresh("expired")
        key = self._pick(kid, alg)
        if key is None:
            await self._refresh(f"unknown kid {kid!r}")
            key = self._pick(kid, alg)
        if key is None:
            if not self.keys:
                raise TokenError("unavailable", f"the issuer's keys could not be fetched from {self.url}")
            raise TokenError("unknown_key", f"no key with kid {kid!r} in {self.url}")
        return key

    def _pick(self, kid: str | None, alg: str) -> AnyKey | None:
        if kid:
            return self.keys.get(kid)
        fitting = [k for k in self.keys.values() if _fits(k, alg)]
        return fitting[0] if len(fitting) == 1 else None


def b64json(part: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@dataclass
class JwtVerifier:
    """Verifies one issuer's JWTs (see the module docstring for the checks)."""

    issuer: str
    keys: StaticKeys | JwksKeys
    audience: str | None = None
    leeway: int = 30
    algorithms: frozenset[str] = ALLOWED_ALGORITHMS
    require_exp: bool = True
    cache: TokenCache = field(default_factory=TokenCache)

    async def verify(self, token: str, now: float | None = None, check_audience: bool = True) -> VerifiedToken:
        """The verified token. ``check_audience=False`` for ID tokens, whose ``aud`` is a client id
        (the caller matches it with clients), not the configured audience of access tokens."""
        now = time.time() if now is None else now
        hit = self.cache.get(token, now - self.leeway)
        if hit is not None:
            self._check_times(hit.claims, now)
            if check_audience:
                self._check_audience(hit.claims)
            return hit
        header = self._header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenError("algorithm", f"the token's algorithm {alg!r} is not accepted "
                                          f"(accepted: {', '.join(sorted(self.algorithms))})")
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None, alg)
        if not _fits(key, alg):
            raise TokenError("algorithm", f"the token's algorithm {alg} does not fit the issuer's key")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except JoseError as exc:
            raise TokenError("signature", f"the token's signature is not valid ({exc.error})") from None
        except (ValueError, TypeError):
            raise TokenError("malformed", "the token is not a well-formed JWT") from None
        typ = header.get("typ")
        verified = self.check_claims(claims, now, typ if isinstance(typ, str) else None)
        self.cache.put(token, verified)  # the audience is checked per use: a cached ID token has none of ours
        if check_audience:
            self._check_audience(claims)
        return verified

    def _check_audience(self, claims: dict[str, Any]) -> None:
        if self.audience and self.audience not in audiences(claims):
            raise TokenError("audience", f"the token is not meant for audience {self.audience!r}")

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise TokenError("malformed", "the token is not a compact JWS (three base64url parts)")
        try:
            header = extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise TokenError("malformed", "the token's header or payload is not base64url JSON") from None
        if "crit" in header:
            raise TokenError("malformed", "the token has critical header parameters Portico does not know")
        try:
            if not isinstance(b64json(token.split(".")[1]), dict):
                raise TokenError("malformed", "the token's payload is not a JSON object")
        except (ValueError, orjson.JSONDecodeError):
            raise TokenError("malformed", "the token's payload is not base64url JSON") from None
        return dict(header)

    def check_claims(self, claims: dict[str, Any], now: float, typ: str | None = None) -> VerifiedToken:
        if claims.get("iss") != self.issuer:
            raise TokenError("issuer", f"the token's issuer {claims.get('iss')!r} is not {self.issuer!r}")
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise TokenError("malformed", f"the token's {name!r} claim is not a number")
        if self.require_exp and claims.get("exp") is None:
            raise TokenError("malformed", "the token has no 'exp' claim")
        self._check_times(claims, now)
        return _verified(claims, self.issuer, typ)

    def _check_times(self, claims: dict[str, Any], now: float) -> None:
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if exp is not None and now - self.leeway >= exp:
            raise TokenError("expired", "the token has expired")
        if nbf is not None and now + self.leeway < nbf:
            raise TokenError("not_yet_valid", "the token is not valid yet (nbf)")
        if iat is not None and now + self.leeway < iat:
            raise TokenError("not_yet_valid", "the token was issued in the future (iat)")


class RemoteIntrospector:
    """RFC 7662 token introspection at another authorization server, answers cached."""

    def __init__(self, endpoint: str, client_id: str, client_secret: str, client: httpx.AsyncClient,
                 cache_seconds: float = 60.0, inactive_seconds: float = 5.0, audience: str | None = None) -> None:
        self.endpoint = endpoint
        self.auth = (client_id, client_secret)
        self.client = client
        self.cache_seconds = cache_seconds
        self.inactive_seconds = inactive_seconds
        self.audience = audience or None
        self._cache: OrderedDict[str, tuple[float, VerifiedToken | None]] = OrderedDict()
        self.calls = 0

    async def introspect(self, token: str, now: float | None = None) -> VerifiedToken:
        now = time.time() if now is None else now
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(token)
            if hit[1] is None:
                raise TokenError("inactive", "the authorization server says the token is not active")
            return hit[1]
        self.calls += 1
        try:
            response = await self.client.post(self.endpoint, data={"token": token, "token_type_hint": "access_token"},
                                              auth=self.auth, headers={"Accept": "application/json"})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise TokenError("unavailable", f"the introspection endpoint cannot be reached: {exc}") from None
        if response.status_code != 200:
            raise TokenError("unavailable", f"the introspection endpoint answered {response.status_code}")
        try:
            body = response.json()
        except (ValueError, UnicodeError):
            raise TokenError("unavailable", "the introspection endpoint did not answer JSON") from None
        if not isinstance(body, dict) or body.get("active") is not True:
            self._remember(token, now + self.inactive_seconds, None)
            raise TokenError("inactive", "the authorization server says the token is not active")
        if self.audience and self.audience not in audiences(body):
            self._remember(token, now + self.inactive_seconds, None)
            raise TokenError("audience", f"the token is not meant for audience {self.audience!r}")
        verified = _verified(body, str(body.get("iss", "")))
        until = now + self.cache_seconds
        if verified.expires_at is not None:
            if verified.expires_at <= now:
                raise TokenError("expired", "the token has expired")
            until = min(until, verified.expires_at)
        self._remember(token, until, verified)
        return verified

    def _remember(self, token: str, until: float, verified: VerifiedToken | None) -> None:
        self._cache[token] = (until, verified)
        self._cache.move_to_end(token)
        while len(self._cache) > 50_000:
            self._cache.popitem(last=False)
