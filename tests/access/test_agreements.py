"""Data sovereignty: a tenant reads another's data only through an agreement in force, only the shared
part, marked with its provider, and every such read lands in the provider's audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.domain.tenancy import Role
from tests.access.helpers import SHARED_MACHINES, feed, offer, setup_provider
from tests.conftest import PASSWORD, login


@pytest.fixture
def provider(client: TestClient, runtime: Runtime) -> dict[str, str]:
    setup_provider(runtime)
    return login(client, "acme-admin")


def oee_ids(client: TestClient, headers: dict[str, str], query: str) -> tuple[int, set[str]]:
    response = client.get(f"/api/v1/kpi/oee?hours=4{query}", headers=headers)
    return response.status_code, {r["id"] for r in response.json().get("rows", [])}


def test_shared_data_is_readable_only_while_the_agreement_is_in_force(
    client: TestClient, provider: dict[str, str]
) -> None:
    rival = login(client, "rival-viewer")
    before = client.get("/api/v1/kpi/oee?provider=acme", headers=rival)
    ghost = client.get("/api/v1/kpi/oee?provider=ghost", headers=rival)
    assert before.status_code == ghost.status_code == 404
    assert before.json()["detail"].replace("acme", "X") == ghost.json()["detail"].replace("ghost", "X")

    agreement = offer(client, provider)
    assert agreement["status"] == "active"
    status, ids = oee_ids(client, rival, "&provider=acme")
    assert status == 200
    assert ids == {"north", "north-a", "north-l", "north-m1", "north-m2"}  # never south, never acme
    shared = client.get("/api/v1/kpi/oee?provider=acme", headers=rival).json()
    assert shared["source"] == {
        "tenant": "acme",
        "shared": True,
        "agreement": agreement["id"],
        "agreement_name": "OEE and states of plant north",
    }
    own = client.get("/api/v1/kpi/oee", headers=rival).json()
    assert own["source"]["shared"] is False
    assert own["source"]["tenant"] == "rival"

    revoked = client.post(f"/api/v1/agreements/{agreement['id']}/revoke", headers=provider)
    assert revoked.json()["status"] == "revoked"
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=rival).status_code == 404


def test_the_unshared_part_and_unshared_kinds_stay_invisible(
    client: TestClient, provider: dict[str, str]
) -> None:
    offer(client, provider, kinds=["kpi"])
    rival = login(client, "rival-admin")
    for query in ("within=south", "within=south-m1", "within=acme", "within=nowhere"):
        assert client.get(f"/api/v1/kpi/oee?provider=acme&{query}", headers=rival).status_code == 404
    assert oee_ids(client, rival, "&provider=acme&within=north-m1") == (200, {"north-m1"})
    assert client.get("/api/v1/assets?provider=acme", headers=rival).status_code == 404  # not shared
    assert client.get("/api/v1/live/snapshot?provider=acme", headers=rival).status_code == 404
    downtime = client.get("/api/v1/kpi/downtime?provider=acme", headers=rival)
    assert downtime.status_code == 200
    assert "south" not in downtime.text


def test_shared_assets_are_only_the_scope_and_say_whose_they_are(
    client: TestClient, provider: dict[str, str]
) -> None:
    offer(client, provider)
    rival = login(client, "rival-viewer")
    listed = client.get("/api/v1/assets?provider=acme", headers=rival).json()
    assert listed["source"]["tenant"] == "acme"
    assert {a["id"] for a in listed["assets"]} == {"north", "north-a", "north-l", "north-m1", "north-m2"}
    assert client.get("/api/v1/assets/north-m1?provider=acme", headers=rival).status_code == 200
    hidden = client.get("/api/v1/assets/south-m1?provider=acme", headers=rival)
    missing = client.get("/api/v1/assets/nowhere-m1?provider=acme", headers=rival)
    assert hidden.status_code == missing.status_code == 404
    snapshot = client.get("/api/v1/live/snapshot?provider=acme", headers=rival).json()
    assert {s["asset_id"] for s in snapshot["states"]} == {"north-m1", "north-m2"}


def test_an_agreement_counts_only_between_its_from_and_until(
    client: TestClient, provider: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    pending = offer(client, provider, valid_from=(now + timedelta(days=1)).isoformat())
    assert pending["status"] == "pending"
    rival = login(client, "rival-viewer")
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=rival).status_code == 404
    expired = offer(
        client,
        provider,
        valid_from=(now - timedelta(days=2)).isoformat(),
        valid_until=(now - timedelta(days=1)).isoformat(),
    )
    assert expired["status"] == "expired"
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=rival).status_code == 404


def test_several_shared_parts_need_a_choice(client: TestClient, provider: dict[str, str]) -> None:
    offer(client, provider)
    offer(client, provider, name="the south too", scope="south")
    rival = login(client, "rival-viewer")
    ambiguous = client.get("/api/v1/kpi/oee?provider=acme", headers=rival)
    assert ambiguous.status_code == 422
    assert "north" in ambiguous.json()["detail"]
    assert "south" in ambiguous.json()["detail"]
    assert oee_ids(client, rival, "&provider=acme&within=south-m2") == (200, {"south-m2"})


def test_bad_offers_are_refused_with_a_reason(client: TestClient, provider: dict[str, str]) -> None:
    def refused(**overrides: object) -> tuple[int, str]:
        body = {
            "consumer": "rival",
            "name": "x",
            "scope": "north",
            "kinds": ["kpi"],
            "purpose": "cx.quality.base:1",
            **overrides,
        }
        response = client.post("/api/v1/agreements", json=body, headers=provider)
        return response.status_code, response.text

    assert refused(consumer="acme")[0] == 422
    assert refused(scope="hh-rival-only")[0] == 404
    assert refused(consumer="ghost")[0] == 404
    assert refused(kinds=[])[0] == 422
    assert refused(kinds=["rejects"])[0] == 422
    status, text = refused(framework="Anything:9")
    assert status == 422
    assert "framework" in text
    status, text = refused(valid_from="2026-01-02T00:00:00Z", valid_until="2026-01-01T00:00:00Z")
    assert status == 422
    assert "valid_until" in text
    assert refused(provider="rival")[0] == 422  # the provider is always the caller's tenant
    viewer = login(client, "acme-viewer")
    body = {"consumer": "rival", "name": "x", "scope": "north", "kinds": ["kpi"], "purpose": "p"}
    assert client.post("/api/v1/agreements", json=body, headers=viewer).status_code == 403


def test_only_the_provider_revokes_and_strangers_see_nothing(
    client: TestClient, runtime: Runtime, provider: dict[str, str]
) -> None:
    agreement = offer(client, provider)
    rival = login(client, "rival-admin")
    assert client.get(f"/api/v1/agreements/{agreement['id']}", headers=rival).status_code == 200
    assert client.post(f"/api/v1/agreements/{agreement['id']}/revoke", headers=rival).status_code == 403
    runtime.identity.create_tenant("third", "Third")
    runtime.identity.create_user("third", "third-admin", PASSWORD, Role.TENANT_ADMIN)
    third = login(client, "third-admin")
    stranger = client.get(f"/api/v1/agreements/{agreement['id']}", headers=third)
    missing = client.get("/api/v1/agreements/999999", headers=third)
    assert stranger.status_code == missing.status_code == 404
    assert client.get("/api/v1/agreements", headers=third).json() == {"agreements": []}
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=third).status_code == 404


def test_shared_reads_land_in_the_providers_audit_log_only(
    client: TestClient, provider: dict[str, str]
) -> None:
    agreement = offer(client, provider)
    rival = login(client, "rival-viewer")
    client.get("/api/v1/kpi/oee?provider=acme", headers=rival)
    client.get("/api/v1/assets?provider=acme", headers=rival)
    entries = client.get("/api/v1/audit?shared=true", headers=provider).json()["entries"]
    assert [(e["actor_tenant"], e["actor"], e["action"], e["target"]) for e in entries] == [
        ("rival", "rival-viewer", "shared_read", "/api/v1/assets"),
        ("rival", "rival-viewer", "shared_read", "/api/v1/kpi/oee"),
    ]
    assert entries[0]["detail"]["agreement"] == agreement["id"]
    own = client.get("/api/v1/audit?action=agreement_offered", headers=provider).json()["entries"]
    assert own[0]["actor"] == "acme-admin"
    rival_admin = login(client, "rival-admin")
    assert client.get("/api/v1/audit?action=shared_read", headers=rival_admin).json() == {"entries": []}


def test_an_agreement_exports_as_an_odrl_policy(client: TestClient, provider: dict[str, str]) -> None:
    agreement = offer(client, provider, valid_until="2030-01-01T00:00:00+00:00")
    odrl = client.get(f"/api/v1/agreements/{agreement['id']}/odrl", headers=provider).json()
    assert odrl["@type"] == "Agreement"
    assert "http://www.w3.org/ns/odrl.jsonld" in odrl["@context"]
    assert odrl["assigner"] == "urn:leitstand:tenant:acme"
    constraints = odrl["permission"][0]["constraint"][0]["and"]
    assert {
        "leftOperand": "cx-policy:UsagePurpose",
        "operator": "eq",
        "rightOperand": "cx.quality.base:1",
    } in (constraints)
    assert {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2030-01-01T00:00:00+00:00"} in (
        constraints
    )
    assert odrl["leitstand:standardPurpose"] is True


def test_a_revocation_ends_a_shared_live_stream(
    client: TestClient, runtime: Runtime, provider: dict[str, str]
) -> None:
    agreement = offer(client, provider)
    rival = login(client, "rival-viewer")
    with client.stream("GET", "/api/v1/live/stream?provider=acme&hours=1", headers=rival) as stream:
        lines = stream.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert '"shared":true' in first
        client.post(f"/api/v1/agreements/{agreement['id']}/revoke", headers=provider)
        # the next commit of acme wakes the stream, which re-checks the agreement and ends
        feed(runtime, "acme", SHARED_MACHINES, hours=0.5)
        rest = []
        for line in lines:
            rest.append(line)
            if line.startswith("data:") and "not_shared" in line:
                break
            assert len(rest) < 50
    assert any("not_shared" in line for line in rest)


def test_an_offset_in_the_agreements_times_does_not_stretch_them(
    client: TestClient, provider: dict[str, str]
) -> None:
    """valid_until one hour ago, written at +14:00: expired, on every metadata database."""
    from datetime import timezone

    kiribati = timezone(timedelta(hours=14))
    until = (datetime.now(UTC) - timedelta(hours=1)).astimezone(kiribati)
    offered = offer(
        client, provider, valid_from=(until - timedelta(days=1)).isoformat(), valid_until=until.isoformat()
    )
    assert offered["status"] == "expired"
    stored = client.get(f"/api/v1/agreements/{offered['id']}", headers=provider).json()
    assert stored["status"] == "expired"
    assert datetime.fromisoformat(stored["valid_until"]) == until
    rival = login(client, "rival-viewer")
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=rival).status_code == 404


def test_live_shared_without_kpi_shows_states_but_no_oee(
    client: TestClient, provider: dict[str, str]
) -> None:
    offer(client, provider, kinds=["live"])
    rival = login(client, "rival-viewer")
    snapshot = client.get("/api/v1/live/snapshot?provider=acme&hours=744", headers=rival).json()
    assert snapshot["oee"] == []
    assert {s["asset_id"] for s in snapshot["states"]} == set(SHARED_MACHINES)
    assert client.get("/api/v1/kpi/oee?provider=acme", headers=rival).status_code == 404


def test_nobody_shares_with_the_platform_operator(client: TestClient, provider: dict[str, str]) -> None:
    body = {"consumer": "platform", "name": "x", "scope": "north", "kinds": ["kpi"], "purpose": "p"}
    refused = client.post("/api/v1/agreements", json=body, headers=provider)
    assert refused.status_code == 422
    assert "platform operator" in refused.json()["detail"]
