"""Fault detection benchmarks: evaluation speed per sample, ingest with and without the detectors, and
detection quality against the simulator's injected faults (precision, recall, lead time, alarm rate)."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from leitstand.domain.assets import Asset, AssetLevel, Signal, parse_asset_model
from leitstand.domain.records import SAMPLES, RecordKind
from leitstand.domain.tenancy import Tenant
from leitstand.domain.time_model import StateMapping
from leitstand.sim.enterprise import enterprise_model
from leitstand.sim.faults import Fault, FaultRates
from leitstand.sim.feed import Simulator
from leitstand.sim.rules import demo_rules
from leitstand.store.sql import SqlMetadataStore
from leitstand.store.sql.alarms import SqlAlarmStore
from leitstand.watch.alarms import AlarmBook, AlarmPolicy
from leitstand.watch.engine import TenantWatch
from leitstand.watch.model import Detection, Priority
from leitstand.watch.rules import bind_rules, parse_rules
from leitstand.watch.service import known_states

SIGNALS = ("temperature", "motor_current", "vibration")


def speed_rules(everywhere: dict[str, Any]) -> list[dict[str, Any]]:
    """One rule of each streaming kind on every machine, none gated on machine state (the speed and
    ingest benchmarks send samples only)."""
    return [
        {"id": "hot", "kind": "threshold", "targets": everywhere, "signal": "temperature", "above": 65,
         "hysteresis": 2, "on_delay_s": 30},
        {"id": "ramp", "kind": "rate_of_change", "targets": everywhere, "signal": "motor_current",
         "rise_per_min": 1500},
        {"id": "stuck", "kind": "flatline", "targets": everywhere, "signal": "temperature",
         "min_duration_s": 600},
        {"id": "vib-z", "kind": "anomaly", "targets": everywhere, "signal": "vibration", "method": "robust_z",
         "baseline_samples": 50},
        {"id": "vib-cusum", "kind": "anomaly", "targets": everywhere, "signal": "vibration",
         "method": "cusum", "baseline_samples": 50},
        {"id": "current-ewma", "kind": "anomaly", "targets": everywhere, "signal": "motor_current",
         "method": "ewma", "baseline_samples": 50},
    ]  # fmt: skip


def _machines(n: int) -> list[Asset]:
    assets = [
        Asset("e", AssetLevel.ENTERPRISE, "E", None, "e"),
        Asset("s", AssetLevel.SITE, "S", "e", "e/s"),
        Asset("l", AssetLevel.LINE, "L", "s", "e/s/l"),
    ]
    assets += [
        Asset(
            f"m{i}",
            AssetLevel.MACHINE,
            f"M{i}",
            "l",
            f"e/s/l/m{i}",
            signals=tuple(Signal(s) for s in SIGNALS),
        )
        for i in range(n)
    ]
    return assets


def _sample_batch(machines: int, steps: int, first_step: int, rng: np.random.Generator) -> pa.Table:
    """`steps` instants of every signal of every machine, one second apart, in the record schema."""
    series = machines * len(SIGNALS)
    ids = pa.array([f"m{i}" for i in range(machines)]).dictionary_encode()
    names = pa.array(list(SIGNALS)).dictionary_encode()
    index = np.tile(np.arange(series), steps)
    t0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1e6)
    ts = t0 + np.repeat(np.arange(first_step, first_step + steps), series) * 1_000_000
    return pa.table(
        {
            "tenant": pa.nulls(len(index), pa.string()),
            "asset_id": ids.take(pa.array(index // len(SIGNALS))).cast(pa.string()),
            "signal": names.take(pa.array(index % len(SIGNALS))).cast(pa.string()),
            "ts": pa.array(ts, SAMPLES.schema.field("ts").type),
            "value": rng.normal(50, 5, len(index)),
            "quality": pa.nulls(len(index), pa.string()),
        },
        schema=SAMPLES.schema,
    )


def bench_speed(machines: int = 2_000, batch_samples: int = 1_000_000, batches: int = 5) -> dict[str, Any]:
    """Microseconds per sample for six streaming rules on every machine, in batches of ~1M samples."""
    assets = _machines(machines)
    bound = bind_rules(parse_rules(speed_rules({"under": ["e"]})), assets, None)
    watch = TenantWatch("bench", bound)
    rng = np.random.default_rng(3)
    steps = max(1, batch_samples // (machines * len(SIGNALS)))
    watch.evaluate(RecordKind.SAMPLES, _sample_batch(machines, steps, 0, rng))  # baselines are learned here
    timings, rows, detections = [], 0, 0
    for b in range(1, batches + 1):
        table = _sample_batch(machines, steps, b * steps, rng)
        started = time.perf_counter()
        detections += len(watch.evaluate(RecordKind.SAMPLES, table))
        timings.append(time.perf_counter() - started)
        rows += table.num_rows
    per_sample_us = sum(timings) / rows * 1e6
    return {
        "machines": machines,
        "series": machines * len(SIGNALS),
        "rules": len(bound),
        "batch_samples": steps * machines * len(SIGNALS),
        "batches": batches,
        "us_per_sample": round(per_sample_us, 3),
        "samples_per_s": round(rows / sum(timings)),
        "batch_s_median": round(statistics.median(timings), 3),
        "detections": detections,
    }


# detection quality -----------------------------------------------------------------------------------

# Which faults each detector is meant to find; an activation elsewhere is a false alarm for it.
AIMS: dict[str, set[tuple[str, str | None]]] = {
    "bearing-wear": {("bearing_wear", "vibration")},
    "temperature-drift": {("drift", "temperature")},
    "stuck-temperature": {("stuck_sensor", "temperature")},
    "stuck-vibration": {("stuck_sensor", "vibration")},
    "stuck-motor-current": {("stuck_sensor", "motor_current")},
    "scrap-rising": {("tool_wear", None)},
    "machine-pattern": {("bearing_wear", "vibration"), ("drift", "temperature")},
}
GRACE = timedelta(minutes=30)  # an alarm this soon after a fault's end still belongs to it


def multivariate_rule(everywhere: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "machine-pattern",
        "name": "Machine signals off their usual pattern",
        "kind": "multivariate",
        "targets": everywhere,
        "signals": list(SIGNALS),
        "while_state": ["RUNNING"],
        "baseline_samples": 480,
        "on_delay_s": 300,
        "priority": "medium",
    }


@dataclass
class Score:
    alarms: int = 0
    true_alarms: int = 0
    faults: int = 0
    found: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "alarms": self.alarms,
            "true_alarms": self.true_alarms,
            "precision": round(self.true_alarms / self.alarms, 3) if self.alarms else None,
            "faults": self.faults,
            "found": self.found,
            "recall": round(self.found / self.faults, 3) if self.faults else None,
        }


def _fits(d: Detection, f: Fault) -> bool:
    return d.asset_id == f.machine_id and f.start <= d.at <= f.end + GRACE


def score(
    detections: list[Detection], faults: list[Fault], scored_from: datetime, together: set[str]
) -> dict[str, Any]:
    """Per detector, and for the detectors `together` as one system: precision, recall, and the lead
    time before breakdowns."""
    scored = [d for d in detections if d.active and d.at >= scored_from and d.rule_id in AIMS]
    activations = [d for d in scored if d.rule_id in together]
    every = faults  # an alarm during a fault that began in the warm-up is a true alarm all the same
    faults = [f for f in faults if f.start >= scored_from]  # recall: faults the detectors could learn before
    out: dict[str, Any] = {}
    for rule_id, aims in AIMS.items():
        mine = [d for d in scored if d.rule_id == rule_id]
        meant = [f for f in faults if (f.kind, f.signal) in aims]
        s = Score(alarms=len(mine), faults=len(meant))
        s.true_alarms = sum(1 for d in mine if any(_fits(d, f) for f in every if (f.kind, f.signal) in aims))
        s.found = sum(1 for f in meant if any(_fits(d, f) for d in mine))
        out[rule_id] = s.document()
    overall = Score(alarms=len(activations), faults=len(faults))
    overall.true_alarms = sum(1 for d in activations if any(_fits(d, f) for f in every))
    overall.found = sum(1 for f in faults if any(_fits(d, f) for d in activations))
    leads = []
    for f in faults:
        if f.breakdown_at is None:
            continue
        first = min((d.at for d in activations if _fits(d, f) and d.at <= f.breakdown_at), default=None)
        if first is not None:
            leads.append((f.breakdown_at - first).total_seconds() / 60)
    bearing = [f for f in faults if f.breakdown_at is not None]
    by_kind: dict[str, Score] = defaultdict(Score)
    for f in faults:
        by_kind[f.kind].faults += 1
        by_kind[f.kind].found += any(_fits(d, f) for d in activations)
    return {
        "detectors": out,
        "together": sorted(together),
        "all_fault_detectors": overall.document(),
        "recall_by_fault_kind": {k: v.document()["recall"] for k, v in sorted(by_kind.items())},
        "breakdowns_with_precursor": len(bearing),
        "breakdowns_announced": len(leads),
        "lead_minutes_median": round(statistics.median(leads), 1) if leads else None,
        "lead_minutes_p10": round(float(np.percentile(leads, 10)), 1) if leads else None,
    }


def alarm_rate(
    detections: list[Detection], assets: list[Asset], hours: float, scored_from: datetime
) -> dict[str, Any]:
    """Annunciated alarms per operator (site) and hour after the alarm book's suppression, and before it."""
    with tempfile.TemporaryDirectory() as tmp:
        metadata = SqlMetadataStore(f"sqlite:///{Path(tmp) / 'm.sqlite'}")
        metadata.ensure_tenant(Tenant("nordwerk", "Nordwerk"))
        rules = {d.rule_id for d in detections}
        book = AlarmBook(
            "nordwerk",
            SqlAlarmStore(metadata.engine),
            assets,
            dict.fromkeys(rules, Priority.MEDIUM),
            AlarmPolicy(),
            clock=lambda: datetime.now(UTC),
        )
        scored = [d for d in detections if d.at >= scored_from]
        notices = book.apply(scored)
        metadata.close()
    sites = sum(1 for a in assets if a.level == AssetLevel.SITE)
    raw = sum(1 for d in scored if d.active)
    annunciated = sum(1 for n in notices if n.action == "activated")
    return {
        "operators": sites,
        "hours": hours,
        "activations": raw,
        "annunciated": annunciated,
        "per_operator_hour_raw": round(raw / sites / hours, 2),
        "per_operator_hour": round(annunciated / sites / hours, 2),
        "suppressed_flood": book.flood_suppressed,
    }


def bench_detection(plants: int = 2, days: int = 7, seed: int = 7) -> dict[str, Any]:
    """Run the demo's rules (and a multivariate one) over simulated days with injected faults."""
    doc = enterprise_model(plants=plants, seed=seed)
    enterprise = doc["enterprise"]["id"]
    assets = list(parse_asset_model(doc).assets)
    docs = [*demo_rules(enterprise), multivariate_rule({"under": [enterprise]})]
    bound = bind_rules(parse_rules(docs), assets, known_states(StateMapping()))
    watch = TenantWatch(enterprise, bound)
    simulator = Simulator(doc, seed=seed, faults=FaultRates())
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    end = start + timedelta(days=days)
    warm_up = start + timedelta(days=1)  # the detectors learn each machine's normal first
    detections: list[Detection] = []
    samples, seconds = 0, 0.0
    cursor = start
    while cursor < end:
        upto = cursor + timedelta(hours=1)
        tables = simulator.generate(cursor, upto)
        started = time.perf_counter()
        for kind in (RecordKind.STATES, RecordKind.COUNTS, RecordKind.SAMPLES):
            detections.extend(watch.evaluate(kind, tables[kind]))
        seconds += time.perf_counter() - started
        samples += tables[RecordKind.SAMPLES].num_rows
        cursor = upto
    faults = simulator.faults(start, end)
    hours = (end - warm_up).total_seconds() / 3600
    return {
        "plants": plants,
        "machines": sum(1 for a in assets if a.level == AssetLevel.MACHINE),
        "simulated_days": days,
        "scored_days": days - 1,
        "faults_injected": len([f for f in faults if f.start >= warm_up]),
        "samples": samples,
        "evaluation_s": round(seconds, 2),
        "quality": score(detections, faults, warm_up, {r["id"] for r in demo_rules(enterprise)} & set(AIMS)),
        "alarm_rate": alarm_rate(detections, assets, hours, warm_up),
    }


if __name__ == "__main__":  # python -m bench.watch
    print(json.dumps({"speed": bench_speed(batches=2), "detection": bench_detection(days=3)}, indent=2))
