"""Backfill and live mode hand the same records as `generate` to a RecordSink, in time order."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.sink import IngestResult
from leitstand.sim import Simulator, enterprise_model, feed

ONE_PLANT = enterprise_model(plants=1)
START = datetime(2026, 3, 3, 4, tzinfo=UTC)


class CollectingSink:
    """An in-memory RecordSink that keeps every batch it is sent."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, RecordKind, pa.Table]] = []

    def send(self, tenant: str, kind: RecordKind, records: pa.Table) -> IngestResult:
        self.batches.append((tenant, kind, records))
        n = records.num_rows
        return IngestResult(kind=kind, received=n, accepted=n, duplicates=0, dead_lettered=0, quarantined=0)

    def table(self, kind: RecordKind) -> pa.Table:
        return pa.concat_tables([t for _, k, t in self.batches if k is kind])


def _sorted(table: pa.Table, kind: RecordKind) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in SPECS[kind].key if k != "tenant"])


def test_backfill_sends_exactly_what_one_window_generates() -> None:
    end = START + timedelta(hours=13, minutes=30)
    sink = CollectingSink()
    fractions: list[float] = []

    totals = Simulator(ONE_PLANT).backfill(
        sink, "acme", START, end, chunk=timedelta(hours=4), progress=fractions.append
    )

    expected = Simulator(ONE_PLANT).generate(START, end)
    for kind in RecordKind:
        assert _sorted(sink.table(kind), kind).equals(_sorted(expected[kind], kind))
        assert totals[kind].accepted == expected[kind].num_rows
    assert {tenant for tenant, _, _ in sink.batches} == {"acme"}
    assert fractions == sorted(fractions)
    assert len(fractions) == 4
    assert fractions[-1] == 1.0


def test_backfill_goes_forward_in_time_chunk_by_chunk() -> None:
    sink = CollectingSink()
    Simulator(ONE_PLANT).backfill(sink, "acme", START, START + timedelta(hours=9), chunk=timedelta(hours=3))

    states = [t for _, k, t in sink.batches if k is RecordKind.STATES]
    assert len(states) == 3
    for earlier, later in itertools.pairwise(states):
        assert pc.max(earlier.column("ts")).as_py() < pc.min(later.column("ts")).as_py()


def test_backfill_splits_tables_above_the_batch_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "MAX_BATCH_ROWS", 1000)
    sink = CollectingSink()

    Simulator(ONE_PLANT).backfill(sink, "acme", START, START + timedelta(hours=2))

    samples = [t for _, k, t in sink.batches if k is RecordKind.SAMPLES]
    assert len(samples) > 1
    assert all(t.num_rows <= 1000 for _, _, t in sink.batches)
    assert sum(t.num_rows for t in samples) == 60 * 3 * 120


class SteppingClock:
    """A wall clock that moves one second per reading and sets `stop` at the `stop_at`-th reading."""

    def __init__(self, start: datetime, stop: threading.Event, stop_at: int) -> None:
        self.now = start.timestamp() - 1
        self.readings = 0
        self._stop, self._stop_at = stop, stop_at

    def __call__(self) -> float:
        self.now += 1
        self.readings += 1
        if self.readings >= self._stop_at:
            self._stop.set()
        return self.now


def test_live_mode_replays_fast_then_keeps_to_the_wall_clock() -> None:
    wall = datetime(2026, 3, 3, 8, tzinfo=UTC)
    stop = threading.Event()
    clock = SteppingClock(wall, stop, stop_at=10)
    sink = CollectingSink()

    reached = Simulator(ONE_PLANT).run_live(
        sink, "acme", wall - timedelta(hours=1), stop, speed=600, tick_s=0.001, clock=clock
    )

    # Ten minutes of simulated time per wall second until it meets the wall clock, then the wall clock.
    assert reached == wall + timedelta(seconds=9)
    expected = Simulator(ONE_PLANT).generate(wall - timedelta(hours=1), reached)
    for kind in RecordKind:
        assert _sorted(sink.table(kind), kind).equals(_sorted(expected[kind], kind))
    assert pc.max(sink.table(RecordKind.COUNTS).column("ts")).as_py() <= reached


def test_live_mode_stops_when_asked() -> None:
    stop = threading.Event()
    stop.set()

    reached = Simulator(ONE_PLANT).run_live(CollectingSink(), "acme", START, stop)

    assert reached == START
