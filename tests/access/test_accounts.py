"""Accounts and roles: tenant admins manage their own tenant only, gateways publish their site only,
platform admins manage tenants and read no tenant's data; limits answer 429 with Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from leitstand.api.app import create_app
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Role
from tests.access.helpers import setup_provider
from tests.conftest import EXAMPLE_MODEL, PASSWORD, TEST_SETTINGS, login

NEW_PASSWORD = "another long password"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def sample(asset: str) -> dict[str, object]:
    return {"asset_id": asset, "signal": "temperature", "ts": datetime.now(UTC).isoformat(), "value": 1.0}


def test_a_tenant_admin_manages_users_of_its_own_tenant(client: TestClient, admin: dict) -> None:
    created = client.post(
        "/api/v1/users", json={"username": "ops", "password": NEW_PASSWORD, "role": "operator"}, headers=admin
    )
    assert created.status_code == 201, created.text
    ops = client.post("/api/v1/auth/login", json={"username": "ops", "password": NEW_PASSWORD}).json()
    assert ops["tenant"] == "acme"
    assert (
        client.post(
            "/api/v1/ingest/samples", json=[sample("hh-press-l1-m1")], headers=bearer(ops["token"])
        ).status_code
        == 200
    )

    user_id = created.json()["id"]
    lowered = client.patch(f"/api/v1/users/{user_id}", json={"role": "viewer"}, headers=admin)
    assert lowered.json()["role"] == "viewer"
    # the same token, the next request: the new role holds
    refused = client.post(
        "/api/v1/ingest/samples", json=[sample("hh-press-l1-m1")], headers=bearer(ops["token"])
    )
    assert refused.status_code == 403

    assert client.delete(f"/api/v1/users/{user_id}", headers=admin).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(ops["token"])).status_code == 401
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=admin).json()["entries"]]
    assert {"user_created", "role_changed", "user_deleted"} <= set(actions)


def test_foreign_accounts_look_like_missing_ones(client: TestClient, admin: dict, runtime: Runtime) -> None:
    rival_viewer = runtime.metadata.user_by_name("rival-viewer")
    assert rival_viewer is not None
    foreign_id = rival_viewer[0].user_id
    for method, body in (("PATCH", {"role": "tenant_admin"}), ("DELETE", None)):
        foreign = client.request(method, f"/api/v1/users/{foreign_id}", json=body, headers=admin)
        missing = client.request(method, "/api/v1/users/987654", json=body, headers=admin)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["detail"].replace(str(foreign_id), "N") == missing.json()["detail"].replace(
            "987654", "N"
        )
    assert runtime.metadata.user(foreign_id) == rival_viewer[0]  # untouched
    names = [u["username"] for u in client.get("/api/v1/users", headers=admin).json()["users"]]
    assert names == ["acme-admin", "acme-viewer"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "x1", "password": NEW_PASSWORD, "role": "viewer", "tenant": "rival"},
        {"username": "x2", "password": NEW_PASSWORD, "role": "viewer", "tenant_id": "rival"},
        {"username": "x3", "password": NEW_PASSWORD, "role": "platform_admin"},
        {"username": "x4", "password": NEW_PASSWORD, "role": "gateway"},
        {"username": "x5", "password": NEW_PASSWORD, "role": "viewer", "site": "hh"},
        {"username": "x:6", "password": NEW_PASSWORD, "role": "viewer"},
    ],
)
def test_mass_assignment_and_privileged_roles_are_refused(
    client: TestClient, admin: dict, body: dict
) -> None:
    response = client.post("/api/v1/users", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert (
        client.post(
            "/api/v1/auth/login", json={"username": body["username"], "password": NEW_PASSWORD}
        ).status_code
        == 401
    )


def test_a_viewer_cannot_manage_accounts_or_raise_itself(client: TestClient, runtime: Runtime) -> None:
    viewer = login(client, "acme-viewer")
    me = runtime.metadata.user_by_name("acme-viewer")
    assert me is not None
    assert client.get("/api/v1/users", headers=viewer).status_code == 403
    assert (
        client.patch(
            f"/api/v1/users/{me[0].user_id}", json={"role": "tenant_admin"}, headers=viewer
        ).status_code
        == 403
    )
    assert client.get("/api/v1/auth/me", headers=viewer).json()["role"] == "viewer"


def test_a_gateway_publishes_only_its_sites_assets_and_reads_nothing(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    setup_provider(runtime)  # acme now also has plants north and south
    created = client.post("/api/v1/gateways", json={"name": "north-gw", "site": "north"}, headers=admin)
    assert created.status_code == 201, created.text
    gateway = created.json()
    assert gateway["mqtt_username"] == "acme/north-gw"
    headers = bearer(gateway["token"])
    result = client.post(
        "/api/v1/ingest/samples",
        json=[sample("north-m1"), sample("south-m1"), sample("hh-press-l1-m1")],
        headers=headers,
    ).json()
    assert result["accepted"] == 1
    assert [(e["index"], e["code"]) for e in result["errors"]] == [(1, "outside_site"), (2, "outside_site")]
    for path in (
        "/api/v1/assets",
        "/api/v1/kpi/oee",
        "/api/v1/rejects",
        "/api/v1/live/snapshot",
        "/api/v1/agreements",
    ):
        assert client.get(path, headers=headers).status_code == 403, path
    assert (
        client.post("/api/v1/gateways", json={"name": "x", "site": "south"}, headers=headers).status_code
        == 403
    )
    foreign = client.post("/api/v1/gateways", json={"name": "y", "site": "rival-site"}, headers=admin)
    assert foreign.status_code == 404


def test_a_platform_admin_creates_tenants_and_reads_no_tenants_data(
    client: TestClient, runtime: Runtime
) -> None:
    runtime.identity.create_user("platform", "root", PASSWORD, Role.PLATFORM_ADMIN)
    root = login(client, "root")
    created = client.post(
        "/api/v1/admin/tenants",
        json={
            "id": "lieferant",
            "name": "Lieferant GmbH",
            "bpn": "BPNL00000000LIEF",
            "admin_username": "lief-admin",
            "admin_password": NEW_PASSWORD,
        },
        headers=root,
    )
    assert created.status_code == 201, created.text
    ids = [t["id"] for t in client.get("/api/v1/admin/tenants", headers=root).json()["tenants"]]
    assert ids == ["acme", "lieferant", "platform", "rival"]
    assert client.get("/api/v1/assets", headers=root).json()["assets"] == []
    assert client.get("/api/v1/kpi/oee", headers=root).json()["rows"] == []
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=root).status_code == 404
    assert client.get("/api/v1/assets/hh", headers=root).status_code == 404
    lief = client.post("/api/v1/auth/login", json={"username": "lief-admin", "password": NEW_PASSWORD}).json()
    audit = client.get("/api/v1/audit", headers=bearer(lief["token"])).json()["entries"]
    assert ("platform", "root", "tenant_created") in {
        (e["actor_tenant"], e["actor"], e["action"]) for e in audit
    }
    admin = login(client, "acme-admin")
    assert client.get("/api/v1/admin/tenants", headers=admin).status_code == 403
    bad_bpn = client.post(
        "/api/v1/admin/tenants",
        json={
            "id": "x",
            "name": "X",
            "bpn": "12345",
            "admin_username": "x-admin",
            "admin_password": NEW_PASSWORD,
        },
        headers=root,
    )
    assert bad_bpn.status_code == 422
    assert "BPNL" in bad_bpn.json()["detail"]


def limited_runtime(tmp_path, **limits: object) -> Runtime:
    import yaml

    from leitstand.domain.assets import parse_asset_model

    rt = Runtime.build(load_settings(data_dir=tmp_path / "limited", **{**TEST_SETTINGS, **limits}))
    rt.identity.create_tenant("acme", "Acme")
    rt.identity.create_tenant("rival", "Rival")
    rt.identity.create_user("acme", "acme-admin", PASSWORD, Role.TENANT_ADMIN)
    rt.identity.create_user("rival", "rival-admin", PASSWORD, Role.TENANT_ADMIN)
    rt.metadata.import_asset_model("acme", parse_asset_model(yaml.safe_load(EXAMPLE_MODEL.read_text())))
    return rt


def test_a_tenant_over_its_request_rate_gets_429_and_others_do_not(tmp_path) -> None:
    rt = limited_runtime(tmp_path, tenant_requests_per_s=0.01, tenant_request_burst=5)
    with TestClient(create_app(rt)) as client:
        acme, rival = login(client, "acme-admin"), login(client, "rival-admin")
        statuses = [client.get("/api/v1/auth/me", headers=acme).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        refused = client.get("/api/v1/auth/me", headers=acme)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/api/v1/auth/me", headers=rival).status_code == 200
    rt.stop()


def test_login_attempts_are_limited_per_client_address(tmp_path) -> None:
    rt = limited_runtime(tmp_path, login_attempts_per_min=3)
    with TestClient(create_app(rt)) as client:
        wrong = {"username": "acme-admin", "password": "wrong password!"}
        statuses = [client.post("/api/v1/auth/login", json=wrong).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        right = client.post("/api/v1/auth/login", json={"username": "acme-admin", "password": PASSWORD})
        assert right.status_code == 429  # the right password does not bypass the limit
    rt.stop()


def test_an_ingest_quota_refuses_the_whole_request_and_stores_nothing_of_it(tmp_path) -> None:
    rt = limited_runtime(tmp_path, tenant_ingest_records_per_s=0.01, tenant_ingest_burst_records=3)
    with TestClient(create_app(rt)) as client:
        acme = login(client, "acme-admin")
        ok = client.post("/api/v1/ingest/samples", json=[sample("hh-press-l1-m1")] * 2, headers=acme)
        assert ok.status_code == 200
        refused = client.post(
            "/api/v1/ingest/samples",
            json=[{**sample("hh-press-l1-m1"), "ts": f"2026-11-2{i}T00:00:00Z"} for i in range(3)],
            headers=acme,
        )
        assert refused.status_code == 429
        assert "ingest quota" in refused.json()["detail"]
        assert rt.events.record_count(RecordKind.SAMPLES, "acme") == 1  # the two were one duplicate
    rt.stop()


def test_a_query_window_longer_than_the_limit_is_refused_clearly(client: TestClient, admin: dict) -> None:
    response = client.get(
        "/api/v1/kpi/oee?start=2024-01-01T00:00:00Z&end=2025-06-01T00:00:00Z", headers=admin
    )
    assert response.status_code == 422
    assert "at most 400 days" in response.json()["detail"]


def test_failed_logins_of_one_user_do_not_lock_out_others(tmp_path) -> None:
    rt = limited_runtime(tmp_path, login_attempts_per_min=3)
    rt.limits.logins.rate, rt.limits.logins.burst = 100.0, 100.0  # address bucket out of the way
    with TestClient(create_app(rt)) as client:
        wrong = {"username": "acme-admin", "password": "wrong password!"}
        statuses = [client.post("/api/v1/auth/login", json=wrong).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]  # the failures of this user from this address
        rival = client.post("/api/v1/auth/login", json={"username": "rival-admin", "password": PASSWORD})
        assert rival.status_code == 200
        actions = [e["action"] for e in rt.access.audit.entries("acme", action="login_failed")]
        assert len(actions) == 3
    rt.stop()


def test_logout_is_audited(client: TestClient, runtime: Runtime) -> None:
    headers = login(client, "acme-viewer")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    entries = runtime.access.audit.entries("acme")
    assert [e["action"] for e in entries[:2]] == ["logout", "login"]


@pytest.mark.parametrize("name", ["gw@north", "gw/north", "g" * 65])
def test_a_gateway_name_must_be_an_id(client: TestClient, admin: dict, name: str) -> None:
    response = client.post("/api/v1/gateways", json={"name": name, "site": "hh"}, headers=admin)
    assert response.status_code == 422


def test_revoking_a_gateways_key_takes_its_mqtt_password_too(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    created = client.post("/api/v1/gateways", json={"name": "gw1", "site": "hh"}, headers=admin).json()
    assert [g.username for g, _ in runtime.metadata.mqtt_gateways(datetime.now(UTC))] == ["acme/gw1"]
    key = client.get("/api/v1/auth/tokens", headers=admin).json()["tokens"][0]["id"]
    assert client.delete(f"/api/v1/auth/tokens/{key}", headers=admin).status_code == 204
    assert runtime.metadata.mqtt_gateways(datetime.now(UTC)) == []
    assert client.get("/api/v1/auth/me", headers=bearer(created["token"])).status_code == 401


def test_reserved_tenant_ids_are_refused(client: TestClient, runtime: Runtime) -> None:
    runtime.identity.create_user("platform", "root", PASSWORD, Role.PLATFORM_ADMIN)
    root = login(client, "root")
    body = {"id": "spBv1.0", "name": "x", "admin_username": "x-admin", "admin_password": NEW_PASSWORD}
    assert client.post("/api/v1/admin/tenants", json=body, headers=root).status_code == 409
