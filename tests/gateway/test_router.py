"""Resource matching, table-driven."""

from __future__ import annotations

import pytest

from portico.gateway.router import ResourceRouter

PATHS: dict[str, dict[str, object]] = {
    "/pets": {"get": {}, "post": {}},
    "/pets/{id}": {"get": {}, "delete": {}},
    "/pets/mine": {"get": {}},
    "/a/{1x}/b": {"get": {}},
    "/c/{id}/d/{id}": {"get": {}},
    "/e/{a-b}/{a_b}": {"get": {}},
    "/off": {"get": {"enabled": False}, "enabled": True},
    "/off/{id}": {"get": {"enabled": False}, "delete": {"enabled": False}},
    "/some": {"get": {}, "post": {"enabled": False}},
    "/mypath": {"get": {}},
    "/shop": {"get": {}},
    "/shop/{item}": {"get": {}, "enabled": False},
    "/shop/{item}/reviews": {"get": {}},
    "/shop/special": {"get": {}, "enabled": False},
}


@pytest.mark.parametrize(
    ("path", "strict", "template", "params"),
    [
        ("/pets", True, "/pets", {}),
        ("/pets/", True, "/pets", {}),
        ("/pets/7", True, "/pets/{id}", {"id": "7"}),
        ("/pets/mine", True, "/pets/mine", {}),
        ("/a/5/b", True, "/a/{1x}/b", {"1x": "5"}),
        ("/c/1/d/2", True, "/c/{id}/d/{id}", {"id": "2"}),
        ("/e/x/y", True, "/e/{a-b}/{a_b}", {"a-b": "x", "a_b": "y"}),
        ("/nothing", True, None, None),
        ("/mypath/abc", True, None, None),
        ("/mypath/abc", False, "/mypath", {}),
        ("/pets/7/toys", False, "/pets/{id}", {}),
        # a disabled resource serves nothing, and no shorter resource answers in its place
        ("/shop", True, "/shop", {}),
        ("/shop/7", True, None, None),
        ("/shop/7", False, None, None),
        ("/shop/7/photos", False, None, None),
        ("/shop/special", False, None, None),
        ("/shop/7/reviews", True, "/shop/{item}/reviews", {"item": "7"}),
        ("/shop/7/reviews/1", False, "/shop/{item}/reviews", {}),
        # every method disabled: as hidden as a disabled path, also from the shorter /off
        ("/off", True, None, None),
        ("/off/7", True, None, None),
        ("/off/7", False, None, None),
        ("/off/7/x", False, None, None),
    ],
)
def test_match(path: str, strict: bool, template: str | None, params: dict[str, str] | None) -> None:
    match = ResourceRouter.from_paths(PATHS).match(path, strict=strict)
    if template is None:
        assert match is None
    else:
        assert match is not None and match.resource.template == template and match.params == params


def test_disabled_resources_are_not_listed() -> None:
    templates = {r.template for r in ResourceRouter.from_paths(PATHS).resources}
    assert "/shop" in templates and "/shop/{item}" not in templates and "/shop/special" not in templates
    assert "/some" in templates and "/off" not in templates and "/off/{id}" not in templates


def test_disabled_operations_are_not_methods() -> None:
    router = ResourceRouter.from_paths(PATHS)
    match = router.match("/some")
    assert match is not None and match.resource.methods == frozenset({"GET"})
    assert router.match("/pets").resource.methods == frozenset({"GET", "POST"})  # type: ignore[union-attr]
