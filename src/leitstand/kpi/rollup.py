"""The OEE roll-up: the pieces of `pieces.sql` (a machine's time-model inputs per planned piece, i.e. per
UTC hour and shift) kept for whole hours, so that dashboards and long windows never rescan raw history.

It is maintained incrementally and equals a recomputation from the records at every step:

- Every write of states or counts marks, in the write's own transaction, which machine and time span it
  touched (`rollup_dirty`), duplicates and late records included. Nothing that landed escapes.
- A state's records shape the hours from the machine's previous state to its next one (a new state ends
  the span before it, and a span's length decides whether a delay is a minor stop), so a mark on states
  is widened to those neighbours; a count touches only its own hour.
- Hours are kept only once they lie `settle` (the minor-stop threshold) in the past: by then an open
  delay is either over or no longer minor, so no kept hour depends on the current time.
- A change of what the pieces are made of (sites, calendars, state mapping, ideal cycle times, the
  thresholds) changes the roll-up's fingerprint, and it is rebuilt from the records.

The coverage is one span of hours [origin, watermark) per tenant; queries take what it covers from it and
the rest (edges, the newest hour, anything not built yet) from raw records (`OeeService.pieces`), reading
the coverage and the pieces in one snapshot. A query never waits long for the roll-up: when it is busy
or has a backfill to fold in, the query reads raw records, slower but the same answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from leitstand.domain.assets import AssetLevel
from leitstand.domain.records import RecordKind
from leitstand.kpi.oee import HOUR, OeeService, floor_hour
from leitstand.store.asset_cache import TenantModel

log = logging.getLogger(__name__)

# for each mark on states: the machine's previous state before it and next state after it (within the
# lookback, beyond which a state does not hold)
_NEIGHBOURS_SQL = """
SELECT d.asset_id, d.lo, d.hi,
       max(s.ts) FILTER (WHERE s.ts < d.lo) AS prev_ts,
       min(s.ts) FILTER (WHERE s.ts > d.hi) AS next_ts
FROM marks d
LEFT JOIN states s ON s.tenant = $tenant AND s.asset_id = d.asset_id
                  AND s.ts >= d.lo - to_microseconds($hold_us) AND s.ts <= d.hi + to_microseconds($hold_us)
GROUP BY d.asset_id, d.lo, d.hi
"""
# a query waits this long for the roll-up (a background chunk) before it reads raw records instead
QUERY_WAIT_S = 1.0
# more pending marks than this (a backfill) are the background's to fold in, not a query's
MAX_QUERY_MARKS = 5_000
_FIRST_SQL = """
SELECT least((SELECT min(ts) FROM states WHERE tenant = $tenant),
             (SELECT min(ts) FROM counts WHERE tenant = $tenant)) AS first
"""


@dataclass
class RefreshStats:
    """What one refresh did: marks read, spans of hours recomputed, hours added."""

    marks: int = 0
    recomputed: int = 0
    extended_hours: int = 0
    rebuilt: bool = False


class PieceRollup:
    """Keeps the OEE pieces of whole hours per tenant; `OeeService` has it catch up before each query."""

    def __init__(
        self,
        oee: OeeService,
        chunk: timedelta = timedelta(days=1),
        query_catch_up: timedelta = timedelta(hours=6),
    ) -> None:
        self._oee = oee
        self._events = oee.events
        self._chunk = chunk
        self._query_catch_up = query_catch_up
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._empty: dict[str, bool] = {}  # tenants found without records
        self._fingerprints: dict[str, tuple[TenantModel, str]] = {}
        oee.rollup = self

    @property
    def settle(self) -> timedelta:
        return self._oee.minor_stop_threshold

    def prepare(self, tenant: str) -> str | None:
        """Before a query: catch up with new records (and at most `query_catch_up` of new hours: a
        rebuild is the background's work). The fingerprint the roll-up must carry to be used, or None
        when it cannot be brought up to date now (busy for longer than `QUERY_WAIT_S`, many marks
        pending, or failing): the query then reads raw records, which is slower but never wrong."""
        if self._events.rollup_dirty(tenant).num_rows > MAX_QUERY_MARKS:
            return None  # a backfill: the background folds it in; until then raw records answer
        lock = self._lock(tenant)
        if not lock.acquire(timeout=QUERY_WAIT_S):
            return None
        try:
            self._refresh(tenant, self._query_catch_up)
            return self.fingerprint(tenant)
        except Exception:
            log.exception(
                "the OEE roll-up of tenant %s could not catch up; answering from raw records", tenant
            )
            return None
        finally:
            lock.release()

    def refresh(self, tenant: str, extend_at_most: timedelta | None = None) -> RefreshStats:
        """Catch up with the marks of new records, then extend the coverage toward the settled present
        (by at most `extend_at_most`, or all the way)."""
        with self._lock(tenant):
            return self._refresh(tenant, extend_at_most)

    def _lock(self, tenant: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(tenant, threading.Lock())

    def catch_up(self, tenant: str, stop: threading.Event | None = None) -> RefreshStats:
        """Refresh one chunk at a time until the coverage reaches the settled present, letting queries in
        between chunks (a rebuild of a year takes a while)."""
        total = RefreshStats()
        while stop is None or not stop.is_set():
            stats = self.refresh(tenant, extend_at_most=self._chunk)
            total.marks += stats.marks
            total.recomputed += stats.recomputed
            total.extended_hours += stats.extended_hours
            total.rebuilt |= stats.rebuilt
            if stats.extended_hours == 0:
                break
        return total

    def _refresh(self, tenant: str, extend_at_most: timedelta | None) -> RefreshStats:
        stats = RefreshStats()
        fingerprint = self.fingerprint(tenant)
        coverage = self._events.rollup_coverage(tenant)
        if coverage is None or coverage[2] != fingerprint:
            seen = self._events.rollup_dirty(tenant)["id"]  # marks of records the rebuild will read
            if self._empty.get(tenant) and not len(seen):
                return stats  # still nothing recorded (a write would have left a mark)
            first = self._events.query(_FIRST_SQL, {"tenant": tenant})["first"][0].as_py()
            self._empty[tenant] = first is None
            if first is None:
                return stats  # nothing recorded yet
            origin = floor_hour(first)
            self._events.replace_pieces(
                tenant,
                origin,
                origin,
                _empty(),
                (origin, origin, fingerprint),
                clear_dirty_upto=int(seen[-1].as_py()) if len(seen) else 0,
            )
            coverage, stats.rebuilt = (origin, origin, fingerprint), True
        origin, watermark, _ = coverage
        marks = self._events.rollup_dirty(tenant)
        if marks.num_rows:
            stats.marks = marks.num_rows
            upto = int(marks["id"][-1].as_py())
            spans = self._touched(tenant, marks)
            earliest = min(lo for lo, _, _ in spans)
            while earliest < origin:  # late records before the coverage: it grows back to them
                step = max(earliest, origin - self._chunk)
                self._compute(tenant, step, origin, (step, watermark, fingerprint))
                origin = step
            for lo, hi, machines in _clusters(spans):
                lo, hi = max(lo, origin), min(hi, watermark)
                if lo < hi:
                    self._compute(tenant, lo, hi, (origin, watermark, fingerprint), sorted(machines))
                    stats.recomputed += 1
            self._events.replace_pieces(
                tenant, origin, origin, _empty(), (origin, watermark, fingerprint), clear_dirty_upto=upto
            )
        target = floor_hour(self._oee.clock() - self.settle)
        if extend_at_most is not None:
            target = min(target, watermark + extend_at_most)
        while watermark < target:
            step = min(target, watermark + self._chunk)
            self._compute(tenant, watermark, step, (origin, step, fingerprint))
            stats.extended_hours += (step - watermark) // HOUR
            watermark = step
        return stats

    def _compute(
        self,
        tenant: str,
        lo: datetime,
        hi: datetime,
        coverage: tuple[datetime, datetime, str],
        machines: list[str] | None = None,
    ) -> None:
        pieces = self._oee.raw_pieces(tenant, lo, hi, machines)
        self._events.replace_pieces(tenant, lo, hi, pieces, coverage, machines)

    def _touched(self, tenant: str, marks: pa.Table) -> list[tuple[datetime, datetime, str]]:
        """Whole hours each mark's records shape, per machine."""
        spans: list[tuple[datetime, datetime, str]] = []
        kinds = marks["kind"].to_pylist()
        counts = marks.filter(pa.array([k == RecordKind.COUNTS.value for k in kinds]))
        for row in counts.to_pylist():  # a count at ts covers the interval ending at ts
            lo = floor_hour(row["lo"] - timedelta(microseconds=1))
            spans.append((lo, floor_hour(row["hi"] - timedelta(microseconds=1)) + HOUR, row["asset_id"]))
        states = marks.filter(pa.array([k == RecordKind.STATES.value for k in kinds]))
        if states.num_rows:
            hold = self._oee.state_lookback
            neighbours = self._events.query(
                _NEIGHBOURS_SQL,
                {"tenant": tenant, "hold_us": hold // timedelta(microseconds=1)},
                {"marks": states.select(["asset_id", "lo", "hi"])},
            )
            for row in neighbours.to_pylist():
                lo = row["prev_ts"] or row["lo"]
                hi = row["next_ts"] or row["hi"] + hold
                spans.append((floor_hour(lo), floor_hour(hi) + HOUR, row["asset_id"]))
        return spans

    def fingerprint(self, tenant: str) -> str:
        """A digest of everything pieces are made of besides the records; cached per asset model."""
        model = self._oee.model(tenant)
        cached = self._fingerprints.get(tenant)
        if cached is not None and cached[0] is model:
            return cached[1]
        inputs = self._oee.inputs(tenant, _EPOCH, _EPOCH)
        # independent of the assets' order (moving a machine to another line changes no piece)
        mappings: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for entry in inputs.state_map.to_pylist():
            mappings[entry["map_key"]].append((entry["state"], entry["category"]))
        machines = sorted(
            (m["asset_id"], m["site_id"], m["ideal_cycle_s"], sorted(mappings[m["map_key"]]))
            for m in inputs.machines.to_pylist()
        )
        sites = {a.id: a.timezone for a in model.assets if a.level is AssetLevel.SITE}
        material: dict[str, Any] = {
            "machines": machines,
            "ideal_cycle": sorted(tuple(c.values()) for c in inputs.ideal_cycle.to_pylist()),
            "calendars": model.calendars,
            "zones": sites,
            "minor_stop_s": self._oee.minor_stop_threshold.total_seconds(),
            "hold_s": self._oee.state_lookback.total_seconds(),
        }
        digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
        self._fingerprints[tenant] = (model, digest)
        return digest


class RollupKeeper:
    """A background thread that lets the roll-up of every tenant catch up, every `interval_s` seconds."""

    def __init__(self, rollup: PieceRollup, tenants: Callable[[], list[str]], interval_s: float) -> None:
        self.rollup = rollup
        self._tenants = tenants
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the keeper's thread; calling it again while it runs does nothing."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="leitstand-rollup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tenants = self._tenants()
            except Exception:
                log.exception("the OEE roll-up could not list the tenants")
                tenants = []
            for tenant in tenants:
                try:
                    self.rollup.catch_up(tenant, self._stop)
                except Exception:  # the next round retries; queries fall back to raw records meanwhile
                    log.exception("the OEE roll-up of tenant %s failed to catch up", tenant)
            self._stop.wait(self._interval_s)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _clusters(spans: list[tuple[datetime, datetime, str]]) -> list[tuple[datetime, datetime, set[str]]]:
    """Spans merged where they overlap or touch, each with the machines it concerns."""
    out: list[tuple[datetime, datetime, set[str]]] = []
    for lo, hi, machine in sorted(spans):
        if out and lo <= out[-1][1]:
            last = out[-1]
            out[-1] = (last[0], max(last[1], hi), last[2] | {machine})
        else:
            out.append((lo, hi, {machine}))
    return out


def _empty() -> pa.Table:
    return pa.table({"piece_start": pa.array([], pa.timestamp("us", tz="UTC"))})
