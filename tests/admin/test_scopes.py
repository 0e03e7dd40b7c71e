"""``/scopes`` and the authorization servers it names (issue 5): a server a scope mapping uses
cannot be deleted or renamed, nor lose a scope a mapping requires (the mapping would silently close
its APIs to every token, or later apply to another server of the same name)."""

from __future__ import annotations

from tests.support.node import Node
from tests.support.upstream import Upstream, spec_for


async def test_server_used_by_a_mapping_is_kept(node: Node, upstream: Upstream) -> None:
    r = await node.admin.post("/alias", json={
        "name": "ext", "type": "authServerAlias", "authServerType": "EXTERNAL",
        "scopes": [{"name": "read", "description": "r"}, {"name": "write", "description": "w"}],
        "localIntrospectionConfig": {"issuer": "https://issuer.example", "jwksuri": "https://issuer.example/jwks"}})
    assert r.status_code == 201, r.text
    server = r.json()["alias"]
    api = await node.create_api(spec_for(upstream.url))
    required = [{"authServerAlias": "ext", "scopeName": "write"}]
    r = await node.admin.post("/scopes", json={"scopeName": "writers", "apiScopes": [api["id"]],
                                               "requiredAuthScopes": required})
    assert r.status_code == 201, r.text
    scope_id = r.json()["scope"]["id"]
    deleted = await node.admin.delete(f"/alias/{server['id']}")
    assert deleted.status_code == 400 and "writers" in deleted.json()["errorDetails"], deleted.text
    renamed = await node.admin.put(f"/alias/{server['id']}", json={**server, "name": "ext2"})
    assert renamed.status_code == 400 and "writers" in renamed.json()["errorDetails"], renamed.text
    narrowed = await node.admin.put(f"/alias/{server['id']}", json={**server, "scopes": [{"name": "read"}]})
    assert narrowed.status_code == 400 and "write" in narrowed.json()["errorDetails"], narrowed.text
    assert [s["name"] for s in (await node.admin.get(f"/alias/{server['id']}")).json()["alias"]["scopes"]] == \
        ["read", "write"]
    # a scope no mapping needs can go; once the mapping is gone, so can the server
    extra = await node.admin.put(f"/alias/{server['id']}", json={**server, "scopes": [{"name": "write"}]})
    assert extra.status_code == 200, extra.text
    assert (await node.admin.delete(f"/scopes/{scope_id}")).status_code == 204
    assert (await node.admin.delete(f"/alias/{server['id']}")).status_code == 204
