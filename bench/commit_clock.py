"""A RecordTarget in front of the ingest pipeline that times each record from its timestamp (the time
it was produced or scheduled to be published) to the commit that made it queryable."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pyarrow as pa

from leitstand.domain.records import RecordKind
from leitstand.ingest.conform import Decoded
from leitstand.ingest.sink import IngestResult, RecordTarget


class CommitClock:
    """A RecordTarget in front of the pipeline: notes, when a batch is committed, how long ago each
    of its records' source timestamps was."""

    def __init__(self, target: RecordTarget) -> None:
        self._target = target
        self._lock = threading.Lock()
        # (committed at, seconds since each record's source timestamp, seconds since it was handed on)
        self.commits: list[tuple[float, np.ndarray, float]] = []

    def submit(self, tenant: str, kind: RecordKind, decoded: Decoded) -> Future[IngestResult]:
        handed = time.time()
        future = self._target.submit(tenant, kind, decoded)
        if decoded.table.num_rows:
            ts_us = decoded.table["ts"].cast(pa.int64()).to_numpy()

            def committed(f: Future[IngestResult]) -> None:
                now = time.time()
                if f.exception() is None:
                    with self._lock:
                        self.commits.append((now, now - ts_us / 1e6, now - handed))

            future.add_done_callback(committed)
        return future

    def window(self, since: float) -> tuple[np.ndarray, np.ndarray]:
        """Source-to-commit latency of each record committed since `since`, and handed-on-to-commit
        latency of each of those records."""
        with self._lock:
            kept = [(lat, np.full(len(lat), ingest)) for at, lat, ingest in self.commits if at >= since]
        if not kept:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([k[0] for k in kept]), np.concatenate([k[1] for k in kept])

    @property
    def stored(self) -> int:
        with self._lock:
            return sum(len(lat) for _, lat, _ in self.commits)

    @property
    def last_commit(self) -> float:
        with self._lock:
            return max((at for at, _, _ in self.commits), default=0.0)
