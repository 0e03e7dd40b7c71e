"""The route -> (object type, action) table of the audit log."""

from __future__ import annotations

import pytest

from portico.admin import access
from portico.audit.actions import NOT_AUDITED, ROUTE_ACTIONS, SEGMENT_TYPES, describe
from portico.audit.areas import AREA_OF_TYPE


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("POST", "/apis", ("API", "Create")),
    ("PUT", "/apis/{apiId}", ("API", "Update")),
    ("DELETE", "/apis/{apiId}", ("API", "Delete")),
    ("PUT", "/apis/{apiId}/activate", ("API", "Activate")),
    ("PUT", "/apis/{apiId}/deactivate", ("API", "Deactivate")),
    ("PUT", "/packages/{packageId}/activate", ("Package", "Activate")),
    ("PUT", "/policies/{policyId}/deactivate", ("Policy", "Deactivate")),
    ("PATCH", "/applications/{applicationId}", ("Application", "Update")),
    ("POST", "/accessProfiles", ("AccessProfile", "Create")),
    ("PUT", "/configurations/settings", ("AdministratorSetting", "Update")),
    # not in the table: derived from the path and method
    ("PUT", "/groups/{groupId}/something/activate", ("Group", "Activate")),
    ("POST", "/brandNew", ("AdministratorSetting", "Create")),
    ("DELETE", "/stages/{stageId}", ("Stage", "Delete")),
])
def test_described(method: str, path: str, expected: tuple[str, str]) -> None:
    assert describe(method, path) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/apis"), ("POST", "/search"), ("POST", "/search/_count"), ("POST", "/users/authenticate"),
])
def test_reads_and_logins_are_not_described(method: str, path: str) -> None:
    assert describe(method, path) is None


def test_every_declared_write_has_a_known_object_type() -> None:
    """A new resource whose first path segment the table does not know would be filed under a
    generic type: name it in portico.audit.actions.SEGMENT_TYPES (and its area in areas.py)."""
    writes = [(m, p) for m, p in access.REQUIRED if m in ("POST", "PUT", "PATCH", "DELETE")]
    assert writes
    for method, path in writes:
        described = describe(method, path)
        if (method, path) in NOT_AUDITED:
            assert described is None
            continue
        assert described is not None, (method, path)
        assert described[0] in AREA_OF_TYPE, (method, path, described)
        first = path.strip("/").split("/")[0]
        assert (method, path) in ROUTE_ACTIONS or first in SEGMENT_TYPES, f"{method} {path}: unknown resource"
