"""The federation agent's configuration: the reference agent's YAML tree and its environment-variable
form (``gravitee_integration_providers_0_configuration_region`` is ``integration.providers[0]
.configuration.region``), validated once into typed, read-only settings.

Environment variables override the YAML file. Names are matched case-insensitively, so
``GRAVITEE_INTEGRATION_PROVIDERS_0_TYPE`` works too. A missing or invalid setting raises
:class:`AgentConfigError` naming it."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from portico.federation.aws import PROVIDER_TYPE as AWS
from portico.federation.aws import AwsSettings

ENV_PREFIX = "gravitee_"
PROVIDER_TYPES = (AWS,)
_TRUSTSTORE_TYPES = ("JKS", "PKCS12", "PEM")


class AgentConfigError(ValueError):
    """The agent cannot start with this configuration; the message names the setting."""


@dataclass(frozen=True)
class Truststore:
    type: str
    path: Path
    password: str | None = None


@dataclass(frozen=True)
class Connector:
    endpoints: tuple[str, ...]  # WebSocket URLs (ws:// or wss://)
    headers: tuple[tuple[str, str], ...] = ()
    truststore: Truststore | None = None
    tls: ssl.SSLContext | None = field(default=None, compare=False)  # built from the truststore at load


@dataclass(frozen=True)
class Provider:
    type: str
    integration_id: str
    aws: AwsSettings


@dataclass(frozen=True)
class Health:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 18084
    users: Mapping[str, str] = field(default_factory=dict)  # basic-auth users; empty: no authentication
    prometheus: bool = False


@dataclass(frozen=True)
class AgentConfig:
    connector: Connector
    providers: tuple[Provider, ...]
    health: Health


# -- building the tree ----------------------------------------------------------------------------

def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _put(tree: dict[str, Any], parts: list[str], value: str, name: str) -> None:
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit():
                raise AgentConfigError(f"{name}: expected an index after a list setting, got {part!r}")
            index = int(part)
            while len(node) <= index:
                node.append(None)
            if last:
                node[index] = value
            else:
                if node[index] is None:
                    node[index] = [] if parts[i + 1].isdigit() else {}
                node = node[index]
        else:
            if not isinstance(node, dict):
                raise AgentConfigError(f"{name}: conflicts with another setting")
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if child is None:
                    child = [] if parts[i + 1].isdigit() else {}
                    node[part] = child
                elif isinstance(child, list) != parts[i + 1].isdigit():
                    expected = "an index" if isinstance(child, list) else "a name"
                    raise AgentConfigError(f"{name}: expected {expected} after {part!r}, got {parts[i + 1]!r}")
                node = child


def tree_from(env: Mapping[str, str], yaml_text: str | None = None) -> dict[str, Any]:
    """The configuration tree (keys lower-cased): the YAML document, overridden by the environment."""
    tree: dict[str, Any] = {}
    if yaml_text:
        try:
            loaded = yaml.safe_load(yaml_text)
        except yaml.YAMLError as exc:
            raise AgentConfigError(f"configuration file: not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise AgentConfigError("configuration file: the top level must be a mapping")
        tree = _lower_keys(loaded or {})
    for name in sorted(env):
        if name.lower().startswith(ENV_PREFIX):
            parts = name[len(ENV_PREFIX):].lower().split("_")
            if all(parts):
                _put(tree, parts, env[name], name)
    return tree


# -- validation -----------------------------------------------------------------------------------

def _get(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _env_name(*path: str | int) -> str:
    return ENV_PREFIX + "_".join(str(p) for p in path)


def _text(value: Any, name: str, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise AgentConfigError(f"{name}: required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AgentConfigError(f"{name}: must be a string")
    return str(value).strip()


def _bool(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise AgentConfigError(f"{name}: must be true or false, got {value!r}")


def _list(value: Any, name: str) -> list[str]:
    """A list from YAML, or a comma-separated string (the environment form)."""
    if value is None:
        return []
    if isinstance(value, list):
        items = [_text(v, name) for v in value if v is not None]
        return [i for i in items if i]
    text = _text(value, name, required=False) or ""
    return [part.strip() for part in text.split(",") if part.strip()]


def _ws_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise AgentConfigError(f"{name}: must be an http(s):// or ws(s):// URL, got {url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path or "/integration-controller", parts.query, ""))


def _connector(tree: dict[str, Any]) -> Connector:
    ws = _get(tree, "integration", "connector", "ws") or {}
    base = ("integration", "connector", "ws")
    endpoints = _list(_get(ws, "endpoints"), _env_name(*base, "endpoints", 0))
    if not endpoints:
        raise AgentConfigError(f"{_env_name(*base, 'endpoints', 0)}: at least one management API endpoint is required")
    urls = tuple(_ws_url(e, _env_name(*base, "endpoints", i)) for i, e in enumerate(endpoints))
    headers: list[tuple[str, str]] = []
    raw_headers = _get(ws, "headers") or []
    if not isinstance(raw_headers, list):
        raise AgentConfigError(f"{_env_name(*base, 'headers', 0, 'name')}: headers must be a list")
    for i, header in enumerate(raw_headers):
        if header is None:
            continue
        if not isinstance(header, dict):
            raise AgentConfigError(f"{_env_name(*base, 'headers', i, 'name')}: must have a name and a value")
        hname = _text(header.get("name"), _env_name(*base, "headers", i, "name"))
        hvalue = _text(header.get("value"), _env_name(*base, "headers", i, "value"))
        assert hname is not None and hvalue is not None
        headers.append((hname, hvalue))
    truststore = None
    ts = _get(ws, "ssl", "truststore")
    if ts:
        tname = _env_name(*base, "ssl", "truststore")
        kind = (_text(ts.get("type"), f"{tname}_type") or "").upper()
        if kind not in _TRUSTSTORE_TYPES:
            raise AgentConfigError(f"{tname}_type: one of {', '.join(_TRUSTSTORE_TYPES)}, got {kind!r}")
        path = Path(_text(ts.get("path"), f"{tname}_path") or "")
        if not path.is_file():
            raise AgentConfigError(f"{tname}_path: no such file {str(path)!r}")
        truststore = Truststore(kind, path, _text(ts.get("password"), f"{tname}_password", required=False))
    tls = trusting(truststore, tname) if truststore is not None else None
    return Connector(urls, tuple(headers), truststore, tls)


def trusting(ts: Truststore, setting: str) -> ssl.SSLContext:
    """A client TLS context trusting the truststore's certificates, built once at start: a file that
    cannot be read, a wrong password or a store with no certificate is an AgentConfigError naming
    ``<setting>_path`` or ``<setting>_password`` (not a failure at the first connection)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from portico.security.keystore.errors import KeystoreError
    from portico.security.keystore.formats import open_store

    try:
        opened = open_store(ts.path.read_bytes(), ts.type, ts.password or "")
    except (KeystoreError, OSError, ValueError) as exc:
        raise AgentConfigError(f"{setting}_path: {str(ts.path)!r} is not a readable {ts.type} truststore "
                               f"({exc})") from None
    if opened.password_error:
        raise AgentConfigError(f"{setting}_password: the {ts.type} truststore {str(ts.path)!r} cannot be "
                               f"opened with this password ({opened.password_error})")
    if not opened.trusted:
        raise AgentConfigError(f"{setting}_path: the {ts.type} truststore {str(ts.path)!r} holds no trusted "
                               "certificate")
    pem = "".join(cert.public_bytes(Encoding.PEM).decode() for cert in opened.trusted.values())
    try:
        return ssl.create_default_context(cadata=pem)
    except ssl.SSLError as exc:
        raise AgentConfigError(f"{setting}_path: the certificates of {str(ts.path)!r} are not usable "
                               f"({exc})") from None


def _provider(raw: Any, index: int) -> Provider:
    base = ("integration", "providers", index)
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{_env_name(*base, 'type')}: provider {index} is not a mapping")
    kind = _text(raw.get("type"), _env_name(*base, "type"))
    if kind not in PROVIDER_TYPES:
        raise AgentConfigError(f"{_env_name(*base, 'type')}: unknown provider type {kind!r}; "
                               f"supported: {', '.join(PROVIDER_TYPES)}")
    integration_id = _text(raw.get("integrationid"), _env_name(*base, "integrationId"))
    assert integration_id is not None
    conf = raw.get("configuration") or {}
    if not isinstance(conf, dict):
        raise AgentConfigError(f"{_env_name(*base, 'configuration')}: must be a mapping")

    def name(key: str) -> str:
        return _env_name(*base, "configuration", key)

    regions = tuple(_list(conf.get("region"), name("region")))
    if not regions:
        raise AgentConfigError(f"{name('region')}: at least one AWS region is required")
    key_id = _text(conf.get("accesskeyid"), name("accessKeyId"), required=False)
    secret = _text(conf.get("secretaccesskey"), name("secretAccessKey"), required=False)
    if bool(key_id) != bool(secret):
        missing = "secretAccessKey" if key_id else "accessKeyId"
        raise AgentConfigError(f"{name(missing)}: accessKeyId and secretAccessKey go together")
    endpoint = _text(conf.get("endpointurl"), name("endpointUrl"), required=False)
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise AgentConfigError(f"{name('endpointUrl')}: must be an http(s):// URL")
    aws = AwsSettings(
        regions=regions, access_key_id=key_id, secret_access_key=secret,
        session_token=_text(conf.get("sessiontoken"), name("sessionToken"), required=False),
        role_arns=tuple(_list(conf.get("rolearn"), name("roleArn"))),
        accept_api_without_usage_plan=_bool(conf.get("acceptapiwithoutusageplan"),
                                            name("acceptApiWithoutUsagePlan"), False),
        endpoint_url=endpoint,
    )
    return Provider(kind, integration_id, aws)


def _health(tree: dict[str, Any]) -> Health:
    http = _get(tree, "services", "core", "http") or {}
    base = ("services", "core", "http")
    port_text = _text(http.get("port"), _env_name(*base, "port"), required=False)
    try:
        port = int(port_text) if port_text is not None else 18084
    except ValueError:
        raise AgentConfigError(f"{_env_name(*base, 'port')}: must be a port number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise AgentConfigError(f"{_env_name(*base, 'port')}: must be a port number, got {port}")
    users = _get(http, "authentication", "users") or {}
    if not isinstance(users, dict):
        raise AgentConfigError(f"{_env_name(*base, 'authentication', 'users')}: must map user names to passwords")
    return Health(
        enabled=_bool(http.get("enabled"), _env_name(*base, "enabled"), True),
        host=_text(http.get("host"), _env_name(*base, "host"), required=False) or "0.0.0.0",
        port=port,
        users={str(k): str(v) for k, v in users.items()},
        prometheus=_bool(_get(tree, "services", "metrics", "prometheus", "enabled"),
                         _env_name("services", "metrics", "prometheus", "enabled"), False),
    )


def load(env: Mapping[str, str], yaml_text: str | None = None) -> AgentConfig:
    tree = tree_from(env, yaml_text)
    raw_providers = _get(tree, "integration", "providers") or []
    if not isinstance(raw_providers, list):
        raise AgentConfigError(f"{_env_name('integration', 'providers', 0, 'type')}: providers must be a list")
    providers = tuple(_provider(p, i) for i, p in enumerate(raw_providers) if p is not None)
    if not providers:
        raise AgentConfigError(f"{_env_name('integration', 'providers', 0, 'type')}: at least one provider is required")
    ids = [p.integration_id for p in providers]
    if len(set(ids)) != len(ids):
        raise AgentConfigError("integration.providers: each provider needs its own integrationId")
    return AgentConfig(_connector(tree), providers, _health(tree))
