"""The ingest pipeline: a faulty batch fails alone, rejects are stored as sent, the queue stays bounded."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pytest

from leitstand.domain.errors import Overloaded
from leitstand.domain.records import COUNTS, SAMPLES, RecordKind
from leitstand.ingest.conform import Decoded, conform
from leitstand.ingest.pipeline import IngestPipeline
from leitstand.ingest.validate import AssetCatalog
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.interfaces import WriteBatch

NOW = datetime(2026, 11, 20, 6, tzinfo=UTC)
CATALOG = AssetCatalog(asset_ids=frozenset({"m1"}), signals=frozenset({("m1", "temperature")}))


class StallingStore(DuckDBEventStore):
    """An in-memory store whose next write waits until the test releases it, like a stalled disk."""

    def __init__(self) -> None:
        super().__init__(None)
        self.writing = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def stall(self) -> None:
        self.writing.clear()
        self.release.clear()

    def write(self, batches: Sequence[WriteBatch]) -> list[int]:
        self.writing.set()
        assert self.release.wait(30)
        return super().write(batches)


@pytest.fixture
def store() -> Iterator[StallingStore]:
    backend = StallingStore()
    yield backend
    backend.release.set()
    backend.close()


def pipeline_on(store: StallingStore, queue_records: int = 100_000) -> IngestPipeline:
    return IngestPipeline(store, lambda tenant: CATALOG, queue_records=queue_records, clock=lambda: NOW)


@pytest.fixture
def pipeline(store: StallingStore) -> Iterator[IngestPipeline]:
    running = pipeline_on(store)
    running.start()
    yield running
    running.stop()


def samples(n: int, value: float = 1.0, asset: str = "m1", start: datetime = NOW) -> Decoded:
    table = pa.table(
        {
            "asset_id": [asset] * n,
            "signal": ["temperature"] * n,
            "ts": pa.array([start - timedelta(seconds=i) for i in range(n)], SAMPLES.schema.field("ts").type),
            "value": [value] * n,
        }
    )
    return Decoded(conform(table, SAMPLES), None, [], {}, n)


def unstorable(n: int) -> Decoded:
    """Counts without scrap, which conform() would have defaulted to 0: they pass validation, and the
    store refuses them (scrap is NOT NULL), as it would refuse a batch for any unforeseen reason."""
    table = pa.table(
        {
            "tenant": pa.nulls(n, pa.string()),
            "asset_id": ["m1"] * n,
            "ts": pa.array([NOW - timedelta(seconds=i) for i in range(n)], COUNTS.schema.field("ts").type),
            "product_id": pa.nulls(n, pa.string()),
            "produced": [1] * n,
            "scrap": pa.nulls(n, pa.int64()),
            "rework": pa.nulls(n, pa.int64()),
        },
        schema=COUNTS.schema,
    )
    return Decoded(table, None, [], {}, n)


def test_a_batch_the_store_refuses_fails_alone_and_the_rest_of_its_transaction_is_stored(
    store: StallingStore, pipeline: IngestPipeline
) -> None:
    store.stall()
    plug = pipeline.submit("acme", RecordKind.SAMPLES, samples(1, start=NOW - timedelta(hours=1)))
    assert store.writing.wait(5)  # the writer holds the plug, so the next three share a transaction
    good = pipeline.submit("acme", RecordKind.SAMPLES, samples(3))
    bad = pipeline.submit("rival", RecordKind.COUNTS, unstorable(2))
    other = pipeline.submit("rival", RecordKind.SAMPLES, samples(2, start=NOW - timedelta(minutes=1)))
    store.release.set()
    assert [f.result(timeout=10).accepted for f in (plug, good, other)] == [1, 3, 2]
    with pytest.raises(Exception, match="NOT NULL"):
        bad.result(timeout=10)
    assert store.record_count(RecordKind.SAMPLES, "acme") == 4
    assert store.record_count(RecordKind.SAMPLES, "rival") == 2


def test_committed_tenants_are_announced_without_the_failed_batch(
    store: StallingStore, pipeline: IngestPipeline
) -> None:
    announced: list[set[str]] = []
    pipeline.on_commit(announced.append)
    store.stall()
    pipeline.submit("acme", RecordKind.SAMPLES, samples(1, start=NOW - timedelta(hours=1)))
    assert store.writing.wait(5)
    good = pipeline.submit("acme", RecordKind.SAMPLES, samples(1))
    bad = pipeline.submit("rival", RecordKind.COUNTS, unstorable(1))
    store.release.set()
    good.result(timeout=10)
    with pytest.raises(Exception, match="NOT NULL"):
        bad.result(timeout=10)
    assert announced == [{"acme"}, {"acme"}]


def test_an_entirely_bad_batch_is_dead_lettered_record_by_record_as_sent(
    store: StallingStore, pipeline: IngestPipeline
) -> None:
    n = 25_000  # more rows than are serialised at a time
    result = pipeline.ingest("acme", RecordKind.SAMPLES, samples(n, asset="m9"))
    assert (result.accepted, result.dead_lettered, len(result.errors)) == (0, n, 1000)
    assert [e.index for e in result.errors[:3]] == [0, 1, 2]
    rejects = store.rejects("acme", limit=n + 1)
    assert rejects.num_rows == n
    assert set(rejects["reason_code"].to_pylist()) == {"unknown_asset"}
    records = sorted((orjson.loads(r) for r in rejects["record"].to_pylist()), key=lambda r: r["ts"])
    assert records[-1] == {
        "tenant": None,
        "asset_id": "m9",
        "signal": "temperature",
        "ts": "2026-11-20T06:00:00+00:00",
        "value": 1.0,
        "quality": "GOOD",
    }
    assert len({r["ts"] for r in records}) == n


def test_rejects_waiting_for_the_writer_count_against_the_queue_bound(store: StallingStore) -> None:
    pipeline = pipeline_on(store, queue_records=1_000)
    pipeline.start()
    try:
        store.stall()
        pipeline.submit("acme", RecordKind.SAMPLES, samples(1, start=NOW - timedelta(hours=1)))
        assert store.writing.wait(5)
        pipeline.submit("acme", RecordKind.SAMPLES, samples(600, asset="m9"))  # all dead-lettered
        with pytest.raises(Overloaded):
            pipeline.submit(
                "acme", RecordKind.SAMPLES, samples(600, asset="m9", start=NOW - timedelta(hours=2))
            )
    finally:
        store.release.set()
        pipeline.stop()


def test_dead_lettering_a_bad_batch_does_not_hold_each_rejected_record_as_python_objects(
    store: StallingStore, pipeline: IngestPipeline
) -> None:
    def peak_python_bytes(n: int) -> int:
        tracemalloc.start()
        try:
            pipeline.submit("acme", RecordKind.SAMPLES, samples(n, asset="m9")).result(timeout=30)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = 10_000, 50_000
    per_row = (peak_python_bytes(large) - peak_python_bytes(small)) / (large - small)
    # What remains per row is its RecordError in the result (~100 B); a dict per rejected row is ~1 kB.
    assert per_row < 250


def test_a_body_waits_for_a_decode_slot_while_others_decode_and_validate(pipeline: IngestPipeline) -> None:
    body = orjson.dumps([{"asset_id": "m1", "signal": "temperature", "ts": NOW.isoformat(), "value": 1.0}])
    finished = threading.Event()

    def submit_in_background() -> None:
        pipeline.submit_body("acme", RecordKind.SAMPLES, body, "application/json", 1000).result(10)
        finished.set()

    taken = 0
    while pipeline._decode_slots.acquire(blocking=False):  # every slot busy, as under parallel large requests
        taken += 1
    worker = threading.Thread(target=submit_in_background)
    try:
        worker.start()
        assert not finished.wait(0.3)
    finally:
        for _ in range(taken):
            pipeline._decode_slots.release()
    assert finished.wait(10)
    worker.join()
    assert taken == 2


def test_an_answer_lists_at_most_a_thousand_errors_but_counts_and_stores_them_all(
    pipeline: IngestPipeline, store: StallingStore
) -> None:
    bad = orjson.dumps(
        [{"asset_id": "nope", "signal": "temperature", "ts": NOW.isoformat(), "value": 1.0}] * 2500
    )
    result = pipeline.submit_body("acme", RecordKind.SAMPLES, bad, "application/json", 10_000).result(30)
    assert result.dead_lettered == 2500
    assert len(result.errors) == 1000
    assert result.as_dict()["errors_truncated"] is True
    assert store.rejects("acme", limit=10_000).num_rows == 2500
