"""Wire shapes of packages, plans and subscriptions (APIGatewayMonetizationSwagger.json)."""

from __future__ import annotations

from typing import Any

from portico.domain.application import Application
from portico.domain.package import Package, Plan
from portico.wire.applications import application_body


def package_body(package: Package) -> dict[str, Any]:
    return package.model_dump(mode="json")


def plan_body(plan: Plan, package_ids: list[str]) -> dict[str, Any]:
    body = plan.model_dump(mode="json", exclude={"license", "terms"})
    body["License"], body["Terms"] = plan.license, plan.terms
    body["packageIds"] = package_ids
    return body


def subscription_body(app: Application, package: Package, plan: Plan, mask_key: bool = False) -> dict[str, Any]:
    body = application_body(app)
    body.update({"packageId": package.id, "packageName": package.name, "planId": plan.id, "planName": plan.name,
                 "subscription": True, "applicationID": app.id})
    body["accessTokens"] = {"apiAccessKey": {"apiAccessKey": "*" * 32 if mask_key else app.apiKey}}
    return body
