"""The AWS API Gateway provider of the federation agent: discovery and API-key subscriptions.

Discovery has two passes: :meth:`AwsProvider.discover` lists APIs, stages and usage plans (what the
DISCOVER preview shows), :meth:`AwsProvider.export` fetches one API's OpenAPI document (GetExport),
called by ingestion one batch at a time.

Calls stay within the reference agent's minimum permissions (GET /restapis, /restapis/*,
/restapis/*/stages/*, /usageplans; POST /apikeys, /usageplans/*/keys; DELETE /apikeys/*) plus
GetExport, and STS (GetCallerIdentity, AssumeRole when roles are configured). boto3 is
synchronous: the agent runs these methods in worker threads."""

from __future__ import annotations

import logging
import re
import threading
import time
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
_REMEMBER_SECONDS = 3600.0


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


def _listed(account_id: str, region: str, rest_api: dict[str, Any], stage: dict[str, Any],
            plans: list[dict[str, Any]]) -> dict[str, Any]:
    api_id, stage_name = rest_api["id"], stage["stageName"]
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
        "plans": plans,
    }


class AwsProvider:
    type = PROVIDER_TYPE

    def __init__(self, settings: AwsSettings) -> None:
        if not settings.regions:
            raise ValueError("region: at least one AWS region is required")
        self.settings = settings
        self._config = BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10,
                                  read_timeout=30)
        # Keys this process issued, by subscription id: a retried SUBSCRIBE (its reply was lost or
        # came too late) gets the same key without GET /apikeys. Guarded: subscribe runs in threads.
        self._issued: dict[str, tuple[float, dict[str, Any]]] = {}
        self._sub_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

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
        """The listing pass: every REST API x stage with its usage plans and connection details, no
        definitions (GetExport is the separate :meth:`export` pass, used by ingestion only)."""
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
                apis.append(_listed(account.account_id, region, rest_api, stage, plans))
        return apis

    def export(self, apis: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """The export pass (ingestion only, one batch at a time): each API from :meth:`discover`
        with its OpenAPI document (GetExport) as a page, and an error for each that failed."""
        clients: dict[tuple[str, str], Any] = {}
        out, errors = [], []
        for api in apis:
            details = api["connectionDetails"]
            where = (str(details["account"]), str(details["region"]))
            try:
                if where not in clients:
                    clients[where] = self._client(self._account(where[0]).session, "apigateway", where[1])
                export = clients[where].get_export(restApiId=details["restApiId"], stageName=details["stage"],
                                                   exportType="oas30", accepts="application/json")
                definition = export["body"].read().decode("utf-8")
            except (ClientError, BotoCoreError, ProviderError) as exc:
                errors.append(f"API {api['uniqueId']}: its definition could not be exported: "
                              f"{exc if isinstance(exc, ProviderError) else _message(exc)}")
                continue
            out.append({**api, "pages": [{"pageType": "SWAGGER", "content": definition,
                                          "filename": f"{api['name']}.json"}]})
        return out, errors

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, details: dict[str, Any], subscription: dict[str, Any]) -> dict[str, Any]:
        """Create (or find again, on a retry) the subscription's API key and attach it to the usage plan.

        ``details``: the API's connection details; ``subscription``: ``{id, applicationId,
        applicationName, planId}`` with ``planId`` the usage plan id. A retry of the same
        subscription id gets the same key: from this process's memory of the keys it issued
        (within the reference's minimum permissions), else from ``GET /apikeys`` when that optional
        permission is granted (a retry after the agent restarted)."""
        sub_id, plan_id = str(subscription["id"]), str(subscription["planId"])
        account = self._account(str(details["account"]))
        client = self._client(account.session, "apigateway", str(details["region"]))
        with self._lock_for(sub_id):
            remembered = self._remembered(sub_id)
            if remembered is not None:
                try:
                    return self._attach(client, remembered, plan_id, details, created=False)
                except ProviderError:  # the remembered key may be gone: make or find another
                    self._forget(remembered["id"])
            try:
                key = self._find_key(client, f"portico-{sub_id}")
                created = key is None
                if key is None:
                    key = client.create_api_key(
                        name=f"portico-{sub_id}", enabled=True,
                        description=f"Portico subscription of {subscription.get('applicationName', '')}".strip(),
                        tags={_TAG_SUBSCRIPTION: sub_id,
                              _TAG_APPLICATION: str(subscription.get("applicationId", ""))},
                    )
            except (ClientError, BotoCoreError) as exc:
                raise ProviderError(_message(exc)) from exc
            answer = self._attach(client, key, plan_id, details, created)
            with self._guard:
                self._issued[sub_id] = (time.monotonic(), {"id": key["id"], "value": key["value"]})
            return answer

    def _attach(self, client: Any, key: dict[str, Any], plan_id: str, details: dict[str, Any],
                created: bool) -> dict[str, Any]:
        """CreateUsagePlanKey; a key attached already counts as done. A key made for this call is
        deleted again when attaching fails."""
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

    def _lock_for(self, sub_id: str) -> threading.Lock:
        with self._guard:
            return self._sub_locks.setdefault(sub_id, threading.Lock())

    def _remembered(self, sub_id: str) -> dict[str, Any] | None:
        with self._guard:
            horizon = time.monotonic() - _REMEMBER_SECONDS
            for old in [k for k, (at, _) in self._issued.items() if at < horizon]:
                self._issued.pop(old, None)
                self._sub_locks.pop(old, None)
            entry = self._issued.get(sub_id)
            return dict(entry[1]) if entry is not None else None

    def _forget(self, key_id: str) -> None:
        with self._guard:
            for sub_id in [k for k, (_, key) in self._issued.items() if key["id"] == key_id]:
                self._issued.pop(sub_id, None)

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
        self._forget(str(metadata["apiKeyId"]))
