"""The token-validation core: JWT checks (algorithms, keys, times, issuer, audience), the verified
token cache, JWKS key caching with bounded refresh, and remote introspection against a real server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from portico.oauth.validate import AnyKey, JwksKeys, JwtVerifier, RemoteIntrospector, StaticKeys, TokenError
from tests.support.oauth_server import INTROSPECTOR, OAuthServerState, running_oauth_server


@pytest.fixture(scope="module")
def auth_server() -> Iterator[OAuthServerState]:
    with running_oauth_server() as state:
        yield state


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)))


def _verifier(state: OAuthServerState, **kwargs: Any) -> JwtVerifier:
    keys: dict[str, AnyKey] = {state.keys[0].thumbprint(): state.keys[0]}
    return JwtVerifier(issuer=state.issuer, keys=StaticKeys(keys), **kwargs)


def _claims(state: OAuthServerState, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": state.issuer, "sub": "s", "exp": now + 300, "iat": now, **overrides}


async def test_a_good_token_verifies_and_is_cached(auth_server: OAuthServerState) -> None:
    verifier = _verifier(auth_server)
    token = auth_server.sign(scope="read write")
    verified = await verifier.verify(token)
    assert verified.client_id == "ext-client" and verified.scopes == {"read", "write"}
    assert len(verifier.cache) == 1
    # the cached answer still enforces expiry
    with pytest.raises(TokenError) as err:
        await verifier.verify(token, now=time.time() + 3600)
    assert err.value.key == "expired"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", _b64(b"{}") + "." + _b64(b"[]") + ".x",
                                   _b64(b"not json") + "." + _b64(b"{}") + ".x"])
async def test_malformed_tokens_are_refused(auth_server: OAuthServerState, token: str) -> None:
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(token)
    assert err.value.key in ("malformed", "algorithm")


async def test_alg_none_is_refused(auth_server: OAuthServerState) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT"}, _claims(auth_server))
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(token)
    assert err.value.key == "algorithm"


async def test_hs256_signed_with_the_public_key_is_refused(auth_server: OAuthServerState) -> None:
    """The classic confusion: HMAC with the RSA public key (PEM or JWK bytes) as the secret."""
    public_pem = auth_server.keys[0].as_pem(private=False)
    header = {"alg": "HS256", "kid": auth_server.keys[0].thumbprint()}
    signing_input = ".".join((_b64(json.dumps(header).encode()), _b64(json.dumps(_claims(auth_server)).encode())))
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(signing_input + "." + _b64(mac))
    assert err.value.key == "algorithm"
    # even with a verifier that (wrongly) allowed HS256, an RSA key never verifies an HMAC
    loose = _verifier(auth_server, algorithms=frozenset({"HS256", "RS256"}))
    with pytest.raises(TokenError) as err:
        await loose.verify(signing_input + "." + _b64(mac))
    assert err.value.key == "algorithm"
    # a proper HS256 token made by someone who knows a secret is refused as well
    hs = jwt.encode({"alg": "HS256"}, _claims(auth_server), OctKey.import_key("x" * 32))
    with pytest.raises(TokenError):
        await _verifier(auth_server).verify(hs)


async def test_an_ec_token_against_an_rsa_issuer_does_not_fit(auth_server: OAuthServerState) -> None:
    ec_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    token = jwt.encode({"alg": "ES256", "kid": auth_server.keys[0].thumbprint()}, _claims(auth_server), ec_key)
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(token)
    assert err.value.key == "algorithm"


async def test_wrong_key_and_tampered_payload_fail_the_signature(auth_server: OAuthServerState) -> None:
    other = auth_server.new_key()
    forged = auth_server.sign(key=other, kid=auth_server.keys[0].thumbprint())
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(forged)
    assert err.value.key == "signature"
    good = auth_server.sign()
    head, _, sig = good.split(".")
    tampered = ".".join((head, _b64(json.dumps(_claims(auth_server, sub="admin")).encode()), sig))
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(tampered)
    assert err.value.key == "signature"


# times relative to when the test runs (a long suite run must not turn "in 10 minutes" into the past)
@pytest.mark.parametrize(("overrides", "key"), [
    ({"exp": -120}, "expired"),
    ({"nbf": 600}, "not_yet_valid"),
    ({"iat": 600}, "not_yet_valid"),
    ({"iss": "https://someone-else"}, "issuer"),
    ({"exp": None}, "malformed"),
    ({"exp": "tomorrow"}, "malformed"),
])
async def test_claims_are_checked(auth_server: OAuthServerState, overrides: dict[str, Any], key: str) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {
        name: now + value if name in ("exp", "nbf", "iat") and isinstance(value, int) else value
        for name, value in overrides.items()}
    with pytest.raises(TokenError) as err:
        await _verifier(auth_server).verify(auth_server.sign(**claims))
    assert err.value.key == key


async def test_clock_skew_is_allowed_on_both_sides(auth_server: OAuthServerState) -> None:
    now = int(time.time())
    verifier = _verifier(auth_server, leeway=60)
    await verifier.verify(auth_server.sign(exp=now - 30))
    await verifier.verify(auth_server.sign(nbf=now + 30))
    with pytest.raises(TokenError):
        await verifier.verify(auth_server.sign(exp=now - 90))


async def test_audience_when_configured(auth_server: OAuthServerState) -> None:
    verifier = _verifier(auth_server, audience="portico-tests")
    await verifier.verify(auth_server.sign(aud=["x", "portico-tests"]))
    with pytest.raises(TokenError) as err:
        await verifier.verify(auth_server.sign(aud="someone-else"))
    assert err.value.key == "audience"


async def test_jwks_keys_are_cached_refreshed_on_unknown_kid_and_bounded() -> None:
    with running_oauth_server() as state:
        async with httpx.AsyncClient() as client:
            async def fetch(url: str) -> Any:
                return (await client.get(url)).json()

            keys = JwksKeys(f"{state.issuer}/jwks", fetch, min_refresh=0.5)
            verifier = JwtVerifier(issuer=state.issuer, keys=keys)
            await verifier.verify(state.sign())
            await verifier.verify(state.sign(sub="other"))
            assert state.jwks_fetches == 1  # cached by kid
            # rotation: the new kid is unknown, the document is fetched again
            await asyncio.sleep(0.6)
            state.rotate()
            await verifier.verify(state.sign())
            assert state.jwks_fetches == 2
            # made-up kids do not make a fetch each: at most one per min_refresh
            for n in range(20):
                with pytest.raises(TokenError) as err:
                    await verifier.verify(state.sign(kid=f"made-up-{n}"))
                assert err.value.key == "unknown_key"
            assert state.jwks_fetches <= 3


async def test_remote_introspection_is_cached(auth_server: OAuthServerState) -> None:
    async with httpx.AsyncClient() as client:
        introspector = RemoteIntrospector(f"{auth_server.issuer}/introspect", *INTROSPECTOR, client)
        token = auth_server.issue_opaque("ext-client", "read")
        verified = await introspector.introspect(token)
        assert verified.client_id == "ext-client" and verified.scopes == {"read"}
        await introspector.introspect(token)
        assert introspector.calls == 1
        with pytest.raises(TokenError) as err:
            await introspector.introspect("unknown-token")
        assert err.value.key == "inactive"
        wrong = RemoteIntrospector(f"{auth_server.issuer}/introspect", "introspector", "wrong", client)
        with pytest.raises(TokenError) as err:
            await wrong.introspect(token)
        assert err.value.key == "unavailable"
