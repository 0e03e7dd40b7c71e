from __future__ import annotations

from typing import Any

import pytest

from portico.federation.aws import AwsProvider, AwsSettings, ProviderError
from tests.support.aws import CREDS, apigw, aws_proxy, make_api, make_usage_plan


def provider(endpoint: str, *regions: str, accept_all: bool = False, creds: dict[str, str] = CREDS) -> AwsProvider:
    return AwsProvider(AwsSettings(regions=regions or ("eu-west-1",), access_key_id=creds["aws_access_key_id"],
                                   secret_access_key=creds["aws_secret_access_key"], endpoint_url=endpoint,
                                   accept_api_without_usage_plan=accept_all))


def by_name(apis: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{a['name']}/{a['version']}": a for a in apis}


def test_discovers_only_apis_in_usage_plans_by_default(fresh: str) -> None:
    c = apigw(fresh)
    orders = make_api(c, "orders", stages=("prod", "dev"))
    make_api(c, "loose")
    plan = make_usage_plan(c, "gold", [(orders, "prod")], rate=5, burst=7, quota=100, period="DAY")
    found = provider(fresh).discover()
    assert not found.partial, found.errors
    apis = by_name(found.apis)
    assert list(apis) == ["orders/prod"]
    api = apis["orders/prod"]
    assert api["uniqueId"].endswith(f":eu-west-1:{orders}:prod")
    assert api["connectionDetails"]["invokeUrl"] == f"https://{orders}.execute-api.eu-west-1.amazonaws.com/prod"
    assert "pages" not in api  # the listing pass fetches no definitions
    (exported,), errors = provider(fresh).export([api])
    assert errors == [] and exported["uniqueId"] == api["uniqueId"]
    assert exported["pages"][0]["pageType"] == "SWAGGER" and '"paths"' in exported["pages"][0]["content"]
    (p,) = api["plans"]
    assert p["id"] == plan and p["name"] == "gold"
    assert p["limits"] == {"rateLimit": 5.0, "burstLimit": 7, "quotaLimit": 100, "quotaPeriod": "DAY", "quotaOffset": 0}

    all_apis = by_name(provider(fresh, accept_all=True).discover().apis)
    assert set(all_apis) == {"orders/prod", "orders/dev", "loose/prod"}
    assert all_apis["loose/prod"]["plans"] == []


def test_two_regions_are_scanned(fresh: str) -> None:
    make_usage_plan(apigw(fresh, "eu-west-1"), "p1", [(make_api(apigw(fresh, "eu-west-1"), "a"), "prod")])
    make_usage_plan(apigw(fresh, "us-east-1"), "p2", [(make_api(apigw(fresh, "us-east-1"), "b"), "prod")])
    found = provider(fresh, "eu-west-1", "us-east-1").discover()
    regions = {a["name"]: a["connectionDetails"]["region"] for a in found.apis}
    assert regions == {"a": "eu-west-1", "b": "us-east-1"}


def test_discovery_follows_pagination(fresh: str) -> None:
    c = apigw(fresh)
    ids = [make_api(c, f"api{i}") for i in range(7)]
    for i in range(5):
        make_usage_plan(c, f"plan{i}", [(ids[i], "prod")])
    with aws_proxy(fresh, page_size=2) as proxied:
        found = provider(proxied, accept_all=True).discover()
        assert sorted(a["name"] for a in found.apis) == [f"api{i}" for i in range(7)]
        assert sum(len(a["plans"]) for a in found.apis) == 5
        # without following the pages only the first two APIs would be seen
        assert len(apigw(proxied).get_rest_apis()["items"]) == 2


def test_subscribe_creates_an_enabled_key_in_the_usage_plan_and_retries_do_not_duplicate(fresh: str) -> None:
    c = apigw(fresh)
    api_id = make_api(c, "orders")
    plan = make_usage_plan(c, "gold", [(api_id, "prod")])
    (api,) = provider(fresh).discover().apis
    sub = {"id": "sub-1", "applicationId": "app-1", "applicationName": "shop", "planId": plan}
    first = provider(fresh).subscribe(api["connectionDetails"], sub)
    again = provider(fresh).subscribe(api["connectionDetails"], sub)
    assert first["apiKey"] == again["apiKey"]
    keys = c.get_api_keys(includeValues=True)["items"]
    assert len(keys) == 1 and keys[0]["enabled"] and keys[0]["value"] == first["apiKey"]
    assert keys[0]["tags"]["portico-subscription"] == "sub-1"
    assert [k["id"] for k in c.get_usage_plan_keys(usagePlanId=plan)["items"]] == [keys[0]["id"]]

    provider(fresh).unsubscribe(first["metadata"])
    assert c.get_api_keys()["items"] == []
    provider(fresh).unsubscribe(first["metadata"])  # already gone: done


def test_failed_attach_deletes_the_new_key_and_reports_the_provider_message(fresh: str) -> None:
    c = apigw(fresh)
    api_id = make_api(c, "orders")
    plan = make_usage_plan(c, "gold", [(api_id, "prod")])
    (api,) = provider(fresh).discover().apis
    with aws_proxy(fresh, fail_attach=True) as proxied, pytest.raises(ProviderError) as err:
        provider(proxied).subscribe(api["connectionDetails"], {"id": "s", "planId": plan})
    assert "NotFoundException: Invalid Usage Plan ID specified" in str(err.value)
    assert c.get_api_keys()["items"] == []


def test_discovery_lists_without_get_export_and_export_reports_each_failure(fresh: str) -> None:
    c = apigw(fresh)
    ids = [make_api(c, f"api{i}") for i in range(3)]
    make_usage_plan(c, "gold", [(i, "prod") for i in ids])
    with aws_proxy(fresh, deny=(("GET", r"^/restapis/[^/]+/stages/[^/]+/exports/"),)) as proxied:
        found = provider(proxied).discover()  # a GetExport would fail: the listing makes none
        assert not found.partial and len(found.apis) == 3
        exported, errors = provider(proxied).export(found.apis)
    assert exported == [] and len(errors) == 3
    assert all("could not be exported" in e and "AccessDeniedException" in e for e in errors)


def test_a_retried_subscribe_gets_the_same_key_within_the_minimum_permissions(fresh: str) -> None:
    """Without GET /apikeys (beyond the reference's minimum policy) the provider still does not make
    a second key for a retry of the same subscription: it remembers the keys it issued."""
    c = apigw(fresh)
    plan = make_usage_plan(c, "gold", [(make_api(c, "orders"), "prod")])
    with aws_proxy(fresh, deny=(("GET", r"^/apikeys$"),)) as proxied:
        aws = provider(proxied)
        (api,) = aws.discover().apis
        sub = {"id": "sub-1", "applicationId": "app-1", "applicationName": "shop", "planId": plan}
        first = aws.subscribe(api["connectionDetails"], sub)
        again = aws.subscribe(api["connectionDetails"], sub)
        assert first == again
        assert len(c.get_api_keys()["items"]) == 1
        # a key deleted behind its back is not handed out again: a new one is made
        c.delete_api_key(apiKey=first["metadata"]["apiKeyId"])
        third = aws.subscribe(api["connectionDetails"], sub)
        assert third["apiKey"] != first["apiKey"]
        assert [k["value"] for k in c.get_api_keys(includeValues=True)["items"]] == [third["apiKey"]]
        aws.unsubscribe(third["metadata"])  # forgotten: the next subscribe makes a new key
        fourth = aws.subscribe(api["connectionDetails"], sub)
        assert fourth["apiKey"] != third["apiKey"] and len(c.get_api_keys()["items"]) == 1


def test_unreachable_provider_is_a_partial_discovery_with_the_error() -> None:
    found = provider("http://127.0.0.1:9").discover()
    assert found.partial and found.apis == []
