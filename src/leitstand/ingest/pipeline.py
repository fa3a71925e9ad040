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
from leitstand.ingest.decode import Decoded, conform
from leitstand.ingest.sink import IngestResult, RecordError
from leitstand.ingest.validate import AssetCatalog, IngestPolicy, first_failures, run_checks
from leitstand.store.interfaces import REJECTS_SCHEMA, EventStore, WriteBatch

log = logging.getLogger(__name__)

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
    ) -> None:
        self._store = store
        self._catalog = catalog
        self.policy = policy or IngestPolicy()
        self._queue: BoundedQueue[_Job] = BoundedQueue(queue_records)
        self._block_timeout_s = block_timeout_s
        self._transaction_records = transaction_records
        self._clock = clock
        self._listeners: list[Callable[[set[str]], None]] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

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

    # ingest ----------------------------------------------------------------------------------------

    def send(self, tenant: str, kind: RecordKind, records: pa.Table) -> IngestResult:
        """RecordSink for in-process sources (the simulator, connectors): same path as HTTP."""
        table = conform(records, SPECS[kind])
        return self.ingest(tenant, kind, Decoded(table, None, [], {}, table.num_rows))

    def ingest(self, tenant: str, kind: RecordKind, decoded: Decoded) -> IngestResult:
        """Validate and store one decoded batch; block until committed. Raises Overloaded when full."""
        future = self.submit(tenant, kind, decoded)
        return future.result()

    def submit(self, tenant: str, kind: RecordKind, decoded: Decoded) -> Future[IngestResult]:
        """Validate and queue one batch; the future resolves once it is committed."""
        if not self.running:
            raise NotReady("the ingest writer is not running")
        kind = RecordKind(kind)
        table = decoded.table
        checks = run_checks(kind, table, tenant, self._catalog(tenant), self.policy, self._clock())
        errors = list(decoded.errors)
        reject_rows: list[tuple[str, str, str, str]] = [
            ("dead_letter", e.code, e.message, _json(decoded.raw_rejects.get(e.index))) for e in errors
        ]
        if checks:
            which, bad = first_failures(checks, table.num_rows)
            positions = (
                decoded.positions.to_numpy() if decoded.positions is not None else np.arange(table.num_rows)
            )
            bad_rows = np.flatnonzero(bad)
            rejected = table.take(pa.array(bad_rows)).to_pylist()
            for row_index, record in zip(bad_rows, rejected, strict=True):
                check = checks[which[row_index]]
                errors.append(
                    RecordError(int(positions[row_index]), check.code, check.message, check.outcome)
                )
                reject_rows.append((check.outcome, check.code, check.message, _json(record)))
            table = table.filter(pa.array(~bad))
        errors.sort(key=lambda e: e.index)
        table = table.set_column(0, "tenant", pc.fill_null(table["tenant"], tenant))
        rejects = _rejects_table(tenant, kind, self._clock(), reject_rows) if reject_rows else None
        quarantined = sum(1 for e in errors if e.outcome == "quarantine")
        for outcome, n in (("dead_letter", len(errors) - quarantined), ("quarantine", quarantined)):
            if n:
                RECORDS.labels(kind.value, outcome).inc(n)

        job = _Job(WriteBatch(kind, table, rejects), tenant, Future())
        try:
            queued = self._queue.put(job, max(table.num_rows, 1), timeout=self._block_timeout_s)
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
                    errors=errors,
                )
            )

        job.future.add_done_callback(done)
        return result

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
            started = time.perf_counter()
            try:
                added = self._store.write([j.batch for j in jobs])
            except Exception as exc:
                log.exception("writing %d batches failed; none of them is acknowledged", len(jobs))
                for job in jobs:
                    job.future.set_exception(exc)
                continue
            WRITE_SECONDS.observe(time.perf_counter() - started)
            for job, n in zip(jobs, added, strict=True):
                job.future.set_result(n)
            tenants = {j.tenant for j in jobs}
            for listener in list(self._listeners):
                try:
                    listener(tenants)
                except Exception:
                    log.exception("a commit listener failed")


def _json(record: object) -> str:
    return orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _rejects_table(
    tenant: str, kind: RecordKind, received_at: datetime, rows: list[tuple[str, str, str, str]]
) -> pa.Table:
    outcome, code, reason, record = zip(*rows, strict=True)
    n = len(rows)
    return pa.table(
        {
            "tenant": [tenant] * n,
            "kind": [kind.value] * n,
            "received_at": pa.array([received_at] * n, REJECTS_SCHEMA.field("received_at").type),
            "outcome": list(outcome),
            "reason_code": list(code),
            "reason": list(reason),
            "record": list(record),
        },
        schema=REJECTS_SCHEMA,
    )
