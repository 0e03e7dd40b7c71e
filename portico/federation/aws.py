"""The AWS API Gateway provider of the federation agent: discovery and API-key subscriptions.

Calls stay within the reference agent's minimum permissions (GET /restapis, /restapis/*,
/restapis/*/stages/*, /usageplans; POST /apikeys, /usageplans/*/keys; DELETE /apikeys/*) plus
GetExport, and STS (GetCallerIdentity, AssumeRole when roles are configured). boto3 is
synchronous: the agent runs these methods in worker threads."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("portico.federation.aws")
PROVIDER_TYPE = "aws-api-gateway"
_TAG_SUBSCRIPTION = "portico-subscription"
_TAG_APPLICATION = "portico-application"


class ProviderError(Exception):
    """A provider call failed; the message is the provider's, fit for the subscriber."""


@dataclass(frozen=True)
class AwsSettings:
    regions: tuple[str, ...]
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    role_arns: tuple[str, ...] = ()
    accept_api_without_usage_plan: bool = False
    endpoint_url: str | None = None  # another AWS endpoint (moto, a VPC endpoint); our addition


@dataclass
class _Account:
    account_id: str
    session: Any  # boto3.Session


@dataclass
class Discovery:
    apis: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.errors)


def _message(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, text = str(err.get("Code", "Error")), str(err.get("Message", exc))
        if text.lstrip().startswith("<"):  # an XML error body where JSON was expected (IAM denials)
            found = re.search(r"<Code>([^<]*)</Code>.*?<Message>([^<]*)</Message>", text, re.S)
            if found:
                code, text = found.group(1), found.group(2)
        return f"{code}: {text}"
    return str(exc) or type(exc).__name__


def _plan(usage_plan: dict[str, Any]) -> dict[str, Any]:
    throttle = usage_plan.get("throttle") or {}
    quota = usage_plan.get("quota") or {}
    limits: dict[str, Any] = {}
    characteristics: list[str] = []
    if "rateLimit" in throttle:
        limits["rateLimit"] = float(throttle["rateLimit"])
        characteristics.append(f"rate {throttle['rateLimit']}/s")
    if "burstLimit" in throttle:
        limits["burstLimit"] = int(throttle["burstLimit"])
        characteristics.append(f"burst {throttle['burstLimit']}")
    if "limit" in quota:
        limits["quotaLimit"] = int(quota["limit"])
        limits["quotaPeriod"] = str(quota.get("period", "MONTH"))
        limits["quotaOffset"] = int(quota.get("offset", 0))
        characteristics.append(f"quota {quota['limit']} per {str(quota.get('period', 'MONTH')).lower()}")
    return {
        "id": usage_plan["id"],
        "name": usage_plan.get("name") or usage_plan["id"],
        "description": usage_plan.get("description", ""),
        "planSecurityType": "API_KEY",
        "characteristics": characteristics,
        "limits": limits,
    }


class AwsProvider:
    type = PROVIDER_TYPE

    def __init__(self, settings: AwsSettings) -> None:
        if not settings.regions:
            raise ValueError("region: at least one AWS region is required")
        self.settings = settings
        self._config = BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10,
                                  read_timeout=30)

    # -- sessions -------------------------------------------------------------------------------

    def _base_session(self) -> Any:
        s = self.settings
        if s.access_key_id and s.secret_access_key:
            return boto3.Session(aws_access_key_id=s.access_key_id, aws_secret_access_key=s.secret_access_key,
                                 aws_session_token=s.session_token)
        return boto3.Session()  # the default credential chain (environment, profile, instance role)

    def _client(self, session: Any, service: str, region: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=self.settings.endpoint_url,
                              config=self._config)

    def _accounts(self) -> list[_Account]:
        base = self._base_session()
        region = self.settings.regions[0]
        if not self.settings.role_arns:
            ident = self._client(base, "sts", region).get_caller_identity()
            return [_Account(str(ident["Account"]), base)]
        accounts = []
        sts = self._client(base, "sts", region)
        for arn in self.settings.role_arns:
            creds = sts.assume_role(RoleArn=arn, RoleSessionName="portico-federation-agent")["Credentials"]
            session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"])
            ident = self._client(session, "sts", region).get_caller_identity()
            accounts.append(_Account(str(ident["Account"]), session))
        return accounts

    def _account(self, account_id: str) -> _Account:
        if not self.settings.role_arns:  # one account: the configured credentials' own
            return _Account(account_id, self._base_session())
        for account in self._accounts():
            if account.account_id == account_id:
                return account
        raise ProviderError(f"no configured credentials reach AWS account {account_id}")

    # -- discovery ------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise ProviderError when the provider cannot be reached with the configured credentials."""
        try:
            self._accounts()
        except (ClientError, BotoCoreError) as exc:
            raise ProviderError(_message(exc)) from exc

    def discover(self) -> Discovery:
        found = Discovery()
        try:
            accounts = self._accounts()
        except (ClientError, BotoCoreError) as exc:
            found.errors.append(_message(exc))
            return found
        for account in accounts:
            for region in self.settings.regions:
                try:
                    found.apis.extend(self._discover_region(account, region))
                except (ClientError, BotoCoreError) as exc:
                    found.errors.append(f"{account.account_id}/{region}: {_message(exc)}")
        return found

    @staticmethod
    def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in client.get_paginator(operation).paginate(**kwargs, PaginationConfig={"PageSize": 100}):
            yield from page.get(key, [])

    def _discover_region(self, account: _Account, region: str) -> list[dict[str, Any]]:
        client = self._client(account.session, "apigateway", region)
        plans_by_stage: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for usage_plan in self._pages(client, "get_usage_plans", "items"):
            for stage in usage_plan.get("apiStages", []):
                plans_by_stage.setdefault((stage["apiId"], stage["stage"]), []).append(_plan(usage_plan))
        apis = []
        for rest_api in self._pages(client, "get_rest_apis", "items"):
            for stage in client.get_stages(restApiId=rest_api["id"]).get("item", []):
                plans = plans_by_stage.get((rest_api["id"], stage["stageName"]), [])
                if not plans and not self.settings.accept_api_without_usage_plan:
                    continue
                apis.append(self._api(client, account.account_id, region, rest_api, stage, plans))
        return apis

    def _api(self, client: Any, account_id: str, region: str, rest_api: dict[str, Any], stage: dict[str, Any],
             plans: list[dict[str, Any]]) -> dict[str, Any]:
        api_id, stage_name = rest_api["id"], stage["stageName"]
        export = client.get_export(restApiId=api_id, stageName=stage_name, exportType="oas30",
                                   accepts="application/json")
        definition = export["body"].read().decode("utf-8")
        return {
            "uniqueId": f"{account_id}:{region}:{api_id}:{stage_name}",
            "id": api_id,
            "name": rest_api.get("name") or api_id,
            "version": stage_name,
            "description": rest_api.get("description", ""),
            "connectionDetails": {
                "invokeUrl": f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage_name}",
                "region": region, "account": account_id, "restApiId": api_id, "stage": stage_name,
            },
            "pages": [{"pageType": "SWAGGER", "content": definition, "filename": f"{rest_api.get('name')}.json"}],
            "plans": plans,
        }

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, details: dict[str, Any], subscription: dict[str, Any]) -> dict[str, Any]:
        """Create (or find, on a retry) the subscription's API key and attach it to the usage plan.

        ``details``: the API's connection details; ``subscription``: ``{id, applicationId,
        applicationName, planId}`` with ``planId`` the usage plan id."""
        sub_id, plan_id = str(subscription["id"]), str(subscription["planId"])
        account = self._account(str(details["account"]))
        client = self._client(account.session, "apigateway", str(details["region"]))
        name = f"portico-{sub_id}"
        try:
            key = self._find_key(client, name)
            created = key is None
            if key is None:
                key = client.create_api_key(
                    name=name, enabled=True,
                    description=f"Portico subscription of {subscription.get('applicationName', '')}".strip(),
                    tags={_TAG_SUBSCRIPTION: sub_id, _TAG_APPLICATION: str(subscription.get("applicationId", ""))},
                )
        except (ClientError, BotoCoreError) as exc:
            raise ProviderError(_message(exc)) from exc
        try:
            client.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":  # already attached: a retry
                if created:
                    self._delete_key(client, key["id"])
                raise ProviderError(_message(exc)) from exc
        except BotoCoreError as exc:
            if created:
                self._delete_key(client, key["id"])
            raise ProviderError(_message(exc)) from exc
        return {"apiKey": key["value"], "metadata": {"apiKeyId": key["id"], "usagePlanId": plan_id,
                                                     "region": details["region"], "account": details["account"]}}

    @staticmethod
    def _find_key(client: Any, name: str) -> dict[str, Any] | None:
        try:
            found = client.get_api_keys(nameQuery=name, includeValues=True).get("items", [])
        except ClientError as exc:  # GET /apikeys is beyond the reference's minimum permissions
            if exc.response.get("Error", {}).get("Code") in ("AccessDeniedException", "UnauthorizedException"):
                return None
            raise
        for key in found:
            if key.get("name") == name:
                return dict(key)
        return None

    @staticmethod
    def _delete_key(client: Any, key_id: str) -> None:
        try:
            client.delete_api_key(apiKey=key_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise ProviderError(_message(exc)) from exc

    def unsubscribe(self, metadata: dict[str, Any]) -> None:
        """Delete the subscription's API key (a key already gone counts as done)."""
        account = self._account(str(metadata["account"]))
        client = self._client(account.session, "apigateway", str(metadata["region"]))
        try:
            self._delete_key(client, str(metadata["apiKeyId"]))
        except BotoCoreError as exc:
            raise ProviderError(_message(exc)) from exc
