"""Who uses a stored keystore or truststore: the one place that answers it.

Deleting a store that something uses is refused (400 naming the user), and replacing a store that
something uses must leave it usable: loaded, with the key aliases (keystores) or certificate aliases
(truststores) in use, and a JWT signing key still an RSA key. A new kind of user adds its lookup to
:func:`store_users` (authorization servers: :func:`_auth_server_uses`, HTTPS listeners:
:func:`_listener_uses`, routing policy actions' ``sslConfig``: :func:`_routing_uses`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portico.security.keystore.records import KEYSTORE, TRUSTSTORE, read_defaults
from portico.store import StoreTransaction
from portico.store.db import now_ms

# (store name field, key alias field, description) in the /configurations/keystore document
_DEFAULT_KEYSTORES = (
    ("keystoreName", "signingAlias", "the default keystore for inbound connections (/configurations/keystore)"),
    ("outboundKeystoreName", "outboundKeyAlias",
     "the default keystore for outbound connections (/configurations/keystore)"),
)
_DEFAULT_TRUSTSTORES = (
    ("truststoreName", "the default truststore for inbound connections (/configurations/keystore)"),
    ("outboundTruststoreName", "the default truststore for outbound connections (/configurations/keystore)"),
)


JWT_SIGNING = "jwt-signing"  # a key that signs JWTs: RSA, 2048 bits or more


@dataclass(frozen=True)
class StoreUse:
    user: str  # what uses the store, as a person would name it
    key_alias: str | None = None  # the key alias it needs (keystores)
    certificate_alias: str | None = None  # the trusted certificate it needs (truststores)
    purpose: str | None = None  # JWT_SIGNING: the key must be able to sign JWTs


async def store_users(tx: StoreTransaction, kind: str, name: str) -> list[StoreUse]:
    """Everything that references the keystore (``kind`` "keystore") or truststore ``name``."""
    assert kind in (KEYSTORE, TRUSTSTORE)
    uses: list[StoreUse] = []
    defaults = await read_defaults(tx)
    if kind == KEYSTORE:
        for store_field, alias_field, label in _DEFAULT_KEYSTORES:
            if defaults[store_field] == name:
                uses.append(StoreUse(label, defaults[alias_field]))
    else:
        for store_field, label in _DEFAULT_TRUSTSTORES:
            if defaults[store_field] == name:
                uses.append(StoreUse(label))
    uses.extend(await _listener_uses(tx, kind, name))
    uses.extend(await _routing_uses(tx, kind, name))
    for row in await tx.list("alias"):
        body = row.body
        if body.get("type") == "authServerAlias":
            uses.extend(_auth_server_uses(body, kind, name))
            continue
        if body.get("type") != "endpoint":
            continue
        label = f"endpoint alias {body.get('name', row.id)!r}"
        if kind == KEYSTORE and body.get("keystoreAlias") == name:
            uses.append(StoreUse(label, body.get("keyAlias") or None))
        if kind == TRUSTSTORE and body.get("truststoreAlias") == name:
            uses.append(StoreUse(label))
    return uses


def _auth_server_uses(body: dict[str, Any], kind: str, name: str) -> list[StoreUse]:
    """An authorization server's signing/TLS keystore, and its TLS and certificate truststores (issue 5)."""
    label = f"authorization server {body.get('name', body.get('id'))!r}"
    ssl = body.get("sslConfig") or {}
    local = body.get("localIntrospectionConfig") or {}
    if kind == KEYSTORE:
        if ssl.get("keyStoreAlias") != name:
            return []
        purpose = JWT_SIGNING if body.get("authServerType") == "LOCAL_IS" else None
        return [StoreUse(label, ssl.get("keyAlias") or None, purpose=purpose)]
    uses = []
    if ssl.get("trustStoreAlias") == name:
        uses.append(StoreUse(label))
    if local.get("trustStoreAlias") == name:
        uses.append(StoreUse(label, certificate_alias=local.get("certificateAlias") or None))
    return uses


async def _listener_uses(tx: StoreTransaction, kind: str, name: str) -> list[StoreUse]:
    """Running HTTPS listeners started with stores of their own (``portico serve --https-keystore``;
    rows written by ``gateway.tls.ListenerRecord``); listeners on the defaults are covered above.
    A record past its ``expiresAt`` belongs to a node that is gone (killed, crashed): ignored."""
    uses = []
    now = now_ms()
    for row in await tx.list("listener"):
        body = row.body
        if not isinstance(body.get("expiresAt"), int) or body["expiresAt"] < now:
            continue
        label = f"the HTTPS listener on port {body.get('port')}"
        if kind == KEYSTORE and body.get("keystore") == name:
            uses.append(StoreUse(label, body.get("keyAlias") or None))
        if kind == TRUSTSTORE and body.get("truststore") == name:
            uses.append(StoreUse(label))
    return uses


ROUTING_TEMPLATES = ("straightThroughRouting", "loadBalancerRouting", "contextBasedRouting",
                     "contentBasedRouting", "dynamicRouting")


async def _routing_uses(tx: StoreTransaction, kind: str, name: str) -> list[StoreUse]:
    """Routing policy actions whose endpoints' ``sslConfig`` names the store, labelled with the
    API (or global policy) enforcing them."""
    from portico.policies._endpoint import ssl_configs  # the data plane's model of sslConfig
    from portico.policies.base import ConfigError, validate_parameters
    from portico.policies.registry import HANDLERS

    found: list[tuple[str, str, StoreUse]] = []  # (action id, label of the action, use)
    for template in ROUTING_TEMPLATES:
        handler = HANDLERS.get(template)
        if handler is None:
            continue
        for row in await tx.list("policyAction", name=template):
            try:
                config = validate_parameters(handler, row.body.get("parameters", []))
            except ConfigError:
                continue
            names = row.body.get("names") or []
            title = str(names[0].get("value")) if names and isinstance(names[0], dict) else template
            for _, ssl in ssl_configs(config):
                if kind == KEYSTORE and ssl.keyStoreAlias == name:
                    found.append((row.id, f"policy action {title!r} ({row.id})", StoreUse("", ssl.keyAlias)))
                if kind == TRUSTSTORE and ssl.trustStoreAlias == name:
                    found.append((row.id, f"policy action {title!r} ({row.id})", StoreUse("")))
    if not found:
        return []
    owners = await _action_owners(tx, {action_id for action_id, _, _ in found})
    return [StoreUse(f"{label} of {owners.get(action_id, 'no policy')}", use.key_alias)
            for action_id, label, use in found]


async def _action_owners(tx: StoreTransaction, action_ids: set[str]) -> dict[str, str]:
    """Action id -> "API 'name' version" (or "global policy 'name'") for the given actions."""
    by_policy: dict[str, str] = {}
    for row in await tx.list("api"):
        for policy_id in row.body.get("policies") or []:
            by_policy[policy_id] = f"API {row.body.get('apiName')!r} {row.body.get('apiVersion')}"
    owners: dict[str, str] = {}
    for row in await tx.list("policy"):
        ids = {e.get("enforcementObjectId") for s in row.body.get("policyEnforcements") or []
               for e in s.get("enforcements") or []}
        names = row.body.get("names") or []
        title = (names[0].get("value") if names and isinstance(names[0], dict) else None) or row.id
        label = by_policy.get(row.id) or f"{'global ' if row.body.get('global') else ''}policy {title!r}"
        for action_id in ids & action_ids:
            owners.setdefault(action_id, label)
    return owners


def describe(uses: list[StoreUse]) -> str:
    return "; ".join(u.user + (f" (key alias {u.key_alias!r})" if u.key_alias else "")
                     + (f" (certificate {u.certificate_alias!r})" if u.certificate_alias else "") for u in uses)
