"""HTTP batch ingest: every kind of bad input gets a specific answer, and good records beside it are kept."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.domain.errors import Overloaded
from leitstand.domain.records import SAMPLES, RecordKind

M1, M2 = "hh-press-l1-m1", "hh-press-l1-m2"


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sample(ts: datetime, value: object = 1.0, asset: str = M1, signal: str = "temperature", **extra) -> dict:
    return {"asset_id": asset, "signal": signal, "ts": iso(ts), "value": value, **extra}


def post(client: TestClient, headers: dict, kind: str, records: object) -> dict:
    response = client.post(f"/api/v1/ingest/{kind}", json=records, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_good_json_samples_are_stored_and_queryable(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    t = now()
    result = post(client, admin, "samples", [sample(t - timedelta(seconds=i)) for i in range(5)])
    assert (result["received"], result["accepted"], result["errors"]) == (5, 5, [])
    summary = client.get("/api/v1/records", headers=admin).json()
    assert summary["samples"] == {
        "count": 5,
        "first_ts": (t - timedelta(seconds=4)).isoformat(),
        "last_ts": t.isoformat(),
    }
    assert summary["states"]["count"] == 0


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (lambda t: sample(t, value="hot"), "wrong_type"),
        (lambda t: sample(t, value="NaN"), "non_finite_value"),
        (lambda t: sample(t, value="inf"), "non_finite_value"),
        (lambda t: sample(t, asset="nope"), "unknown_asset"),
        (lambda t: sample(t, signal="pressure"), "unknown_signal"),
        (lambda t: sample(t, asset=M2, signal="motor_current"), "unknown_signal"),
        (lambda t: sample(t, tenant="rival"), "tenant_mismatch"),
        (lambda t: sample(t, quality="SUPERB"), "invalid_quality"),
        (lambda t: sample(t, valeu=3), "unknown_field"),
        (lambda t: {"asset_id": M1, "signal": "temperature", "value": 1.0}, "missing_field"),
        (lambda t: {**sample(t), "ts": "2026-11-20 06:00:00"}, "invalid_timestamp"),
        (lambda t: {**sample(t), "ts": "yesterday"}, "invalid_timestamp"),
        (lambda t: 42, "invalid_record"),
    ],
)
def test_a_bad_record_is_dead_lettered_with_its_reason_and_its_neighbours_are_kept(
    client: TestClient, admin: dict, runtime: Runtime, bad, code: str
) -> None:
    t = now()
    result = post(client, admin, "samples", [sample(t - timedelta(seconds=1)), bad(t), sample(t)])
    assert result["accepted"] == 2
    assert result["dead_lettered"] == 1
    assert [(e["index"], e["code"], e["outcome"]) for e in result["errors"]] == [(1, code, "dead_letter")]
    stored = runtime.events.rejects("acme")
    assert stored.column("reason_code").to_pylist() == [code]
    assert stored.column("reason").to_pylist()[0] == result["errors"][0]["message"]


@pytest.mark.parametrize(
    ("offset", "code"), [(timedelta(days=8), "too_old"), (-timedelta(hours=1), "in_future")]
)
def test_timestamps_too_far_in_the_past_or_future_are_quarantined(
    client: TestClient, admin: dict, runtime: Runtime, offset: timedelta, code: str
) -> None:
    result = post(client, admin, "samples", [sample(now()), sample(now() - offset)])
    assert (result["accepted"], result["quarantined"], result["errors"][0]["code"]) == (1, 1, code)
    assert runtime.events.rejects("acme", outcome="quarantine").column("reason_code").to_pylist() == [code]


def test_duplicates_and_redeliveries_are_counted_and_stored_once(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    t = now()
    first = post(client, admin, "samples", [sample(t), sample(t), sample(t - timedelta(seconds=1))])
    again = post(client, admin, "samples", [sample(t - timedelta(seconds=1)), sample(t)])
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert runtime.events.record_count(RecordKind.SAMPLES, "acme") == 2


def test_out_of_order_states_are_stored_in_time_order(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    t = now()
    post(client, admin, "states", [{"asset_id": M1, "ts": iso(t), "state": "DOWN", "reason": "TOOL_BREAK"}])
    post(client, admin, "states", [{"asset_id": M1, "ts": iso(t - timedelta(minutes=5)), "state": "RUNNING"}])
    rows = runtime.events.query("SELECT state FROM states ORDER BY ts").column("state").to_pylist()
    assert rows == ["RUNNING", "DOWN"]


def test_counts_need_scrap_within_produced(client: TestClient, admin: dict) -> None:
    t = now()
    result = post(
        client,
        admin,
        "counts",
        [
            {"asset_id": M1, "ts": iso(t), "produced": 10, "scrap": 1},
            {"asset_id": M1, "ts": iso(t - timedelta(minutes=1)), "produced": 3, "scrap": 4},
            {"asset_id": M1, "ts": iso(t - timedelta(minutes=2)), "produced": -1},
            {"asset_id": M1, "ts": iso(t - timedelta(minutes=3)), "produced": 2.5},
        ],
    )
    assert [e["code"] for e in result["errors"]] == ["invalid_count", "invalid_count", "wrong_type"]
    assert result["accepted"] == 1


def post_parquet(client: TestClient, headers: dict, kind: str, table: pa.Table):
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return client.post(
        f"/api/v1/ingest/{kind}",
        content=sink.getvalue(),
        headers={**headers, "content-type": "application/vnd.apache.parquet"},
    )


def arrow_samples(n: int, start: datetime) -> pa.Table:
    return pa.table(
        {
            "asset_id": [M1] * n,
            "signal": ["temperature"] * n,
            "ts": pa.array(
                [start + timedelta(milliseconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "value": [float(i) for i in range(n)],
        }
    )


def test_arrow_ipc_and_parquet_bodies_are_accepted(client: TestClient, admin: dict, runtime: Runtime) -> None:
    table = arrow_samples(1000, now() - timedelta(minutes=1))
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = client.post(
        "/api/v1/ingest/samples",
        content=sink.getvalue(),
        headers={**admin, "content-type": "application/vnd.apache.arrow.stream"},
    )
    parquet = io.BytesIO()
    pq.write_table(arrow_samples(1000, now() - timedelta(minutes=2)), parquet)
    pq_response = client.post(
        "/api/v1/ingest/samples",
        content=parquet.getvalue(),
        headers={**admin, "content-type": "application/vnd.apache.parquet"},
    )
    assert arrow.json()["accepted"] == 1000
    assert pq_response.json()["accepted"] == 1000
    assert runtime.events.record_count(RecordKind.SAMPLES, "acme") == 2000


def test_arrow_rows_with_nan_are_dead_lettered_by_row_index(client: TestClient, admin: dict) -> None:
    table = arrow_samples(5, now() - timedelta(seconds=10))
    table = table.set_column(3, "value", pa.array([1.0, float("nan"), 2.0, float("inf"), 3.0]))
    result = post_parquet(client, admin, "samples", table).json()
    assert [(e["index"], e["code"]) for e in result["errors"]] == [
        (1, "non_finite_value"),
        (3, "non_finite_value"),
    ]
    assert result["accepted"] == 3


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"[{", "application/json", 422, "not valid JSON"),
        (b'{"rows": []}', "application/json", 422, "list of records"),
        (b"\x00\x01garbage", "application/vnd.apache.arrow.stream", 422, "not a valid"),
        (b"PAR1garbage", "application/vnd.apache.parquet", 422, "not a valid"),
        (b"a,b\n1,2", "text/csv", 415, "not supported"),
    ],
)
def test_an_unreadable_body_is_refused_whole_with_a_specific_problem(
    client: TestClient, admin: dict, body: bytes, content_type: str, status: int, detail: str
) -> None:
    response = client.post(
        "/api/v1/ingest/samples", content=body, headers={**admin, "content-type": content_type}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_an_arrow_table_with_a_wrong_column_type_names_the_column(client: TestClient, admin: dict) -> None:
    table = pa.table({"asset_id": [M1], "signal": ["temperature"], "ts": ["not a time"], "value": [1.0]})
    response = post_parquet(client, admin, "samples", table)
    assert response.status_code == 422
    assert "'ts'" in response.json()["detail"]


def test_a_body_over_the_size_limit_is_refused_with_413(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    limit = runtime.settings.max_request_bytes
    response = client.post(
        "/api/v1/ingest/samples",
        content=b"[" + b" " * limit + b"]",
        headers={**admin, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert client.get("/readyz").status_code == 200


def test_a_full_queue_answers_429_with_retry_after_and_loses_nothing_accepted(
    tmp_path, example_model
) -> None:
    from leitstand.api.app import create_app
    from leitstand.api.settings import load_settings
    from leitstand.domain.assets import parse_asset_model
    from leitstand.domain.tenancy import Role
    from tests.conftest import PASSWORD, login

    rt = Runtime.build(load_settings(data_dir=tmp_path, ingest_queue_records=1000))
    rt.identity.create_tenant("acme", "ACME")
    rt.identity.create_user("acme", "acme-admin", PASSWORD, Role.TENANT_ADMIN)
    rt.metadata.import_asset_model("acme", parse_asset_model(example_model))
    with TestClient(create_app(rt)) as client:
        headers = login(client, "acme-admin")
        t = now()
        pending = []
        with rt.events._write_lock:  # a stalled disk: the writer cannot commit, so the queue fills
            for batch in range(20):
                records = [sample(t - timedelta(seconds=batch * 600 + i)) for i in range(300)]
                try:
                    pending.append(rt.pipeline.submit("acme", RecordKind.SAMPLES, _decoded(records)))
                except Overloaded:
                    break
            assert 3 <= len(pending) < 20
            refused = [sample(t + timedelta(seconds=i)) for i in range(300)]  # as large as the refused batch
            response = client.post("/api/v1/ingest/samples", json=refused, headers=headers)
            assert response.status_code == 429
            assert response.headers["retry-after"] == "1"
            assert response.json()["type"] == "/problems/overloaded"
        assert sum(f.result(timeout=30).accepted for f in pending) == 300 * len(pending)
        assert rt.events.record_count(RecordKind.SAMPLES, "acme") == 300 * len(pending)


def _decoded(records: list[dict]):
    import orjson

    from leitstand.ingest.decode_json import decode_json

    return decode_json(orjson.dumps(records), SAMPLES)


def test_a_viewer_may_not_ingest(client: TestClient) -> None:
    from tests.conftest import login

    viewer = login(client, "acme-viewer")
    response = client.post("/api/v1/ingest/samples", json=[sample(now())], headers=viewer)
    assert response.status_code == 403


def test_records_land_in_the_callers_tenant_only(client: TestClient, runtime: Runtime) -> None:
    from tests.conftest import login

    rival = login(client, "rival-admin")
    result = post(client, rival, "samples", [sample(now())])
    assert result["errors"][0]["code"] == "unknown_asset"  # rival has no such asset; acme's are invisible
    assert runtime.events.record_count(RecordKind.SAMPLES, "acme") == 0


def test_a_null_in_a_required_arrow_column_dead_letters_only_that_record(
    client: TestClient, admin: dict, runtime: Runtime
) -> None:
    t = now()
    table = pa.table(
        {
            "asset_id": [M1, M1, M1],
            "ts": pa.array([t - timedelta(minutes=i) for i in range(3)], pa.timestamp("us", tz="UTC")),
            "state": ["RUNNING", None, "DOWN"],
        }
    )
    response = post_parquet(client, admin, "states", table)
    assert response.status_code == 200, response.text
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [(1, "missing_field")]
    assert runtime.events.record_count(RecordKind.STATES, "acme") == 2


@pytest.mark.parametrize(
    ("kind", "bad", "code"),
    [
        ("samples", lambda t: {**sample(t), "ts": 1e15}, "invalid_timestamp"),
        ("samples", lambda t: {**sample(t), "ts": "9999-12-31T23:59:59-01:00"}, "invalid_timestamp"),
        ("counts", lambda t: {"asset_id": M1, "ts": iso(t), "produced": 2**63}, "out_of_range"),
    ],
)
def test_a_json_value_too_large_to_store_is_dead_lettered_alone(
    client: TestClient, admin: dict, runtime: Runtime, kind: str, bad, code: str
) -> None:
    t = now()
    good = {"samples": sample(t), "counts": {"asset_id": M1, "ts": iso(t), "produced": 1}}[kind]
    result = post(client, admin, kind, [good, bad(t)])
    assert (result["accepted"], result["errors"][0]["index"], result["errors"][0]["code"]) == (1, 1, code)
    assert runtime.events.rejects("acme").column("reason_code").to_pylist() == [code]


def test_a_body_with_more_records_than_the_limit_is_refused_with_413(
    client: TestClient, admin: dict, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.settings, "max_request_records", 10)
    parquet = io.BytesIO()
    pq.write_table(arrow_samples(11, now() - timedelta(minutes=1)), parquet)
    json_response = client.post("/api/v1/ingest/samples", json=[sample(now())] * 11, headers=admin)
    pq_response = client.post(
        "/api/v1/ingest/samples",
        content=parquet.getvalue(),
        headers={**admin, "content-type": "application/vnd.apache.parquet"},
    )
    for response in (json_response, pq_response):
        assert response.status_code == 413
        assert "max_request_records" in response.json()["detail"]
    assert post(client, admin, "samples", [sample(now())] * 10)["received"] == 10


def test_a_json_body_has_its_own_smaller_limit(client: TestClient, admin: dict, runtime: Runtime) -> None:
    limit = runtime.settings.max_json_request_bytes
    assert limit < runtime.settings.max_request_bytes
    response = client.post(
        "/api/v1/ingest/samples",
        content=b"[" + b" " * limit + b"]",
        headers={**admin, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]
