"""The API's contract: authentication on every request, tenant scope on every query, one error format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from tests.conftest import login

PROTECTED = [
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/assets"),
    ("GET", "/api/v1/assets/hh"),
    ("POST", "/api/v1/assets"),
    ("POST", "/api/v1/ingest/samples"),
    ("GET", "/api/v1/rejects"),
    ("GET", "/api/v1/records"),
    ("GET", "/api/v1/kpi/oee"),
    ("GET", "/api/v1/kpi/downtime"),
    ("GET", "/api/v1/kpi/productivity"),
    ("GET", "/api/v1/kpi/trend"),
    ("GET", "/api/v1/kpi/bottlenecks"),
    ("GET", "/api/v1/kpi/shifts"),
    ("GET", "/api/v1/kpi/products"),
    ("GET", "/api/v1/kpi/stops"),
    ("GET", "/api/v1/connections"),
    ("POST", "/api/v1/connections"),
    ("GET", "/api/v1/connections/{name}"),
    ("DELETE", "/api/v1/connections/{name}"),
    ("GET", "/api/v1/live/snapshot"),
    ("GET", "/api/v1/live/stream"),
    ("GET", "/api/v1/alarms"),
    ("GET", "/api/v1/alarms/stream"),
    ("GET", "/api/v1/alarms/{alarm_id}"),
    ("POST", "/api/v1/alarms/{alarm_id}/acknowledge"),
    ("POST", "/api/v1/alarms/{alarm_id}/shelve"),
    ("POST", "/api/v1/alarms/{alarm_id}/unshelve"),
    ("POST", "/api/v1/alarms/{alarm_id}/out-of-service"),
    ("POST", "/api/v1/alarms/{alarm_id}/in-service"),
    ("POST", "/api/v1/alarms/{alarm_id}/comments"),
    ("GET", "/api/v1/watch/rules"),
    ("POST", "/api/v1/watch/rules"),
    ("DELETE", "/api/v1/watch/rules/{rule_id}"),
    ("POST", "/api/v1/watch/backtest"),
    ("GET", "/api/v1/watch/spc"),
    ("POST", "/api/v1/auth/tokens"),
    ("GET", "/api/v1/auth/tokens"),
    ("DELETE", "/api/v1/auth/tokens/{token_id}"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{user_id}"),
    ("DELETE", "/api/v1/users/{user_id}"),
    ("POST", "/api/v1/gateways"),
    ("GET", "/api/v1/agreements"),
    ("POST", "/api/v1/agreements"),
    ("GET", "/api/v1/agreements/{agreement_id}"),
    ("GET", "/api/v1/agreements/{agreement_id}/odrl"),
    ("POST", "/api/v1/agreements/{agreement_id}/revoke"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/admin/tenants"),
    ("POST", "/api/v1/admin/tenants"),
    ("POST", "/api/v1/admin/keys/rotate"),
]


def test_every_api_operation_in_the_openapi_document_is_listed_here(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/api/v1")}
    public = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/logout")}
    listed = {(m, p.replace("/hh", "/{asset_id}").replace("/samples", "/{kind}")) for m, p in PROTECTED}
    assert operations - public == listed


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_requests_without_a_credential_get_401_problem_json(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/unauthenticated"


@pytest.mark.parametrize("token", ["lst_forged", "", "Bearer", "lst_" + "A" * 43])
def test_forged_tokens_are_refused(client: TestClient, token: str) -> None:
    response = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client: TestClient) -> None:
    wrong = client.post("/api/v1/auth/login", json={"username": "acme-admin", "password": "nope-nope-nope"})
    unknown = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_login_sets_a_session_cookie_that_authenticates_and_logout_ends_it(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", json={"username": "acme-viewer", "password": "correct horse battery"}
    )
    assert "httponly" in response.headers["set-cookie"].lower()
    assert client.get("/api/v1/auth/me").json() == {
        "tenant": "acme",
        "username": "acme-viewer",
        "role": "viewer",
        "site": None,
    }
    assert client.post("/api/v1/auth/logout").status_code == 204
    client.cookies.clear()
    assert (
        client.get(
            "/api/v1/auth/me", headers={"authorization": f"Bearer {response.json()['token']}"}
        ).status_code
        == 401
    )


def test_an_expired_session_is_refused(client: TestClient, runtime: Runtime) -> None:
    headers = login(client, "acme-admin")
    runtime.identity._clock = lambda: datetime.now(UTC) + timedelta(hours=13)
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_api_tokens_expire_within_a_year_and_gateways_cannot_mint_them(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    assert (
        client.post("/api/v1/auth/tokens", json={"name": "x", "days": 366}, headers=admin).status_code == 422
    )
    issued = client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=admin).json()
    expires = datetime.fromisoformat(issued["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    gateway = client.post("/api/v1/gateways", json={"name": "gw-1", "site": "hh"}, headers=admin)
    headers = {"authorization": f"Bearer {gateway.json()['token']}"}
    assert client.post("/api/v1/auth/tokens", json={"name": "more"}, headers=headers).status_code == 403


def test_an_api_token_works_like_a_session(client: TestClient, admin: dict) -> None:
    token = client.post("/api/v1/auth/tokens", json={"name": "gateway"}, headers=admin).json()["token"]
    me = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["tenant"] == "acme"


def test_mass_assignment_of_tenant_or_role_in_a_body_is_refused(client: TestClient, admin: dict) -> None:
    response = client.post(
        "/api/v1/auth/tokens", json={"name": "x", "tenant": "rival", "role": "tenant_admin"}, headers=admin
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_another_tenants_assets_are_invisible_and_look_like_missing_ones(client: TestClient) -> None:
    rival = login(client, "rival-admin")
    assert client.get("/api/v1/assets", headers=rival).json()["assets"] == []
    foreign = client.get("/api/v1/assets/hh", headers=rival)
    missing = client.get("/api/v1/assets/nowhere", headers=rival)
    assert foreign.status_code == missing.status_code == 404
    assert client.get("/api/v1/kpi/oee?within=hh", headers=rival).status_code == 404
    assert client.get("/api/v1/live/snapshot?within=hh", headers=rival).status_code == 404


def test_assets_import_as_yaml_and_read_back(client: TestClient, example_model: dict) -> None:
    rival = login(client, "rival-admin")
    response = client.post(
        "/api/v1/assets",
        content=yaml.safe_dump(example_model).encode(),
        headers={**rival, "content-type": "application/yaml"},
    )
    assert response.json()["assets_created"] == 6
    machine = client.get("/api/v1/assets/hh-press-l1-m1", headers=rival).json()
    assert machine["path"] == "acme/hh/hh-press/hh-press-l1/hh-press-l1-m1"
    assert (
        client.get("/api/v1/assets?level=machine", headers=rival).json()["assets"][1]["id"]
        == "hh-press-l1-m2"
    )


def test_an_invalid_asset_model_is_refused_with_the_place_of_the_error(
    client: TestClient, admin: dict
) -> None:
    doc = {
        "enterprise": {"id": "acme"},
        "sites": [{"id": "x", "timezone": "Europe/Berlin", "areas": [{"id": "a b"}]}],
    }
    response = client.post("/api/v1/assets", json=doc, headers=admin)
    assert response.status_code == 422
    assert "sites[0].areas[0].id" in response.json()["detail"]


def test_a_viewer_may_not_change_the_asset_model(client: TestClient, example_model: dict) -> None:
    viewer = login(client, "acme-viewer")
    assert client.post("/api/v1/assets", json=example_model, headers=viewer).status_code == 403


def test_oee_answers_carry_their_inputs_and_refuse_bad_windows(client: TestClient, admin: dict) -> None:
    body = client.get("/api/v1/kpi/oee?hours=24", headers=admin).json()
    levels = {r["level"] for r in body["rows"]}
    assert levels == {"machine", "line", "area", "site", "enterprise"}
    assert "pbt_s" in body["rows"][0]["inputs"]
    bad = client.get("/api/v1/kpi/oee?start=2026-11-20T00:00:00Z&end=2026-11-19T00:00:00Z", headers=admin)
    assert bad.status_code == 422
    assert "after its start" in bad.json()["detail"]
    assert client.get("/api/v1/kpi/oee?level=galaxy", headers=admin).status_code == 422


def test_health_readiness_metrics_and_openapi_are_served(client: TestClient, admin: dict) -> None:
    client.post("/api/v1/ingest/states", json=[], headers=admin)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert "leitstand_http_requests_total" in metrics
    assert "leitstand_ingest_queue_records" in metrics
    assert "leitstand_duckdb_memory_bytes" in metrics
    assert client.get("/openapi.json").json()["info"]["title"] == "Leitstand"


def test_readiness_fails_when_the_writer_is_down(client: TestClient, runtime: Runtime) -> None:
    runtime.pipeline.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/not_ready"


def test_unknown_api_paths_are_problem_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_pages_load_nothing_from_other_hosts(client: TestClient) -> None:
    import re

    for path in ("/docs", "/login"):
        html = client.get(path).text
        external = re.findall(r"""(?:src|href)=["']((?:https?:)?//[^"']+)""", html)
        assert external == [], (path, external)
    assert client.get("/static/vendor/swagger-ui-bundle.js").status_code == 200


def test_yaml_aliases_are_refused_before_they_expand(client: TestClient, admin: dict) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n"
    response = client.post(
        "/api/v1/assets", content=bomb.encode(), headers={**admin, "content-type": "application/yaml"}
    )
    assert response.status_code == 422
    assert "aliases are not accepted" in response.json()["detail"]


def test_two_tenants_with_the_same_asset_ids_never_see_each_others_data(
    client: TestClient, admin: dict, example_model: dict
) -> None:
    rival = login(client, "rival-admin")
    client.post("/api/v1/assets", json=example_model, headers=rival)  # the very same asset ids
    now = datetime.now(UTC).replace(microsecond=0)
    acme_data = [
        {"asset_id": "hh-press-l1-m1", "ts": (now - timedelta(minutes=m)).isoformat(), "state": "RUNNING"}
        for m in range(1, 4)
    ]
    client.post("/api/v1/ingest/states", json=acme_data, headers=admin)
    client.post(
        "/api/v1/ingest/states",
        json=[{"asset_id": "nope", "ts": now.isoformat(), "state": "X"}],
        headers=admin,
    )  # one dead letter for acme
    client.post(
        "/api/v1/ingest/counts",
        json=[{"asset_id": "hh-press-l1-m1", "ts": now.isoformat(), "produced": 50}],
        headers=admin,
    )
    records = client.get("/api/v1/records", headers=rival).json()
    assert {kind: v["count"] for kind, v in records.items()} == {"samples": 0, "states": 0, "counts": 0}
    assert client.get("/api/v1/rejects", headers=rival).json() == {"rejects": []}
    snapshot = client.get("/api/v1/live/snapshot?hours=1", headers=rival).json()
    assert snapshot["states"] == []
    oee = client.get("/api/v1/kpi/oee?hours=1&level=machine", headers=rival).json()["rows"]
    assert all(r["inputs"]["produced"] == 0 and r["inputs"]["production_s"] == 0 for r in oee)
    # and acme does see its own
    mine = client.get("/api/v1/records", headers=admin).json()
    assert (mine["states"]["count"], mine["counts"]["count"]) == (3, 1)
    assert len(client.get("/api/v1/rejects", headers=admin).json()["rejects"]) == 1


def test_the_downtime_pareto_is_served_with_cumulative_shares(
    client: TestClient, admin: dict, example_model: dict
) -> None:
    rival = login(client, "rival-admin")
    example_model["sites"][0].pop("calendar")  # planned around the clock, so any day of the week works
    client.post("/api/v1/assets", json=example_model, headers=rival)
    now = datetime.now(UTC).replace(microsecond=0)
    states = [
        {
            "asset_id": "hh-press-l1-m1",
            "ts": (now - timedelta(minutes=m)).isoformat(),
            "state": s,
            "reason": r,
        }
        for m, s, r in (
            (50, "RUNNING", None),
            (40, "DOWN", "TOOL_BREAK"),
            (25, "IDLE", None),
            (20, "RUNNING", None),
        )
    ]
    client.post("/api/v1/ingest/states", json=states, headers=rival)
    body = client.get("/api/v1/kpi/downtime?hours=1&within=hh", headers=rival).json()
    assert set(body["window"]) == {"start", "end"}
    assert [(r["state"], r["reason"], r["duration_s"]) for r in body["rows"]] == [
        ("DOWN", "TOOL_BREAK", 900.0),
        ("IDLE", None, 300.0),
    ]
    shares = [r["cumulative_share"] for r in body["rows"]]
    assert shares == sorted(shares)
    assert not body["rows"] or shares[-1] == pytest.approx(1.0)
    assert shares[0] == pytest.approx(0.75)
    # acme has the same asset ids but none of this data
    assert client.get("/api/v1/kpi/downtime?hours=1&within=hh", headers=admin).json()["rows"] == []
    assert client.get("/api/v1/kpi/downtime?within=nowhere", headers=rival).status_code == 404
