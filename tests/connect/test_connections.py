"""Connections from the config file and the API: validation, health on the API and in /metrics,
persistence across a restart, and who may do what."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from leitstand.api.app import create_app
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.connect.registry import host_allowed, parse_connection, redacted
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.errors import InputError
from leitstand.domain.tenancy import Role
from tests.conftest import EXAMPLE_MODEL, PASSWORD, TEST_SETTINGS, login
from tests.connect.helpers import count, wait_for
from tests.connect.test_mqtt import MACHINE, Publisher


def uns(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": "mqtt",
        "name": name,
        "tenant": "acme",
        "broker": {
            "client_id": f"leitstand:acme:{uuid.uuid4().hex[:8]}",
            "password": "s3cret",
            "username": "ls",
        },
        **extra,
    }


def build(data_dir: Path, connections: list[dict[str, Any]] | None = None) -> Runtime:
    rt = Runtime.build(load_settings(data_dir=data_dir, connections=connections or [], **TEST_SETTINGS))
    if rt.metadata.tenant("acme") is None:
        rt.identity.create_tenant("acme", "Acme")
        rt.identity.create_user("acme", "acme-admin", PASSWORD, Role.TENANT_ADMIN)
        rt.identity.create_user("acme", "acme-viewer", PASSWORD, Role.VIEWER)
        rt.identity.create_tenant("rival", "Rival")
        rt.identity.create_user("rival", "rival-admin", PASSWORD, Role.TENANT_ADMIN)
        rt.metadata.import_asset_model("acme", parse_asset_model(yaml.safe_load(EXAMPLE_MODEL.read_text())))
    return rt


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TestClient]:
    # a client id of its own: a stable one would find its persistent session on the shared broker, with
    # the messages earlier test runs published meanwhile
    broker = {
        "username": "ls",
        "password": "file-secret",
        "client_id": f"leitstand:acme:{uuid.uuid4().hex[:8]}",
    }
    rt = build(tmp_path / "data", [uns("from-file", broker=broker)])
    with TestClient(create_app(rt)) as c:
        yield c


def test_settings_documents_are_validated_with_the_field_that_is_wrong(tmp_path: Path) -> None:
    cases = [
        ({"protocol": "carrier-pigeon", "name": "x", "tenant": "acme"}, "'protocol' must be one of"),
        (uns("a", qos=2), "qos"),
        (uns("a", topics=["acme/#/x"]), "'#' must be the whole last level"),
        (uns("a", broker={"port": 0}), "broker.port"),
        (uns("bad name"), "name"),
        (uns("a", shared_group="has/slash"), "shared_group"),
        ({**uns("a"), "flavour": "x"}, "flavour"),
        ({"protocol": "sparkplug", "name": "s", "tenant": "acme", "groups": ["a/b"]}, "group id"),
    ]
    for doc, fragment in cases:
        with pytest.raises(InputError, match=re.escape(fragment)):
            parse_connection(doc)
    with pytest.raises(InputError, match=r"connections\[1\] 'b'"):
        build(tmp_path / "d1", [uns("a"), uns("b", qos=5)])
    with pytest.raises(InputError, match="acme/a defined more than once"):
        build(tmp_path / "d2", [uns("a"), uns("a")])
    assert redacted({"broker": {"password": "x", "username": "u"}, "list": [{"password": "y"}]}) == {
        "broker": {"password": "***", "username": "u"},
        "list": [{"password": "***"}],
    }


def test_connections_through_the_api_report_health_and_deliver_records(app: TestClient) -> None:
    admin = login(app, "acme-admin")
    viewer = login(app, "acme-viewer")
    rival = login(app, "rival-admin")
    created = app.post("/api/v1/connections", json=uns("press-uns"), headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["config"]["broker"]["password"] == "***"
    assert app.post("/api/v1/connections", json=uns("press-uns"), headers=admin).status_code == 409
    assert app.post("/api/v1/connections", json=uns("x"), headers=viewer).status_code == 403
    far = app.post("/api/v1/connections", json=uns("far", broker={"host": "10.1.2.3"}), headers=admin)
    assert far.status_code == 403
    assert "connection_allowed_hosts" in far.json()["detail"]
    other = app.post("/api/v1/connections", json={**uns("y"), "tenant": "rival"}, headers=admin)
    assert other.status_code == 403
    invalid = app.post("/api/v1/connections", json=uns("z", qos=3), headers=admin)
    assert invalid.status_code == 422
    assert "qos" in invalid.json()["detail"]

    rt: Runtime = app.app.state.runtime  # type: ignore[attr-defined]
    publisher = Publisher()
    try:
        wait_for(
            lambda: (
                app.get("/api/v1/connections/press-uns", headers=viewer).json()["health"]["state"]
                == "connected"
            ),
            "the connection to come up",
        )
        ts = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        for i in range(20):
            publisher.publish(f"{MACHINE}/samples/temperature", orjson.dumps({"ts": ts, "value": i}))
            ts = (datetime.fromisoformat(ts) + timedelta(seconds=1)).isoformat()
        wait_for(lambda: count(rt, "samples") == 20, "records through the API-made connection")
    finally:
        publisher.close()
    listed = {c["name"]: c for c in app.get("/api/v1/connections", headers=viewer).json()["connections"]}
    # both connections take the tenant's whole tree; the file's has the same subscription
    assert listed["press-uns"]["source"] == "api"
    assert listed["from-file"]["source"] == "config"
    health = listed["press-uns"]["health"]
    assert health["messages"] == 20
    assert health["last_message_at"] is not None
    assert app.get("/api/v1/connections", headers=rival).json()["connections"] == []
    assert app.get("/api/v1/connections/press-uns", headers=rival).status_code == 404

    metrics = app.get("/metrics").text
    assert 'leitstand_connection_up{connection="acme/press-uns",protocol="mqtt"} 1.0' in metrics
    assert 'leitstand_connection_messages_total{connection="acme/press-uns"} 20.0' in metrics

    assert app.delete("/api/v1/connections/from-file", headers=admin).status_code == 409
    assert app.delete("/api/v1/connections/press-uns", headers=admin).status_code == 204
    assert app.get("/api/v1/connections/press-uns", headers=admin).status_code == 404
    actions = [e["action"] for e in rt.access.audit.entries("acme")]
    assert {"connection_created", "connection_deleted"} <= set(actions)


def test_api_connections_are_started_again_after_a_restart(tmp_path: Path) -> None:
    rt = build(tmp_path / "data")
    with TestClient(create_app(rt)) as c:
        made = c.post("/api/v1/connections", json=uns("kept", enabled=False), headers=login(c, "acme-admin"))
        assert made.status_code == 201
    again = build(tmp_path / "data")
    with TestClient(create_app(again)) as c:
        view = c.get("/api/v1/connections/kept", headers=login(c, "acme-admin")).json()
        assert view["source"] == "api"
        assert view["health"] == {"state": "disabled"}
        assert view["created_by"] == "acme-admin"


def test_health_rate_counts_the_last_ten_seconds() -> None:
    from leitstand.connect.base import Health

    now = [1000.0]
    health = Health(f"acme/rate-{uuid.uuid4().hex[:6]}", "mqtt", clock=lambda: now[0])
    assert health.rate() == 0.0
    health.received(30)  # a burst in one second
    now[0] += 2
    assert health.rate() == 15.0
    for _ in range(10):  # then 5 a second for ten seconds
        now[0] += 1
        health.received(5)
    assert health.rate() == pytest.approx(5.0, abs=0.6)
    now[0] += 30
    assert health.rate() == 0.0
    assert health.snapshot()["messages"] == 80


def test_starting_twice_runs_each_connection_once(tmp_path: Path) -> None:
    """The demo starts the runtime before the server, whose start starts it again."""
    rt = build(tmp_path / "data", [uns("once")])
    rt.start()
    rt.start()
    try:
        wait_for(lambda: rt.connections.views("acme")[0]["health"]["state"] == "connected", "connect")  # type: ignore[union-attr]
        connected_since = rt.connections.views("acme")[0]["health"]["since"]  # type: ignore[union-attr]
        time.sleep(2.5)  # two clients with one client id would throw each other out every second
        assert rt.connections.views("acme")[0]["health"]["since"] == connected_since  # type: ignore[union-attr]
    finally:
        rt.stop()


def test_what_a_connection_made_through_the_api_may_not_do(app: TestClient) -> None:
    admin = login(app, "acme-admin")

    def refused(doc: dict[str, Any]) -> str:
        answer = app.post("/api/v1/connections", json=doc, headers=admin)
        assert answer.status_code == 403, answer.text
        return str(answer.json()["detail"])

    assert "files on the server" in refused(uns("f", broker={"tls": {"ca_file": "/etc/passwd"}}))
    assert "tenant's tree" in refused(uns("t", topics=["#"]))
    assert "leitstand:acme:" in refused(uns("c", broker={"client_id": "leitstand:rival:uns"}))
    sparkplug = {"protocol": "sparkplug", "name": "s"}
    assert "Sparkplug groups" in refused(sparkplug)
    assert "Sparkplug groups" in refused(sparkplug | {"groups": ["rival:hh"]})
    assert "leitstand-acme" in refused(sparkplug | {"groups": ["acme:hh"], "host_id": "leitstand"})
    ok = app.post(
        "/api/v1/connections", json=sparkplug | {"groups": ["acme:hh"], "enabled": False}, headers=admin
    )
    assert ok.status_code == 201, ok.text


def test_allowed_hosts_match_label_by_label_or_by_address_range() -> None:
    patterns = ["*.plant.example", "10.20.0.0/16", "127.0.0.1"]
    assert host_allowed("mqtt.plant.example", patterns)
    assert host_allowed("10.20.3.4", patterns)
    assert host_allowed("127.0.0.1", patterns)
    assert not host_allowed("mqtt.evil.example.plant.example", patterns)  # '*' is one label
    assert not host_allowed("10.21.0.1", patterns)
    assert not host_allowed("127.0.0.1.evil.example", ["127.0.0.*"])
    assert not host_allowed("localhost", [])


def test_a_connection_that_cannot_start_is_reported_and_the_rest_run(tmp_path: Path) -> None:
    broken = uns("broken", broker={"tls": {"ca_file": str(tmp_path / "missing.pem")}})
    rt = build(tmp_path / "data", [broken, uns("fine")])
    with TestClient(create_app(rt)) as c:
        admin = login(c, "acme-admin")
        views = {v["name"]: v for v in c.get("/api/v1/connections", headers=admin).json()["connections"]}
        assert views["broken"]["health"]["state"] == "failed"
        assert "missing.pem" in views["broken"]["health"]["detail"]
        wait_for(
            lambda: c.get("/api/v1/connections/fine", headers=admin).json()["health"]["state"] == "connected",
            "the other connection to run",
        )
