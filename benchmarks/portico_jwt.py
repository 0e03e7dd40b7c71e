"""The ``jwt`` scenario: RS256 bearer tokens, 1,000 distinct consumers.

Reference C is HAProxy's ``jwt_verify`` (../shared/bench/haproxy-jwt-peer.cfg, switched here from
its HS256 secret to RS256 with our public key; it verifies the signature on every request and
tracks each consumer in a stick table). Portico gets an EXTERNAL authorization server whose JWKS
this process serves, an API with ``evaluatePolicy`` ``jwtClaims`` (strict) and one application
per consumer, identified by the claim set ``{"sub": "consumer-N"}``. Portico caches verified tokens
until they expire, so after the warm-up every token is a cache hit: the figure is "token cache
warm", as issue 5 asks. Both get the same tokens, rotated per request (wrk-keyfile.lua sends each
line of the tokens file as the Authorization header)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import services
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey
from load import Target, probe
from portico_config import RESOURCE, UPSTREAM, Admin, AdminError, create_api, wait_routable
from services import BENCH_DIR, BenchError

ISSUER = "https://portico-bench.example"
AUDIENCE = "portico-bench"
TOKENS_FILE = BENCH_DIR / "jwt-tokens.txt"  # "Bearer <jwt>" per line
PUBLIC_PEM = BENCH_DIR / "jwt-public.pem"
HAPROXY_CONF = BENCH_DIR / "haproxy-jwt-rs256.cfg"
HAPROXY_PORT = 8081
HEADER = "Authorization"
SERVER_NAME = "benchIssuer"


def make_tokens(count: int) -> RSAKey:
    """A fresh RSA key, its public PEM for HAProxy and ``count`` RS256 tokens (one per consumer)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    PUBLIC_PEM.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    key = RSAKey.import_key(private)
    now = int(time.time())
    header = {"alg": "RS256", "typ": "at+jwt", "kid": key.thumbprint()}
    lines = []
    for n in range(1, count + 1):
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"consumer-{n:06d}", "iat": now, "exp": now + 6 * 3600,
                  "client_id": "bench", "scope": "read"}
        lines.append(f"Bearer {jwt.encode(header, claims, key, algorithms=['RS256'])}\n")
    TOKENS_FILE.write_text("".join(lines))
    return key


class JwksServer:
    """Serves the public key as a JWKS on a loopback port (Portico fetches it once and caches it)."""

    def __init__(self, key: RSAKey) -> None:
        body = json.dumps({"keys": [{**key.as_dict(private=False), "kid": key.thumbprint(), "use": "sig",
                                     "alg": "RS256"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def haproxy_conf(shared: Path) -> Path:
    """The shared reference with jwt_verify switched to RS256 and our public key."""
    text = (shared / "haproxy-jwt-peer.cfg").read_text()
    hs = 'jwt_verify("HS256","bench-secret-32-bytes-xxxxxxxxxxxx")'
    if hs not in text:
        raise BenchError("haproxy-jwt-peer.cfg changed: cannot find its HS256 jwt_verify to switch to RS256")
    text = text.replace(hs, f'jwt_verify("RS256","{PUBLIC_PEM}")')
    # the API-key line needs make-keys.py's map file and plays no part here
    text = "".join(line for line in text.splitlines(keepends=True) if "keys.hamap" not in line)
    # 20,000 connections need more file descriptors than a container may grant; 64 are used
    text = text.replace("  maxconn 20000\n", "  maxconn 8000\n")
    HAPROXY_CONF.write_text(text)
    return HAPROXY_CONF


def start_haproxy(shared: Path, cleanup: Any) -> int:
    if services.port_in_use(HAPROXY_PORT):
        raise BenchError(f"port {HAPROXY_PORT} for HAProxy is taken")
    conf = haproxy_conf(shared)
    print(f"starting reference C (HAProxy jwt_verify RS256, {conf.name}, port {HAPROXY_PORT})", flush=True)
    process = subprocess.Popen(["taskset", "-c", "1", "haproxy", "-f", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    def stop() -> None:
        process.terminate()
        process.wait(10)

    cleanup.add("stop haproxy", stop)
    try:
        services.wait_for_port(HAPROXY_PORT, "haproxy", timeout=5.0)
    except BenchError:
        process.terminate()
        raise BenchError(f"haproxy did not start: {process.communicate(timeout=5)[1].decode()[-1000:]}") from None
    return process.pid


def _app(admin: Admin, api_id: str, n: int) -> None:
    admin.call("POST", "/applications", {
        "name": f"jwt-app-{n:04d}", "version": "1.0", "apiIDs": [api_id],
        "identifiers": [{"key": "jwtClaims", "name": "consumer", "value": [json.dumps({"sub": f"consumer-{n:06d}"})]}]})


def configure(admin: Admin, name: str, count: int, cleanup: Any) -> str:
    """Tokens, the JWKS server, the authorization server, the API and ``count`` applications;
    returns the gateway URL."""
    key = make_tokens(count)
    jwks = JwksServer(key)
    cleanup.add("stop the JWKS server", jwks.close)
    admin.call("POST", "/alias", {"name": SERVER_NAME, "type": "authServerAlias", "authServerType": "EXTERNAL",
                                  "audience": AUDIENCE,
                                  "localIntrospectionConfig": {"issuer": ISSUER, "jwksuri": jwks.url}})
    api_id, policy_id = create_api(admin, name)
    action = {"policyAction": {"names": [{"value": "Identify by JWT claims", "locale": "English"}],
                               "templateKey": "evaluatePolicy", "parameters": [
        {"templateKey": "logicalConnector", "values": ["OR"]},
        {"templateKey": "allowAnonymous", "values": ["false"]},
        {"templateKey": "IdentificationRule", "parameters": [
            {"templateKey": "applicationLookup", "values": ["strict"]},
            {"templateKey": "identificationType", "values": ["jwtClaims"]}]}]}}
    action_id = str(admin.call("POST", "/policyActions", action)["policyAction"]["id"])
    policy = admin.call("GET", f"/policies/{policy_id}")["policy"]
    stages = [s for s in policy.get("policyEnforcements", []) if s.get("stageKey") != "IAM"]
    policy["policyEnforcements"] = [*stages, {"stageKey": "IAM", "enforcements": [
        {"enforcementObjectId": action_id, "order": "0"}]}]
    admin.call("PUT", f"/policies/{policy_id}", {"policy": policy})
    admin.call("PUT", f"/apis/{api_id}/activate")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: _app(admin, api_id, n), range(1, count + 1)))
    url = f"{admin.base_url}/gateway/{name}/1.0{RESOURCE}"
    wait_routable(url, HEADER, TOKENS_FILE.read_text().splitlines()[-1])
    return url


def targets(portico_url: str | None) -> dict[str, Target]:
    result = {"direct": Target("upstream direct", UPSTREAM + RESOURCE, HEADER, TOKENS_FILE),
              "reference": Target("C haproxy jwt_verify", f"http://127.0.0.1:{HAPROXY_PORT}/jwt", HEADER, TOKENS_FILE)}
    if portico_url:
        result["portico"] = Target("portico", portico_url, HEADER, TOKENS_FILE)
    return result


def check(roles: dict[str, Target]) -> None:
    """Every target serves a good token; the gateways refuse none, a forged one and a stranger's."""
    token = TOKENS_FILE.read_text().split("\n", 1)[0]
    head, body, _ = token.split(".")
    for role, target in roles.items():
        if (status := probe(target.url, HEADER, token)) != 200:
            raise BenchError(f"{target.label} ({target.url}) answered {status} instead of 200")
        if role == "direct":
            continue
        for sent in (None, f"{head}.{body}.AAAA"):
            if (refused := probe(target.url, HEADER, sent)) not in (401, 403):
                raise AdminError(f"{target.label} answered {refused} to a bad token, expected 401/403")
