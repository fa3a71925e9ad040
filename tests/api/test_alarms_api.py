"""Rules, alarms and the alarm stream through the HTTP API, on a real runtime with its watch thread."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.records import RecordKind
from leitstand.domain.tenancy import Role
from leitstand.watch.notify import SIGNATURE_HEADER, verify_signature
from tests.conftest import EXAMPLE_MODEL, PASSWORD, TEST_SETTINGS, login
from tests.connect.helpers import wait_for
from tests.http_receiver import receiving

M1, M2 = "hh-press-l1-m1", "hh-press-l1-m2"
HOT = {
    "id": "press-hot",
    "name": "Press temperature high",
    "kind": "threshold",
    "targets": {"machine_types": ["press"]},
    "signal": "temperature",
    "above": 80,
    "hysteresis": 5,
    "priority": "high",
}


def temperatures(client: TestClient, headers: dict, asset: str, values: list[float], start: datetime) -> None:
    records = [
        {
            "asset_id": asset,
            "signal": "temperature",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "value": v,
        }
        for i, v in enumerate(values)
    ]
    response = client.post("/api/v1/ingest/samples", json=records, headers=headers)
    assert response.status_code == 200, response.text


@pytest.fixture
def operator(client: TestClient, runtime: Runtime) -> dict[str, str]:
    runtime.identity.create_user("acme", "acme-operator", PASSWORD, Role.OPERATOR)
    return login(client, "acme-operator")


def test_a_rule_made_through_the_api_raises_an_alarm_operators_work_through(
    client: TestClient, runtime: Runtime, admin: dict, operator: dict
) -> None:
    created = client.post("/api/v1/watch/rules", json=HOT, headers=admin)
    assert created.status_code == 201, created.text
    listed = client.get("/api/v1/watch/rules", headers=operator).json()["rules"]
    assert [(r["rule"]["id"], r["source"], r["error"]) for r in listed] == [("press-hot", "api", None)]

    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    temperatures(client, admin, M1, [70, 85, 86, 70, 72], start)
    assert runtime.watch.drain(10)
    [alarm] = client.get("/api/v1/alarms", headers=operator).json()["alarms"]
    assert alarm["state"] == "returned_unacknowledged"
    assert alarm["priority"] == "high"
    assert alarm["asset_path"].endswith(M1)
    assert alarm["area"] == "hh"
    assert "85" in alarm["message"]

    acked = client.post(
        f"/api/v1/alarms/{alarm['id']}/acknowledge", json={"comment": "checked"}, headers=operator
    )
    assert acked.status_code == 200
    assert acked.json()["state"] == "normal"
    again = client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", headers=operator)
    assert again.status_code == 409
    assert client.get("/api/v1/alarms", headers=operator).json()["alarms"] == []  # nothing open

    # the same data again raises nothing (idempotent), new data does
    temperatures(client, admin, M1, [70, 85, 86, 70, 72], start)
    temperatures(client, admin, M1, [90], start + timedelta(minutes=10))
    assert runtime.watch.drain(10)
    [alarm] = client.get("/api/v1/alarms", headers=operator).json()["alarms"]
    assert alarm["state"] == "unacknowledged"
    assert alarm["activations"] == 2

    shelved = client.post(
        f"/api/v1/alarms/{alarm['id']}/shelve", json={"minutes": 30, "comment": "known"}, headers=operator
    )
    assert shelved.json()["state"] == "shelved"
    forbidden = client.post(
        f"/api/v1/alarms/{alarm['id']}/out-of-service", json={"comment": "x"}, headers=operator
    )
    assert forbidden.status_code == 403  # a maintenance decision
    oos = client.post(
        f"/api/v1/alarms/{alarm['id']}/out-of-service", json={"comment": "sensor swap"}, headers=admin
    )
    assert oos.json()["state"] == "out_of_service"
    journal = client.get(f"/api/v1/alarms/{alarm['id']}", headers=operator).json()["journal"]
    assert [e["action"] for e in journal] == [
        "activated",
        "cleared",
        "acknowledged",
        "activated",
        "shelved",
        "out_of_service",
    ]
    assert journal[2]["by"] == "acme-operator"
    assert journal[2]["comment"] == "checked"
    rival = login(client, "rival-admin")
    assert client.get(f"/api/v1/alarms/{alarm['id']}", headers=rival).status_code == 404


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"signal": "pressure"}, "has no signal 'pressure'"),
        ({"targets": {"assets": ["nowhere"]}}, "asset 'nowhere', which is not in the model"),
        ({"above": None, "hysteresis": 0, "when": "value >> 2"}, "is not allowed"),
        ({"kind": "treshold"}, "does not match any of the expected tags"),
        ({"hysteresis": -1}, "hysteresis: Input should be greater than or equal to 0"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(
    client: TestClient, admin: dict, change: dict, detail: str
) -> None:
    response = client.post("/api/v1/watch/rules", json={**HOT, **change}, headers=admin)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert client.get("/api/v1/watch/rules", headers=admin).json()["rules"] == []


def test_only_engineers_make_rules_and_a_duplicate_is_a_conflict(
    client: TestClient, admin: dict, operator: dict
) -> None:
    assert client.post("/api/v1/watch/rules", json=HOT, headers=operator).status_code == 403
    assert client.post("/api/v1/watch/rules", json=HOT, headers=admin).status_code == 201
    assert client.post("/api/v1/watch/rules", json=HOT, headers=admin).status_code == 409
    assert client.delete("/api/v1/watch/rules/press-hot", headers=admin).status_code == 204
    assert client.delete("/api/v1/watch/rules/press-hot", headers=admin).status_code == 404


def test_a_backtest_finds_what_a_rule_would_have_found_without_raising_alarms(
    client: TestClient, runtime: Runtime, admin: dict
) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    temperatures(client, admin, M2, [70, 85, 86, 70], start)
    body = {"rules": [HOT], "start": (start - timedelta(minutes=5)).isoformat(), "end": start.isoformat()}
    assert client.post("/api/v1/watch/backtest", json=body, headers=admin).json()["detections"] == []
    body["end"] = (start + timedelta(hours=1)).isoformat()
    found = client.post("/api/v1/watch/backtest", json=body, headers=admin).json()["detections"]
    assert [(d["asset_id"], d["active"]) for d in found] == [(M2, True), (M2, False)]
    assert found[0]["at"] == (start + timedelta(minutes=1)).isoformat()
    assert runtime.watch.drain(10)
    assert client.get("/api/v1/alarms", headers=admin).json()["alarms"] == []
    too_long = {**body, "end": (start + timedelta(days=40)).isoformat()}
    assert client.post("/api/v1/watch/backtest", json=too_long, headers=admin).status_code == 422


def test_the_alarm_stream_sends_the_console_at_once_and_after_a_change(
    client: TestClient, runtime: Runtime, admin: dict
) -> None:
    assert client.post("/api/v1/watch/rules", json=HOT, headers=admin).status_code == 201
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    events: list[dict] = []

    def feed() -> None:
        temperatures(client, admin, M1, [70, 90], start)

    with client.stream("GET", "/api/v1/alarms/stream", headers=admin) as stream:
        lines = stream.iter_lines()
        timer = None
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == 1:
                    timer = threading.Timer(0.2, feed)
                    timer.start()
                elif events[-1]["alarms"]:
                    break
            if len(events) > 20:
                break
        if timer is not None:
            timer.join()
    assert events[0]["alarms"] == []
    assert events[-1]["alarms"][0]["rule_id"] == "press-hot"
    assert events[-1]["summary"]["unacknowledged"] == 1


def test_an_spc_chart_of_stored_measurements(client: TestClient, admin: dict) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    rng = np.random.default_rng(5)
    values = list(50 + rng.normal(0, 1, 100))
    values[90] = 60.0  # one point far outside
    temperatures(client, admin, M1, values, start)
    query = {
        "asset_id": M1,
        "signal": "temperature",
        "hours": 4,
        "baseline": 60,
        "rules": "nelson",
        "lsl": 44,
        "usl": 56,
    }
    answer = client.get("/api/v1/watch/spc", params=query, headers=admin)
    assert answer.status_code == 200, answer.text
    chart = answer.json()["chart"]
    assert chart["kind"] == "i_mr"
    assert len(chart["location"]["points"]) == 100
    assert 90 in chart["location"]["signals"]
    assert answer.json()["unit"] == "degC"
    assert 0.5 < answer.json()["capability"]["cpk"] < 3
    missing = client.get("/api/v1/watch/spc", params={**query, "signal": "pressure"}, headers=admin)
    assert missing.status_code == 404
    too_short = client.get("/api/v1/watch/spc", params={**query, "hours": 0.01}, headers=admin)
    assert too_short.status_code == 422


def test_an_alarm_reaches_a_configured_webhook_signed(tmp_path: Path) -> None:
    secret = "s" * 24
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with receiving() as receiver:
        settings = load_settings(
            data_dir=tmp_path / "data",
            **TEST_SETTINGS,
            watch_rules={"acme": [HOT]},
            notifications={"webhooks": [{"url": receiver.url, "secret": secret, "min_priority": "high"}]},
        )
        rt = Runtime.build(settings)
        rt.identity.create_tenant("acme", "Acme")
        rt.metadata.import_asset_model("acme", parse_asset_model(yaml.safe_load(EXAMPLE_MODEL.read_text())))
        rt.start()
        try:
            records = pa.table(
                {
                    "asset_id": [M1] * 3,
                    "signal": ["temperature"] * 3,
                    "ts": [start + timedelta(minutes=i) for i in range(3)],
                    "value": [70.0, 91.0, 92.0],
                }
            )
            rt.pipeline.send("acme", RecordKind.SAMPLES, records)
            wait_for(lambda: len(receiver.requests) >= 1, "the webhook delivery")
        finally:
            rt.stop()
    [delivered] = receiver.requests
    assert verify_signature(secret, delivered.headers[SIGNATURE_HEADER], delivered.body)
    document = json.loads(delivered.body)
    assert document["action"] == "activated"
    assert document["state"] == "unacknowledged"
    assert document["rule_id"] == "press-hot"
    assert document["value"] == 91.0
    assert document["at"] == (start + timedelta(minutes=1)).isoformat()
