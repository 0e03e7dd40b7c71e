"""The `plan` scenario: API key + per-application rate limit (never reached) + a transaction
event per call, against reference B with its JSON access log on.

Portico: one API in an active package whose plan has a per-application rate limit far above the
offered load (a `throttle` action on the plan's rate-limit policy), and `apps` subscriptions, each
an application with its own key. Transaction events are recorded for every call by default.
Reference: nginx-peer.conf with its "scenario S4" access_log line switched on, written to a copy
(the shared config itself stays unmodified).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from portico_config import (
    KEY_HEADER,
    RESOURCE,
    Admin,
    PorticoApi,
    application_key,
    create_api,
    find_application,
    wait_routable,
)
from services import BENCH_DIR, BenchError

WORKERS = 4  # concurrent management calls while subscribing
NEVER_REACHED = 1_000_000_000  # requests per application per hour

RATE_LIMIT_ACTION = {
    "policyAction": {
        "names": [{"value": "Traffic Optimization", "locale": "en"}],
        "templateKey": "throttle",
        "parameters": [
            {"templateKey": "throttleRule", "parameters": [
                {"templateKey": "throttleRuleName", "values": ["requestCount"]},
                {"templateKey": "monitorRuleOperator", "values": ["GT"]},
                {"templateKey": "value", "values": [str(NEVER_REACHED)]},
            ]},
            {"templateKey": "destination", "parameters": [{"templateKey": "destinationType", "values": ["GATEWAY"]}]},
            {"templateKey": "alertInterval", "values": ["1"]},
            {"templateKey": "alertIntervalUnit", "values": ["hours"]},
            {"templateKey": "alertFrequency", "values": ["once"]},
            {"templateKey": "consumerIds", "values": ["AnyConsumers"]},
        ],
    }
}


def txlog_peer_conf(shared: Path) -> Path:
    """A copy of nginx-peer.conf with the JSON transaction log (its scenario S4 line) on."""
    text = (shared / "nginx-peer.conf").read_text()
    off, on = "    access_log off;", "    # access_log /tmp/portico-bench/tx.log"
    if off not in text or on not in text:
        raise BenchError("nginx-peer.conf no longer has the access_log lines the plan scenario switches")
    text = text.replace(off, "    # access_log off;", 1).replace(on, "    access_log /tmp/portico-bench/tx.log", 1)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / "nginx-peer-txlog.conf"
    path.write_text(text)
    return path


def create_plan(admin: Admin) -> str:
    plan = admin.call("POST", "/plans", {"name": "bench-plan"})["planResponse"]
    action_id = admin.call("POST", "/policyActions", RATE_LIMIT_ACTION)["policyAction"]["id"]
    admin.call("PUT", f"/policies/{plan['policies'][0]}", {"policy": {"policyEnforcements": [
        {"stageKey": "throttle", "enforcements": [{"enforcementObjectId": action_id, "order": "0"}]}]}})
    return str(plan["id"])


def subscribe(admin: Admin, package_id: str, plan_id: str, number: int) -> str:
    body = {"applicationName": f"sub-{number:04d}", "packageId": package_id, "planId": plan_id,
            "requesterId": "Administrator"}
    return application_key(find_application(admin.call("POST", "/subscriptions", body)))


def configure_plan_api(admin: Admin, name: str, apps: int) -> PorticoApi:
    api_id, _ = create_api(admin, name)
    admin.call("PUT", f"/apis/{api_id}/activate")
    plan_id = create_plan(admin)
    package = admin.call("POST", "/packages", {"name": "bench-package", "apiIds": [api_id], "planIds": [plan_id]})
    package_id = package["packageResponse"]["id"]
    admin.call("PUT", f"/packages/{package_id}/activate")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        keys = list(pool.map(lambda n: subscribe(admin, package_id, plan_id, n), range(1, apps + 1)))
    url = f"{admin.base_url}/gateway/{name}/1.0{RESOURCE}"
    wait_routable(url, KEY_HEADER, keys[-1])
    return PorticoApi(api_id, url, keys)
