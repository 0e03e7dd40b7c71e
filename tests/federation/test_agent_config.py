from __future__ import annotations

import pytest

from portico.federation.agent_config import AgentConfigError, load, tree_from

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
