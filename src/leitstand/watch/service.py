"""The watch service: stored batches in, alarms and notices out, on a thread of its own.

The ingest writer hands each committed batch over (`stored`); a bounded queue holds them for the watch
thread, which evaluates the tenant's rules, applies the detections to the tenant's alarm book and passes
the notices on (notifications, the live alarm console). A full queue makes the writer wait: the watch
falls behind the data by at most the queue, never loses a batch, and never holds unbounded memory.

Rules come from the configuration file (the operator's, per tenant) and from the API (stored). Rules are
bound to the asset model when a tenant's first batch arrives and again after the model changes; a rule
that no longer binds (its machine was removed) is reported with its error and the others run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa
from prometheus_client import Counter, Gauge, Histogram

from leitstand.bus.inprocess import BoundedQueue, QueueClosed
from leitstand.domain.assets import Asset
from leitstand.domain.errors import Conflict, InputError, NotFound
from leitstand.domain.records import RecordKind
from leitstand.domain.time_model import DEFAULT_STATE_CATEGORIES, StateMapping
from leitstand.store.interfaces import AlarmStore, EventStore
from leitstand.watch.alarms import AlarmBook, AlarmPolicy
from leitstand.watch.engine import TenantWatch
from leitstand.watch.history import history
from leitstand.watch.model import AlarmNotice, Detection
from leitstand.watch.rules import BoundRule, bind_rules, parse_rules

log = logging.getLogger(__name__)

QUEUE = Gauge("leitstand_watch_queue_records", "Records waiting for the watch thread")
LAG = Histogram("leitstand_watch_batch_seconds", "Time to evaluate one stored batch")
DETECTIONS = Counter("leitstand_watch_detections_total", "Detections by rule kind", ["kind", "active"])


@dataclass(frozen=True, slots=True)
class _Job:
    tenant: str
    kind: RecordKind
    table: pa.Table


class TenantModels(Protocol):
    """What the watch needs to know of a tenant's model (the asset cache provides it)."""

    def assets(self, tenant: str) -> list[Asset]: ...

    def state_mapping(self, tenant: str) -> StateMapping: ...


def known_states(mapping: StateMapping) -> frozenset[str]:
    """Every state code a tenant's machines may report: the defaults and the tenant's own."""
    codes = set(DEFAULT_STATE_CATEGORIES) | set(mapping.enterprise) | set(mapping.waiting)
    for table in (*mapping.machine_types.values(), *mapping.sites.values()):
        codes.update(table)
    return frozenset(codes)


class WatchService:
    """Rules, detectors and alarm books of every tenant, evaluated as batches are stored."""

    def __init__(
        self,
        store: AlarmStore,
        models: TenantModels,
        configured: Mapping[str, Sequence[dict[str, Any]]] | None = None,
        policy: AlarmPolicy | None = None,
        queue_records: int = 2_000_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._models = models
        self._configured = {t: list(docs) for t, docs in (configured or {}).items()}
        for tenant, docs in self._configured.items():
            parse_rules(docs, f"watch.rules.{tenant}")  # refuse a bad config file at start
        self._policy = policy or AlarmPolicy()
        self._clock = clock
        self._queue: BoundedQueue[_Job] = BoundedQueue(queue_records)
        self._watches: dict[str, TenantWatch] = {}
        self._books: dict[str, AlarmBook] = {}
        self._errors: dict[str, dict[str, str]] = {}  # tenant → rule id → why it does not run
        self._stale: set[str] = set()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[AlarmNotice], None]] = []
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()

    # lifecycle -------------------------------------------------------------------------------------------

    def on_notice(self, listener: Callable[[AlarmNotice], None]) -> None:
        """Call `listener(notice)` for every annunciated alarm change (from the watch thread or a request)."""
        self._listeners.append(listener)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="leitstand-watch", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Evaluate what is queued, then end the thread."""
        self._queue.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def stored(self, tenant: str, kind: RecordKind, table: pa.Table) -> None:
        """Hand a committed batch over (called by the ingest writer); waits while the queue is full."""
        if table.num_rows == 0:
            return
        job = _Job(tenant, kind, table)
        if not self._queue.put(job, table.num_rows, timeout=1.0):
            log.warning("the watch queue is full; the writer waits for the detectors")  # once per wait
            while not self._queue.put(job, table.num_rows, timeout=1.0):
                pass
        QUEUE.set(self._queue.size)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every handed-over batch is evaluated (for tests and the benchmark)."""
        deadline = time.monotonic() + timeout
        while self._queue.size or self._busy.is_set():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def model_changed(self, tenant: str) -> None:
        """The tenant's asset model changed: bind its rules again before the next batch."""
        with self._lock:
            self._stale.add(tenant)

    def _loop(self) -> None:
        while True:
            try:
                jobs = self._queue.take(500_000, timeout=1.0)
            except QueueClosed:
                return
            self._busy.set()
            try:
                QUEUE.set(self._queue.size)
                for job in jobs:
                    try:
                        self._evaluate(job)
                    except Exception:
                        log.exception("evaluating a batch of %s failed; the watch goes on", job.tenant)
                for tenant in list(self._books):  # shelving ends on the clock, with or without data
                    try:
                        self.publish(*self._books[tenant].expire_shelves())
                    except Exception:
                        log.exception("ending the shelving of alarms of %s failed", tenant)
            finally:
                self._busy.clear()

    def _evaluate(self, job: _Job) -> None:
        started = time.perf_counter()
        watch = self._watch(job.tenant)
        detections = watch.evaluate(job.kind, job.table)
        self._conclude(job.tenant, detections, watch)
        LAG.observe(time.perf_counter() - started)

    def _conclude(self, tenant: str, detections: Sequence[Detection], watch: TenantWatch) -> None:
        if not detections:
            return
        kinds = {r.id: r.rule.kind for r in watch.rules}
        for d in detections:
            DETECTIONS.labels(kinds.get(d.rule_id, "?"), str(d.active).lower()).inc()
        self.publish(*self.book(tenant).apply(detections))

    def publish(self, *notices: AlarmNotice) -> None:
        """Pass notices on to the listeners (the watch thread does; so do operator actions)."""
        for notice in notices:
            for listener in list(self._listeners):
                try:
                    listener(notice)
                except Exception:
                    log.exception("an alarm listener failed")

    # tenants ---------------------------------------------------------------------------------------------

    def _watch(self, tenant: str) -> TenantWatch:
        with self._lock:
            watch = self._watches.get(tenant)
            if watch is None or tenant in self._stale:
                self._stale.discard(tenant)
                watch = self._rebuild(tenant, watch)
            return watch

    def _rebuild(self, tenant: str, old: TenantWatch | None) -> TenantWatch:
        """Bind the tenant's rules; keep the carried state of rules whose document did not change."""
        assets = self._models.assets(tenant)
        states = known_states(self._models.state_mapping(tenant))
        bound: list[BoundRule] = []
        errors: dict[str, str] = {}
        for doc in self._documents(tenant):
            try:
                rule = parse_rules([doc])[0]
                bound.extend(bind_rules([rule], assets, states))
            except InputError as exc:
                errors[str(doc.get("id"))] = str(exc)
                log.error("watch rule %s of %s does not run: %s", doc.get("id"), tenant, exc)
        watch = TenantWatch(tenant, bound)
        adopted = watch.adopt(old) if old is not None else set()
        self._watches[tenant] = watch
        self._errors[tenant] = errors
        priorities = {r.id: r.rule.priority for r in bound}
        book = self._books.get(tenant)
        if book is None:
            book = self._books[tenant] = AlarmBook(
                tenant, self._store, assets, priorities, self._policy, self._clock
            )
        else:
            book.set_rules(priorities, assets)
        # The detectors go on from the alarm book: an alarm active there is active for them too (after a
        # restart, or a rule changed), and alarms of a rule that no longer runs end.
        running = {r.id for r in bound}
        for alarm in book.alarms():
            if alarm.active and alarm.rule_id in running and alarm.rule_id not in adopted:
                watch.seed_active(alarm.rule_id, alarm.asset_id, alarm.activated_at)
        for rule_id in {a.rule_id for a in book.alarms() if a.active} - running:
            why = errors.get(rule_id, "the rule was removed")
            self.publish(*book.retire(rule_id, f"the rule no longer runs: {why}"))
        return watch

    def _documents(self, tenant: str) -> list[dict[str, Any]]:
        return [*self._configured.get(tenant, []), *(doc for _, doc in self._store.rules(tenant))]

    def book(self, tenant: str) -> AlarmBook:
        """The tenant's alarm book (its rules are bound on first use)."""
        with self._lock:
            if tenant not in self._books:
                self._watch(tenant)
            return self._books[tenant]

    # rules -----------------------------------------------------------------------------------------------

    def rules(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's rules: the document, where it comes from, and why it does not run (if so)."""
        self._watch(tenant)
        errors = self._errors.get(tenant, {})
        configured = {str(d.get("id")) for d in self._configured.get(tenant, [])}
        return [
            {
                "rule": doc,
                "source": "config" if str(doc.get("id")) in configured else "api",
                "error": errors.get(str(doc.get("id"))),
            }
            for doc in self._documents(tenant)
        ]

    def add_rule(self, tenant: str, doc: dict[str, Any], by: str) -> dict[str, Any]:
        """Validate a rule against the tenant's model and rules, store it, and start evaluating it."""
        rule = parse_rules([doc])[0]
        if any(str(d.get("id")) == rule.id for d in self._documents(tenant)):
            raise Conflict(f"tenant {tenant!r} has a rule {rule.id!r}")
        bind_rules([rule], self._models.assets(tenant), known_states(self._models.state_mapping(tenant)))
        stored: dict[str, Any] = rule.model_dump(mode="json", exclude_defaults=True) | {
            "id": rule.id,
            "kind": rule.kind,
        }
        self._store.save_rule(tenant, stored, by, self._clock())
        self.model_changed(tenant)
        return stored

    def delete_rule(self, tenant: str, rule_id: str) -> None:
        if any(str(d.get("id")) == rule_id for d in self._configured.get(tenant, [])):
            raise Conflict(f"rule {rule_id!r} comes from the configuration file; change it there")
        if not self._store.delete_rule(tenant, rule_id):
            raise NotFound(f"no rule {rule_id!r}")
        self.model_changed(tenant)
        self._watch(tenant)  # bound again now, so the rule's active alarms end at once

    def backtest(
        self, tenant: str, docs: Sequence[dict[str, Any]], events: EventStore, start: datetime, end: datetime
    ) -> list[Detection]:
        """What the rules `docs` would have detected in [start, end) of stored history, in time order.
        Nothing is stored and no alarm is raised, so it can run as often as wanted."""
        rules = parse_rules(docs)
        states = known_states(self._models.state_mapping(tenant))
        bound = bind_rules(rules, self._models.assets(tenant), states)
        watch = TenantWatch(tenant, bound)
        machines = sorted({a for b in bound for a in b.assets})
        found: list[Detection] = []
        for kind, table in history(events, tenant, start, end, machines):
            found.extend(watch.evaluate(kind, table))
        found.extend(watch.advance(int(end.timestamp() * 1_000_000)))
        return found
