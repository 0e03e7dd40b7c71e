from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from portico.federation.agent_config import AgentConfigError, load, tree_from
from tests.support.keystores import P12_PASS, TRUST_PASS, keystore_fixtures

BASE = {
    "gravitee_integration_connector_ws_endpoints_0": "https://mgmt.example.com/integration-controller",
    "gravitee_integration_connector_ws_headers_0_name": "Authorization",
    "gravitee_integration_connector_ws_headers_0_value": "bearer tok",
    "gravitee_integration_providers_0_type": "aws-api-gateway",
    "gravitee_integration_providers_0_integrationId": "int-1",
    "gravitee_integration_providers_0_configuration_accessKeyId": "AKIA",
    "gravitee_integration_providers_0_configuration_secretAccessKey": "secret",
    "gravitee_integration_providers_0_configuration_region": "eu-west-1, us-east-1",
    "gravitee_integration_providers_0_configuration_acceptApiWithoutUsagePlan": "true",
}


def test_reference_environment_variables() -> None:
    cfg = load(BASE)
    assert cfg.connector.endpoints == ("wss://mgmt.example.com/integration-controller",)
    assert cfg.connector.headers == (("Authorization", "bearer tok"),)
    (p,) = cfg.providers
    assert p.type == "aws-api-gateway" and p.integration_id == "int-1"
    assert p.aws.regions == ("eu-west-1", "us-east-1")
    assert p.aws.access_key_id == "AKIA" and p.aws.accept_api_without_usage_plan
    assert cfg.health.port == 18084 and cfg.health.enabled


def test_plain_http_endpoint_uses_ws_and_upper_case_names_work() -> None:
    env = {k.upper(): v for k, v in BASE.items()}
    env["GRAVITEE_INTEGRATION_CONNECTOR_WS_ENDPOINTS_0"] = "http://127.0.0.1:5555/integration-controller"
    assert load(env).connector.endpoints == ("ws://127.0.0.1:5555/integration-controller",)


def test_yaml_tree_with_several_providers_and_env_override() -> None:
    text = """
services:
  core:
    http: {enabled: true, port: 18085, host: 127.0.0.1, authentication: {type: basic, users: {admin: adminadmin}}}
integration:
  connector:
    ws:
      endpoints: [https://mgmt/integration-controller]
      headers: [{name: Authorization, value: bearer t}]
  providers:
    - type: aws-api-gateway
      integrationId: a
      configuration: {region: eu-west-1, roleArn: "arn:aws:iam::1:role/x,arn:aws:iam::2:role/y"}
    - type: aws-api-gateway
      integrationId: b
      configuration: {region: [us-east-1, us-west-2], endpointUrl: "http://127.0.0.1:5000"}
"""
    cfg = load({"gravitee_integration_providers_1_configuration_region": "ap-south-1"}, text)
    assert [p.integration_id for p in cfg.providers] == ["a", "b"]
    assert cfg.providers[0].aws.role_arns == ("arn:aws:iam::1:role/x", "arn:aws:iam::2:role/y")
    assert cfg.providers[0].aws.access_key_id is None  # the default credential chain
    assert cfg.providers[1].aws.regions == ("ap-south-1",)
    assert cfg.providers[1].aws.endpoint_url == "http://127.0.0.1:5000"
    assert cfg.health.port == 18085 and cfg.health.users == {"admin": "adminadmin"}


@pytest.mark.parametrize(("change", "named"), [
    ({"gravitee_integration_connector_ws_endpoints_0": ""}, "ws_endpoints_0"),
    ({"gravitee_integration_connector_ws_endpoints_0": "ftp://x"}, "ws_endpoints_0"),
    ({"gravitee_integration_providers_0_type": "azure"}, "providers_0_type"),
    ({"gravitee_integration_providers_0_integrationId": ""}, "providers_0_integrationId"),
    ({"gravitee_integration_providers_0_configuration_region": " "}, "configuration_region"),
    ({"gravitee_integration_providers_0_configuration_secretAccessKey": ""}, "secretAccessKey"),
    ({"gravitee_integration_providers_0_configuration_acceptApiWithoutUsagePlan": "yes"}, "acceptApiWithoutUsagePlan"),
    ({"gravitee_services_core_http_port": "http"}, "services_core_http_port"),
    ({"gravitee_integration_connector_ws_headers_0_value": ""}, "headers_0_value"),
])
def test_bad_settings_name_the_setting(change: dict[str, str], named: str) -> None:
    with pytest.raises(AgentConfigError) as err:
        load({**BASE, **change})
    assert named in str(err.value)


def test_no_provider_and_bad_yaml() -> None:
    env = {k: v for k, v in BASE.items() if "providers" not in k}
    with pytest.raises(AgentConfigError, match="providers_0_type"):
        load(env)
    with pytest.raises(AgentConfigError, match="YAML"):
        load({}, "integration: [unclosed")
    with pytest.raises(AgentConfigError, match="index"):
        tree_from({"gravitee_integration_providers_x_type": "aws-api-gateway",
                   "gravitee_integration_providers_0_type": "aws-api-gateway"})


_TS = "gravitee_integration_connector_ws_ssl_truststore"


def _with_truststore(kind: str, path: Path, password: str | None = None) -> dict[str, str]:
    env = {**BASE, f"{_TS}_type": kind, f"{_TS}_path": str(path)}
    if password is not None:
        env[f"{_TS}_password"] = password
    return env


def test_truststores_are_loaded_at_start(tmp_path: Path) -> None:
    fx = keystore_fixtures()
    (tmp_path / "trust.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        None, None, None, [fx.ca], serialization.BestAvailableEncryption(P12_PASS.encode())))
    for kind, path, password in (("PEM", fx.path("ca.pem"), None), ("JKS", fx.path("trust.jks"), TRUST_PASS),
                                 ("PKCS12", tmp_path / "trust.p12", P12_PASS)):
        cfg = load(_with_truststore(kind, path, password))
        assert isinstance(cfg.connector.tls, ssl.SSLContext), kind
        assert cfg.connector.tls.get_ca_certs(), kind


def test_bad_truststores_stop_the_agent_naming_the_setting(tmp_path: Path) -> None:
    fx = keystore_fixtures()
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x30\x03\x02\x01\x09 not a keystore")
    key_pem = tmp_path / "key.pem"
    key_pem.write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    text_file = tmp_path / "notes.pem"
    text_file.write_text("just some text")
    cases = [
        (_with_truststore("PKCS12", fx.path("server.p12"), "wrong"), f"{_TS}_password"),
        (_with_truststore("JKS", fx.path("trust.jks"), "wrong"), f"{_TS}_password"),
        (_with_truststore("PKCS12", garbage, "x"), f"{_TS}_path"),
        (_with_truststore("JKS", fx.path("server.p12"), P12_PASS), f"{_TS}_path"),
        (_with_truststore("PEM", text_file), f"{_TS}_path"),
        (_with_truststore("PEM", key_pem), f"{_TS}_path"),
        (_with_truststore("PKCS12", tmp_path / "missing.p12", "x"), f"{_TS}_path"),
        (_with_truststore("BKS", fx.path("trust.jks"), TRUST_PASS), f"{_TS}_type"),
    ]
    for env, named in cases:
        with pytest.raises(AgentConfigError) as err:
            load(env)
        assert named in str(err.value), (env[f"{_TS}_path"], str(err.value))
