"""A real AWS API Gateway emulator (moto in server mode) on a loopback port, and seeding helpers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextmanager
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def apigw(endpoint: str, region: str = "eu-west-1") -> Any:
    return boto3.client("apigateway", region_name=region, endpoint_url=endpoint, **CREDS)


def make_api(client: Any, name: str, stages: tuple[str, ...] = ("prod",), description: str = "") -> str:
    """A REST API with one GET /items method (HTTP integration) deployed to ``stages``."""
    api_id: str = client.create_rest_api(name=name, description=description)["id"]
    root = next(r for r in client.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    res = client.create_resource(restApiId=api_id, parentId=root["id"], pathPart="items")
    client.put_method(restApiId=api_id, resourceId=res["id"], httpMethod="GET", authorizationType="NONE",
                      apiKeyRequired=True)
    client.put_integration(restApiId=api_id, resourceId=res["id"], httpMethod="GET", type="HTTP",
                           integrationHttpMethod="GET", uri="http://example.invalid/items")
    for stage in stages:
        client.create_deployment(restApiId=api_id, stageName=stage)
    return api_id


def make_usage_plan(client: Any, name: str, stages: list[tuple[str, str]], rate: float = 10.0, burst: int = 20,
                    quota: int | None = 1000, period: str = "MONTH") -> str:
    kwargs: dict[str, Any] = {"name": name, "apiStages": [{"apiId": a, "stage": s} for a, s in stages],
                              "throttle": {"rateLimit": rate, "burstLimit": burst}}
    if quota is not None:
        kwargs["quota"] = {"limit": quota, "period": period}
    plan_id: str = client.create_usage_plan(**kwargs)["id"]
    return plan_id



@contextmanager
def aws_proxy(endpoint: str, fail_attach: bool = False, page_size: int | None = None,
              deny: Sequence[tuple[str, str]] = (), slow: Sequence[tuple[str, str, float]] = ()) -> Iterator[str]:
    """A loopback HTTP proxy to moto for the things moto does not do: with ``fail_attach`` it answers
    CreateUsagePlanKey (``POST /usageplans/*/keys``) with AWS's NotFoundException; with ``page_size`` it
    pages GetRestApis and GetUsagePlans as AWS does (``limit``/``position``); ``deny`` lists
    ``(method, path regex)`` answered with AWS's AccessDeniedException (an IAM policy without them);
    ``slow`` lists ``(method, path regex, seconds)`` answered that much later (both are read at each
    request: a list may change during the test). Everything else is moto's.
    Yields the proxy's endpoint URL."""
    import http.client
    import json
    import re
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    target = urlsplit(endpoint)
    attach = re.compile(r"^/usageplans/[^/]+/keys$")
    paged = {"/restapis", "/usageplans"}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            path, _, query = self.path.partition("?")
            params = parse_qs(query)
            if page_size and self.command == "GET" and path in paged:
                self.path = path
            if any(self.command == m and re.match(rx, path) for m, rx in deny):
                payload = b'{"message": "User is not authorized to perform this action"}'
                self.send_response(403)
                self.send_header("x-amzn-ErrorType", "AccessDeniedException")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            for method, rx, seconds in slow:
                if self.command == method and re.match(rx, path):
                    time.sleep(seconds)
            if fail_attach and self.command == "POST" and attach.match(path):
                payload = b'{"message": "Invalid Usage Plan ID specified"}'
                self.send_response(404)
                self.send_header("x-amzn-ErrorType", "NotFoundException")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            conn.request(self.command, self.path, body=body, headers=dict(self.headers))
            answer = conn.getresponse()
            data = answer.read()
            if page_size and self.command == "GET" and path in paged and answer.status == 200:
                listing = json.loads(data)
                start = int(params.get("position", ["0"])[0])
                limit = min(page_size, int(params.get("limit", [str(page_size)])[0]))
                items = listing.get("item", [])
                page: dict[str, Any] = {"item": items[start:start + limit]}
                if start + limit < len(items):
                    page["position"] = str(start + limit)
                data = json.dumps(page).encode()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
