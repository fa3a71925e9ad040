"""Enforcement in one place: every read endpoint takes its scope from the access layer."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from leitstand.api.deps import own_data

# Reads that are no tenant data: who am I, public keys, and admin-only views of the caller's own tenant
# (each guarded by a role and answering from the caller's tenant only).
NOT_TENANT_DATA = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/auth/me",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/api/v1/auth/tokens",  # tenant admin: the tenant's own API keys
    "/api/v1/users",  # tenant admin: the tenant's own accounts
    "/api/v1/audit",  # tenant admin: the tenant's own audit log
    "/api/v1/admin/tenants",  # platform admin: tenant names, no data
}


def _routes(routes) -> list:
    """The app's routes, with included routers flattened."""
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat.extend(_routes(included.routes) if included is not None else [route])
    return flat


def _calls(dependant) -> list:
    found = []
    for dep in dependant.dependencies:
        found.append(dep.call)
        found.extend(_calls(dep))
    return found


def test_every_read_endpoint_gets_its_scope_from_the_access_layer(client: TestClient) -> None:
    app = client.app
    unguarded = []
    checked = 0
    for route in _routes(app.routes):  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or "GET" not in route.methods or route.path in NOT_TENANT_DATA:
            continue
        if not route.include_in_schema:  # the HTML pages: shells whose scripts read the API
            continue
        checked += 1
        calls = _calls(route.dependant)
        if not any(
            c is own_data or getattr(c, "__qualname__", "") == "reading.<locals>.scope" for c in calls
        ):
            unguarded.append(route.path)
    assert unguarded == []
    assert checked >= 10  # assets, records, rejects, kpi, live, agreements ...
