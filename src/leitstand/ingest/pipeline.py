"""The ingest pipeline: validate a decoded batch, queue it (bounded), and acknowledge once it is stored.

One writer thread drains the queue and stores several batches per transaction; a caller's `ingest`
returns only after its batch is committed, so an acknowledged record is never lost. When the queue is
full, `ingest` raises Overloaded (HTTP 429 with Retry-After) at once, or after waiting up to
`block_timeout_s` when the pipeline runs in blocking mode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import Counter, Gauge, Histogram

from leitstand.bus.inprocess import BoundedQueue, QueueClosed
from leitstand.domain.errors import NotReady, Overloaded
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.conform import Decoded, conform
from leitstand.ingest.decode import decode_body
from leitstand.ingest.sink import IngestResult, RecordError
from leitstand.ingest.validate import AssetCatalog, IngestPolicy, first_failures, run_checks
from leitstand.store.interfaces import REJECTS_SCHEMA, EventStore, WriteBatch

log = logging.getLogger(__name__)

# Every rejected record is stored with its reason; an answer lists the first of them only.
MAX_REPORTED_ERRORS = 1000

RECORDS = Counter("leitstand_ingest_records_total", "Records received by outcome", ["kind", "outcome"])
QUEUE_RECORDS = Gauge("leitstand_ingest_queue_records", "Records waiting for the writer")
WRITE_SECONDS = Histogram("leitstand_ingest_write_seconds", "Duration of one writer transaction")
OVERLOADED = Counter("leitstand_ingest_overloaded_total", "Batches refused because the queue was full")


@dataclass(slots=True)
class _Job:
    batch: WriteBatch
    tenant: str
    future: Future[int]


class IngestPipeline:
    """Validates, deduplicates and writes records; the one way records enter the event store."""

    def __init__(
        self,
        store: EventStore,
        catalog: Callable[[str], AssetCatalog],
        policy: IngestPolicy | None = None,
        queue_records: int = 4_000_000,
        block_timeout_s: float = 0.0,
        transaction_records: int = 2_000_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        decode_slots: int = 2,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self.policy = policy or IngestPolicy()
        self._queue: BoundedQueue[_Job] = BoundedQueue(queue_records)
        self._block_timeout_s = block_timeout_s
        self._transaction_records = transaction_records
        self._clock = clock
        self._listeners: list[Callable[[set[str]], None]] = []
        self._batch_listeners: list[Callable[[str, RecordKind, pa.Table], None]] = []
        self._thread: threading.Thread | None = None
        # A decoded body can be many times the size of the request, and it lives until it is queued.
        # Requests beyond this many wait for a slot (more would not decode faster on two cores), so
        # memory does not grow with the number of parallel requests.
        self._decode_slots = threading.BoundedSemaphore(decode_slots)

    # lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_loop, name="leitstand-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, write what is queued, and end the writer."""
        self._queue.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def on_commit(self, listener: Callable[[set[str]], None]) -> None:
        """Call `listener(tenant_ids)` from the writer thread after each commit."""
        self._listeners.append(listener)

    def on_stored(self, listener: Callable[[str, RecordKind, pa.Table], None]) -> None:
        """Call `listener(tenant, kind, records)` from the writer thread for each committed batch (the
        records as validated; some may have been duplicates of stored ones). It may block the writer."""
        self._batch_listeners.append(listener)

    # ingest ----------------------------------------------------------------------------------------

    def send(self, tenant: str, kind: RecordKind, records: pa.Table) -> IngestResult:
        """RecordSink for in-process sources (the simulator, connectors): same path as HTTP."""
        table = conform(records, SPECS[kind])
        return self.ingest(tenant, kind, Decoded(table, None, [], {}, table.num_rows))

    def submit_body(
        self,
        tenant: str,
        kind: RecordKind,
        body: bytes,
        content_type: str,
        max_records: int,
        only_assets: frozenset[str] | None = None,
        quota: Callable[[int], None] | None = None,
    ) -> Future[IngestResult]:
        """Decode, validate and queue a request body, holding one of the decode slots throughout.
        `quota(records)` is called once the number of records is known and may refuse the request."""
        with self._decode_slots:
            decoded = decode_body(body, content_type, SPECS[kind], max_records)
            if quota is not None:
                quota(decoded.received)
            return self.submit(tenant, kind, decoded, only_assets)

    def ingest(self, tenant: str, kind: RecordKind, decoded: Decoded) -> IngestResult:
        """Validate and store one decoded batch; block until committed. Raises Overloaded when full."""
        future = self.submit(tenant, kind, decoded)
        return future.result()

    def submit(
        self, tenant: str, kind: RecordKind, decoded: Decoded, only_assets: frozenset[str] | None = None
    ) -> Future[IngestResult]:
        """Validate and queue one batch; the future resolves once it is committed. With `only_assets`
        (a gateway's site), records of other assets are dead-lettered."""
        if not self.running:
            raise NotReady("the ingest writer is not running")
        kind = RecordKind(kind)
        table, errors, rejects = self._validate(tenant, kind, decoded, only_assets)
        quarantined = sum(1 for e in errors if e.outcome == "quarantine")
        for outcome, n in (("dead_letter", len(errors) - quarantined), ("quarantine", quarantined)):
            if n:
                RECORDS.labels(kind.value, outcome).inc(n)

        job = _Job(WriteBatch(kind, table, rejects), tenant, Future())
        # Rejects wait for the writer too, so they count against the queue's bound.
        size = table.num_rows + (rejects.num_rows if rejects is not None else 0)
        try:
            queued = self._queue.put(job, max(size, 1), timeout=self._block_timeout_s)
        except QueueClosed as exc:
            raise NotReady("the ingest pipeline is shutting down") from exc
        if not queued:
            OVERLOADED.inc()
            raise Overloaded("the ingest queue is full; retry after the indicated time", retry_after_s=1)
        QUEUE_RECORDS.set(self._queue.size)
        result: Future[IngestResult] = Future()

        def done(stored: Future[int]) -> None:
            if result.cancelled():  # the caller went away; the records are stored all the same
                return
            exc = stored.exception()
            if exc is not None:
                result.set_exception(exc)
                return
            added = stored.result()
            RECORDS.labels(kind.value, "stored").inc(added)
            RECORDS.labels(kind.value, "duplicate").inc(table.num_rows - added)
            result.set_result(
                IngestResult(
                    kind=kind,
                    received=decoded.received,
                    accepted=added,
                    duplicates=table.num_rows - added,
                    dead_lettered=len(errors) - quarantined,
                    quarantined=quarantined,
                    errors=errors[:MAX_REPORTED_ERRORS],
                )
            )

        job.future.add_done_callback(done)
        return result

    def _validate(
        self, tenant: str, kind: RecordKind, decoded: Decoded, only_assets: frozenset[str] | None
    ) -> tuple[pa.Table, list[RecordError], pa.Table | None]:
        """The records that pass every check (tenant filled in), every rejected record's error in
        request order, and the rejects to store (None when there are none)."""
        table = decoded.table
        errors = list(decoded.errors)
        rejected: list[pa.Table] = []
        if errors:
            rejected.append(
                _reject_rows(
                    pa.array([e.outcome for e in errors]),
                    pa.array([e.code for e in errors]),
                    pa.array([e.message for e in errors]),
                    pa.array([_json(decoded.raw_rejects.get(e.index)) for e in errors], pa.string()),
                )
            )
        checks = run_checks(
            kind, table, tenant, self._catalog(tenant), self.policy, self._clock(), only_assets
        )
        if checks:
            which, bad = first_failures(checks, table.num_rows)
            positions = (
                decoded.positions.to_numpy() if decoded.positions is not None else np.arange(table.num_rows)
            )
            bad_rows = np.flatnonzero(bad)
            errors.extend(
                RecordError(int(positions[row]), checks[c].code, checks[c].message, checks[c].outcome)
                for row, c in zip(bad_rows, which[bad_rows], strict=True)
            )
            failed = pa.array(which[bad_rows])
            rejected.append(
                _reject_rows(
                    pa.array([c.outcome for c in checks]).take(failed),
                    pa.array([c.code for c in checks]).take(failed),
                    pa.array([c.message for c in checks]).take(failed),
                    _records_json(table, bad_rows),
                )
            )
            table = table.filter(pa.array(~bad))
        errors.sort(key=lambda e: e.index)
        table = table.set_column(0, "tenant", pc.fill_null(table["tenant"], tenant))
        rejects = (
            _rejects_table(tenant, kind, self._clock(), pa.concat_tables(rejected)) if rejected else None
        )
        return table, errors, rejects

    # writer ----------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            try:
                jobs = self._queue.take(self._transaction_records, timeout=0.5)
            except QueueClosed:
                return
            if not jobs:
                continue
            QUEUE_RECORDS.set(self._queue.size)
            stored = self._write(jobs)
            if not stored:
                continue
            for job in stored:
                for batch_listener in list(self._batch_listeners):
                    try:
                        batch_listener(job.tenant, job.batch.kind, job.batch.records)
                    except Exception:
                        log.exception("a batch listener failed")
            tenants = {j.tenant for j in stored}
            for listener in list(self._listeners):
                try:
                    listener(tenants)
                except Exception:
                    log.exception("a commit listener failed")

    def _write(self, jobs: list[_Job]) -> list[_Job]:
        """Store the jobs in one transaction and resolve their futures; return those stored. When the
        transaction fails, each job is written on its own, so a faulty batch fails only its own request."""
        started = time.perf_counter()
        try:
            added = self._store.write([j.batch for j in jobs])
        except Exception as exc:
            if len(jobs) > 1:
                log.warning(
                    "a transaction of %d batches failed (%s); writing them one by one", len(jobs), exc
                )
                return [job for job in jobs if self._write([job])]
            log.exception(
                "writing a batch of %s for %s failed; it is not acknowledged",
                jobs[0].batch.kind,
                jobs[0].tenant,
            )
            jobs[0].future.set_exception(exc)
            return []
        WRITE_SECONDS.observe(time.perf_counter() - started)
        for job, n in zip(jobs, added, strict=True):
            job.future.set_result(n)
        return jobs


def _json(record: object) -> str:
    return orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# Rejected rows are turned into Python objects (to serialise them as JSON) this many at a time, so an
# entirely bad batch of millions of rows never holds millions of objects at once.
_REJECT_CHUNK_ROWS = 10_000


def _records_json(table: pa.Table, rows: np.ndarray) -> pa.ChunkedArray:
    """The given rows of `table`, each as a JSON object string."""
    chunks = [
        pa.array(
            [_json(r) for r in table.take(pa.array(rows[i : i + _REJECT_CHUNK_ROWS])).to_pylist()],
            pa.string(),
        )
        for i in range(0, len(rows), _REJECT_CHUNK_ROWS)
    ]
    return pa.chunked_array(chunks, pa.string())


def _reject_rows(
    outcome: pa.Array, code: pa.Array, reason: pa.Array, record: pa.Array | pa.ChunkedArray
) -> pa.Table:
    """Rejected records with their reasons; _rejects_table adds what they have in common."""
    return pa.table({"outcome": outcome, "reason_code": code, "reason": reason, "record": record})


def _rejects_table(tenant: str, kind: RecordKind, received_at: datetime, rows: pa.Table) -> pa.Table:
    """The rejects in REJECTS_SCHEMA, for the dead-letter store."""
    n = rows.num_rows
    constant = {
        "tenant": pa.scalar(tenant, pa.string()),
        "kind": pa.scalar(kind.value, pa.string()),
        "received_at": pa.scalar(received_at, REJECTS_SCHEMA.field("received_at").type),
    }
    return pa.table(
        {
            f.name: pa.repeat(constant[f.name], n) if f.name in constant else rows[f.name]
            for f in REJECTS_SCHEMA
        },
        schema=REJECTS_SCHEMA,
    )
