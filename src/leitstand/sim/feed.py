"""The simulator's face: generate record tables for a window, backfill history into a sink, or run live.

Windows may come in any size; consecutive windows give exactly the records one window over the whole
span would. The first window fixes where simulated history begins; later windows may not start earlier.
States and samples belong to the window that holds their `ts`, counts to the window whose time produced
the units, i.e. start < ts <= end, because a count's `ts` is the end of its interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from leitstand.domain.errors import InputError
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.sink import IngestResult, RecordSink
from leitstand.sim.faults import Fault, FaultPlan, FaultRates
from leitstand.sim.fleet import build_fleet
from leitstand.sim.ground_truth import GroundTruth
from leitstand.sim.planned import epoch_us, to_datetime
from leitstand.sim.production import CountFeed
from leitstand.sim.sensors import SampleFeed
from leitstand.sim.tables import Vocabulary, counts_table, samples_table, states_table
from leitstand.sim.timeline import Timeline

MAX_BATCH_ROWS = 500_000
_US = 1_000_000
_MAX_KEPT_ERRORS = 100


class Simulator:
    """A seeded, reproducible simulation of every machine in an asset model; `ground_truth` knows all.

    With `faults`, it injects sensor drift, bearing wear, tool wear and stuck sensors at those rates
    (see faults.py) into the records; `faults(start, end)` lists them.
    """

    def __init__(
        self,
        model_doc: dict[str, Any],
        seed: int = 7,
        sample_interval_s: int = 60,
        count_interval_s: int = 60,
        faults: FaultRates | None = None,
    ) -> None:
        for name, value in (("sample_interval_s", sample_interval_s), ("count_interval_s", count_interval_s)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{name} must be a positive whole number of seconds, not {value!r}")
        self.fleet = build_fleet(model_doc)
        self.seed = seed
        self._timeline = Timeline(self.fleet, seed)
        self._samples = SampleFeed(self._timeline, seed, sample_interval_s)
        self._faults: FaultPlan | None = None
        scrap_rates = None
        if faults is not None:
            self._faults = FaultPlan(self._timeline, self._samples, sample_interval_s, seed, faults)
            scrap_rates = self._faults.scrap_rates
        self._counts = CountFeed(self._timeline, seed, count_interval_s, scrap_rates)
        self.ground_truth = GroundTruth(self.fleet, self._timeline, self._counts, self._faults)
        self._assets = Vocabulary([m.id for m in self.fleet.machines])
        self._products = Vocabulary(self.fleet.product_ids)
        self._states = Vocabulary(self._timeline.state_names)
        self._reasons = Vocabulary(
            self._timeline.reasons.names
        )  # complete: machines register theirs up front

    @property
    def history_start(self) -> datetime | None:
        """Where simulated history begins (fixed by the first window), or None before the first window."""
        anchor = self._timeline.anchor
        return to_datetime(anchor) if anchor is not None else None

    def generate(self, start: datetime, end: datetime) -> dict[RecordKind, pa.Table]:
        """States and samples with start <= ts < end, counts with start < ts <= end, in the record schemas."""
        start_us, end_us = _window_us(start, end)
        lo, hi = -(-start_us // _US), -(-end_us // _US)  # whole seconds holding states and samples
        anchor = self._timeline.anchor
        if anchor is not None and lo < anchor:
            raise InputError(
                f"window starts before simulated history does ({self.history_start}); windows only go forward"
            )
        if end_us == start_us:
            return self._empty()
        if anchor is None:
            self._timeline.start_at(lo)
        self._timeline.extend_to(hi)
        if self._faults is not None:
            self._faults.extend_to(hi)
        samples = self._samples.records(lo, hi)
        if self._faults is not None:
            samples = self._faults.apply_to_samples(samples)
        tables = {
            RecordKind.STATES: self._state_table(lo, hi),
            RecordKind.COUNTS: counts_table(
                self._assets, self._products, self._counts.records(start_us // _US, end_us // _US)
            ),
            RecordKind.SAMPLES: samples_table(self._assets, samples),
        }
        self.ground_truth.cover(start_us, end_us)
        return tables

    def faults(self, start: datetime, end: datetime) -> list[Fault]:
        """The injected faults overlapping [start, end) within the generated windows, sorted by start."""
        return self.ground_truth.faults(start, end)

    def backfill(
        self,
        sink: RecordSink,
        tenant: str,
        start: datetime,
        end: datetime,
        chunk: timedelta = timedelta(hours=6),
        progress: Callable[[float], None] | None = None,
    ) -> dict[RecordKind, IngestResult]:
        """Generate [start, end) chunk by chunk, in time order, into `sink`; returns totals per kind."""
        start_us, end_us = _window_us(start, end)
        if chunk <= timedelta(0):
            raise InputError("chunk must be a positive duration")
        totals: dict[RecordKind, IngestResult] = {}
        cursor = start
        while cursor < end:
            step_end = min(cursor + chunk, end)
            _send_all(sink, tenant, self.generate(cursor, step_end), totals)
            cursor = step_end
            if progress is not None:
                progress((epoch_us(cursor) - start_us) / (end_us - start_us))
        return totals

    def run_live(
        self,
        sink: RecordSink,
        tenant: str,
        start: datetime,
        stop: threading.Event,
        speed: float = 1.0,
        tick_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> datetime:
        """Every tick, generate up to simulated now into `sink` until `stop` is set; returns how far it got.

        Simulated now is start + (wall - wall at call) × speed, in whole seconds, and never later than the
        wall clock itself, so a fast replay catches up with the present and then runs in real time.
        """
        if speed <= 0 or tick_s <= 0:
            raise InputError("speed and tick_s must be positive")
        wall0 = clock()
        cursor = start
        while not stop.is_set():
            wall = clock()
            simulated = start + timedelta(seconds=(wall - wall0) * speed)
            now = min(simulated, datetime.fromtimestamp(wall, UTC)).replace(microsecond=0)
            if now > cursor:
                _send_all(sink, tenant, self.generate(cursor, now), {})
                cursor = now
            if stop.wait(tick_s):
                break
        return cursor

    def _state_table(self, lo: int, hi: int) -> pa.Table:
        parts = []
        for block in self._timeline.blocks_overlapping(lo, hi):
            rows = np.nonzero(block.change & (block.seg_start >= lo) & (block.seg_start < hi))[0]
            parts.append((block.machine[rows], block.seg_start[rows], block.state[rows], block.reason[rows]))
        machine, ts, state, reason = (np.concatenate([p[i] for p in parts]) for i in range(4))
        return states_table(
            self._assets,
            self._states,
            self._reasons,
            machine,
            ts,
            state.astype(np.int64),
            reason.astype(np.int64),
        )

    def _empty(self) -> dict[RecordKind, pa.Table]:
        return {kind: SPECS[kind].schema.empty_table() for kind in RecordKind}


def _window_us(start: datetime, end: datetime) -> tuple[int, int]:
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("simulation windows need timezone-aware datetimes (UTC)")
    start_us, end_us = epoch_us(start), epoch_us(end)
    if end_us < start_us:
        raise InputError(f"window end {end} is before its start {start}")
    return start_us, end_us


def _send_all(
    sink: RecordSink, tenant: str, tables: dict[RecordKind, pa.Table], totals: dict[RecordKind, IngestResult]
) -> None:
    for kind, table in tables.items():
        for batch in _batches(table):
            result = sink.send(tenant, kind, batch)
            totals[kind] = _added(totals[kind], result) if kind in totals else result


def _batches(table: pa.Table) -> Iterator[pa.Table]:
    for offset in range(0, table.num_rows, MAX_BATCH_ROWS):
        yield table.slice(offset, MAX_BATCH_ROWS)


def _added(a: IngestResult, b: IngestResult) -> IngestResult:
    return IngestResult(
        kind=a.kind,
        received=a.received + b.received,
        accepted=a.accepted + b.accepted,
        duplicates=a.duplicates + b.duplicates,
        dead_lettered=a.dead_lettered + b.dead_lettered,
        quarantined=a.quarantined + b.quarantined,
        errors=(a.errors + b.errors)[:_MAX_KEPT_ERRORS],
    )
