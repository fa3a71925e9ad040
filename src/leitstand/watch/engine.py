"""Streaming evaluation of a tenant's rules over record batches, vectorised per batch.

`TenantWatch.evaluate(kind, table)` takes a batch as it was stored and returns the detections it causes
(a condition turned active or cleared); `advance(now)` finds what the passing of time alone causes (data
that stopped coming, a machine down too long). Time is the tenant's data time: the newest timestamp seen,
so evaluating history gives exactly what evaluating it live gave.

Every watched series (a rule on one machine) carries its state from batch to batch: the condition, when
its current run began, the last timestamp and value, whether the alarm is active, and detector state
(baseline, EWMA, CUSUM). Rows at or before a series' last timestamp were seen already and are skipped,
so a replay detects nothing new; an activation's identity is (rule, machine, time), so evaluating the
same data again after a restart finds the same alarms, which the alarm book then recognises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import Counter

from leitstand.domain.records import Quality, RecordKind
from leitstand.watch.model import Detection
from leitstand.watch.rules import (
    AnomalyRule,
    BoundRule,
    FlatlineRule,
    MultivariateRule,
    RateRule,
    ScrapRateRule,
    StaleRule,
    StateDurationRule,
    ThresholdRule,
)
from leitstand.watch.vector import (
    Padded,
    changes,
    delayed,
    group_firsts,
    group_lasts,
    latch,
    previous,
    run_starts,
    spans,
)

SKIPPED = Counter("leitstand_watch_skipped_total", "Rows the detectors did not evaluate", ["reason"])
EVALUATED = Counter("leitstand_watch_rows_total", "Rows evaluated by the detectors", ["kind"])

_US = 1_000_000
_NONE = np.iinfo(np.int64).min // 2  # "no timestamp carried"
_MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation
_STATE_MEMORY_US = 2 * 86400 * _US  # state changes kept per machine for while_state


class Carry:
    """Per watched series (one machine under one rule), what the last batch left, as parallel arrays."""

    _FLOAT = ("last_value", "a", "b", "center", "scale")
    _INT = ("start", "last_ts")
    _BOOL = ("cond", "active")

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}
        self.names: list[str] = []
        self._size = 0
        self.arrays: dict[str, np.ndarray] = {}
        self._grow(16)
        self.learning: dict[int, list[np.ndarray]] = {}  # baseline values still being collected
        self.extra: dict[int, Any] = {}  # per-series objects (scrap tails, multivariate models)

    def _grow(self, capacity: int) -> None:
        fill = {**dict.fromkeys(self._FLOAT, np.nan), **dict.fromkeys(self._INT, _NONE)}
        for name in (*self._FLOAT, *self._INT, *self._BOOL):
            dtype = np.float64 if name in self._FLOAT else np.int64 if name in self._INT else bool
            grown = np.full(capacity, fill.get(name, False), dtype=dtype)
            if name in self.arrays:
                old = self.arrays[name]
                grown[: len(old)] = old
            self.arrays[name] = grown

    def slots_of(self, names: Sequence[str]) -> np.ndarray:
        """The slot of each named series, created on first sight."""
        out = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            slot = self.slots.get(name)
            if slot is None:
                slot = self.slots[name] = self._size
                self.names.append(name)
                self._size += 1
                if self._size > len(self.arrays["cond"]):
                    self._grow(2 * self._size)
            out[i] = slot
        return out

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __len__(self) -> int:
        return self._size


@dataclass(slots=True)
class Rows:
    """A rule's rows of one batch, sorted by series then time: series slot, group-first mask, ts (µs)."""

    slot: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    first: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.first = group_firsts(self.slot)

    def take(self, keep: np.ndarray) -> Rows:
        return Rows(self.slot[keep], self.ts[keep], self.value[keep])

    def __len__(self) -> int:
        return len(self.ts)


class _Batch:
    """A stored batch, columns decoded once for every rule that looks at it."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        encoded = pc.dictionary_encode(table["asset_id"]).combine_chunks()
        self.asset_code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        self.assets: list[str] = encoded.dictionary.to_pylist()
        self.ts = table["ts"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
        self._by_signal: dict[str, np.ndarray] | None = None
        self._value: np.ndarray | None = None
        self._all: np.ndarray | None = None
        self._gathered: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.state_codes: np.ndarray | None = None  # of a batch of states, set by StateTrack.codes_of

    def signal_rows(self, signal: str) -> np.ndarray:
        """Row numbers of the batch's samples of `signal` that can be evaluated (not BAD, not NaN),
        sorted by machine and time; the batch is sorted once for all its signals."""
        if self._by_signal is None:
            encoded = pc.dictionary_encode(self.table["signal"]).combine_chunks()
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            value = self.values()
            usable = ~np.isnan(value)
            quality = self.table["quality"]
            if quality.null_count < len(quality):
                bad = pc.fill_null(pc.equal(quality, Quality.BAD.value), False)
                usable &= ~bad.to_numpy(zero_copy_only=False)
                SKIPPED.labels("bad_quality").inc(int(pc.sum(pc.cast(bad, pa.int64())).as_py() or 0))
            SKIPPED.labels("nan").inc(int(np.isnan(value).sum()))
            order = self._series_order(codes.astype(np.int64) * len(self.assets) + self.asset_code)
            order = order[usable[order]]
            edges = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1))
            self._by_signal = {
                name: order[edges[i] : edges[i + 1]] for i, name in enumerate(encoded.dictionary.to_pylist())
            }
        return self._by_signal.get(signal, np.empty(0, dtype=np.int64))

    def all_rows(self) -> np.ndarray:
        """Every row number, sorted by machine and time."""
        if self._all is None:
            self._all = self._series_order(self.asset_code)
        return self._all

    def _series_order(self, key: np.ndarray) -> np.ndarray:
        """Row numbers sorted by `key` (a series number), then time. Batches mostly come in time order,
        so a stable sort by series alone usually is that order already (a radix sort when there are
        fewer than 65,536 series); otherwise it is sorted by time too."""
        small = len(key) == 0 or int(key.max()) < 2**16
        order = np.argsort(key.astype(np.uint16) if small else key, kind="stable")
        ts, series = self.ts[order], key[order]
        if not np.all((ts[1:] >= ts[:-1]) | (series[1:] != series[:-1])):
            order = np.lexsort((self.ts, key))
        return order

    def gathered(self, signal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of `signal` (as `signal_rows`) with their machine codes and times, for every rule
        on the signal."""
        found = self._gathered.get(signal)
        if found is None:
            rows = self.signal_rows(signal)
            found = self._gathered[signal] = (rows, self.asset_code[rows], self.ts[rows])
        return found

    def values(self) -> np.ndarray:
        if self._value is None:
            column = pc.fill_null(self.table["value"], np.nan).combine_chunks()
            self._value = column.to_numpy(zero_copy_only=False)
        return self._value

    def asset_mask(self, targets: frozenset[str]) -> np.ndarray:
        """Per asset code of this batch, whether the rule watches it."""
        return np.array([a in targets for a in self.assets], dtype=bool)


def _datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / _US, UTC)


class StateTrack:
    """Recent state changes per machine, to know which state a sample was taken in."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def codes(self) -> dict[str, int]:
        return self._codes

    def code(self, state: str) -> int:
        return self._codes.setdefault(state, len(self._codes))

    def codes_of(self, batch: _Batch) -> np.ndarray:
        """The state code of each row of a batch of states (each distinct state looked up once)."""
        if batch.state_codes is None:
            batch.state_codes = self._encode(batch)
        return batch.state_codes

    def _encode(self, batch: _Batch) -> np.ndarray:
        encoded = pc.dictionary_encode(batch.table["state"]).combine_chunks()
        lookup = np.array([self.code(s) for s in encoded.dictionary.to_pylist()], dtype=np.int64)
        return (
            lookup[encoded.indices.to_numpy(zero_copy_only=False)] if len(lookup) else np.empty(0, np.int64)
        )

    def add(self, batch: _Batch) -> None:
        codes = self.codes_of(batch)
        order = np.lexsort((batch.ts, batch.asset_code))
        code_sorted = batch.asset_code[order]
        for lo, hi in spans(group_firsts(code_sorted)):
            rows = order[lo:hi]
            asset = batch.assets[code_sorted[lo]]
            ts, st = batch.ts[rows], codes[rows]
            old = self._series.get(asset)
            if old is not None:
                ts, st = np.concatenate([old[0], ts]), np.concatenate([old[1], st])
                order2 = np.argsort(ts, kind="stable")
                ts, st = ts[order2], st[order2]
            keep = ts >= ts[-1] - _STATE_MEMORY_US
            keep[-1] = True
            self._series[asset] = (ts[keep], st[keep])

    def state_at(self, asset: str, ts: np.ndarray) -> np.ndarray:
        """The state code in force at each ts (-1 where none is known)."""
        series = self._series.get(asset)
        if series is None:
            return np.full(len(ts), -1, dtype=np.int64)
        i = np.searchsorted(series[0], ts, side="right") - 1
        return np.where(i >= 0, series[1][np.maximum(i, 0)], -1)


class TenantWatch:
    """One tenant's bound rules and the carried state of every series they watch."""

    def __init__(self, tenant: str, rules: Sequence[BoundRule]) -> None:
        self.tenant = tenant
        self.rules = [r for r in rules if r.rule.enabled]
        self._carry: dict[str, Carry] = {r.id: Carry() for r in self.rules}
        self._targets = {r.id: frozenset(r.assets) for r in self.rules}
        self.states = StateTrack()
        self.now_us = _NONE  # the tenant's data time: the newest timestamp evaluated
        # Stale samples are judged by the newest sample: a batch of states that runs ahead of the
        # samples (a backfill sends each kind for hours at once) must not make every signal stale.
        self.samples_now_us = _NONE
        self.origin_us = _NONE  # the oldest timestamp of the first batch: when watching began
        self._tails: set[str] = set()  # stale rules whose silent series have been looked for

    def adopt(self, old: TenantWatch) -> set[str]:
        """Go on from `old`'s carried state for every rule whose document is unchanged (machines added to
        or removed from its targets keep or lose only their own series); return those rules' ids."""
        before = {r.id: r for r in old.rules}
        adopted = set()
        for bound in self.rules:
            was = before.get(bound.id)
            if was is not None and was.rule == bound.rule:
                self._carry[bound.id] = old._carry[bound.id]
                adopted.add(bound.id)
        self.states = old.states
        self._tails = old._tails & adopted
        self.now_us, self.origin_us = old.now_us, old.origin_us
        self.samples_now_us = old.samples_now_us
        return adopted

    def seed_active(self, rule_id: str, asset_id: str, since: datetime | None) -> None:
        """Start a series with its alarm active (its alarm is, in the alarm book): after a restart or a
        changed rule, the detector then clears it when the condition is gone, and does not raise it
        again while the condition holds."""
        carry = self._carry.get(rule_id)
        if carry is None:
            return
        slot = carry.slots_of([asset_id])[0]
        carry["active"][slot] = carry["cond"][slot] = True
        if since is not None and isinstance(self._rule(rule_id), StaleRule):
            carry["start"][slot] = int(since.timestamp() * _US)

    def _rule(self, rule_id: str) -> Any:
        return next(b.rule for b in self.rules if b.id == rule_id)

    # entry points ------------------------------------------------------------------------------------

    def evaluate(self, kind: RecordKind, table: pa.Table) -> list[Detection]:
        """The detections a stored batch causes, in time order."""
        if table.num_rows == 0:
            return []
        batch = _Batch(table)
        if self.origin_us == _NONE:
            self.origin_us = int(batch.ts.min())
        EVALUATED.labels(kind.value).inc(table.num_rows)
        if kind == RecordKind.STATES:
            self.states.add(batch)
        out: list[Detection] = []
        for bound in self.rules:
            rule = bound.rule
            if kind == RecordKind.SAMPLES and isinstance(rule, MultivariateRule):
                out.extend(self._multivariate(bound, batch))
            elif kind == RecordKind.SAMPLES and hasattr(rule, "signal"):
                out.extend(self._signal(bound, batch))
            elif kind == RecordKind.STATES and isinstance(rule, StateDurationRule):
                out.extend(self._state_duration(bound, batch))
            elif kind == RecordKind.COUNTS and isinstance(rule, ScrapRateRule):
                out.extend(self._scrap_rate(bound, batch))
        newest = int(batch.ts.max())
        if kind == RecordKind.SAMPLES:
            self.samples_now_us = max(self.samples_now_us, newest)
        out.extend(self._advance(newest))
        out.sort(key=lambda d: d.at)
        return out

    def advance(self, now_us: int) -> list[Detection]:
        """What time alone causes up to `now_us` (data time, also for samples): stale signals and
        machines too long in a state. Evaluating a batch does this by itself."""
        self.samples_now_us = max(self.samples_now_us, now_us)
        return self._advance(now_us)

    def _advance(self, now_us: int) -> list[Detection]:
        self.now_us = max(self.now_us, now_us)
        out: list[Detection] = []
        for bound in self.rules:
            rule = bound.rule
            if isinstance(rule, StaleRule):
                out.extend(self._stale_tail(bound))
            elif isinstance(rule, StateDurationRule):
                out.extend(self._state_tail(bound))
        return out

    # rows --------------------------------------------------------------------------------------------

    def _rows(
        self, bound: BoundRule, batch: _Batch, rows: np.ndarray, value: np.ndarray, signal: str | None = None
    ) -> Rows:
        """The rule's rows among `rows` (sorted by machine and time; of `signal` if given), without rows
        already seen."""
        carry = self._carry[bound.id]
        if signal is not None:
            rows, code, ts = batch.gathered(signal)
        else:
            code, ts = batch.asset_code[rows], batch.ts[rows]
        watched_codes = batch.asset_mask(self._targets[bound.id])
        if not watched_codes.all():
            watched = watched_codes[code]
            rows, code, ts = rows[watched], code[watched], ts[watched]
        present = code[group_firsts(code)]
        slot_of_code = np.full(len(batch.assets), -1, dtype=np.int64)
        slot_of_code[present] = carry.slots_of([batch.assets[c] for c in present])
        slot = slot_of_code[code]
        fresh = ts > carry["last_ts"][slot]
        fresh[1:] &= ~((slot[1:] == slot[:-1]) & (ts[1:] == ts[:-1]))  # one row per series and instant
        SKIPPED.labels("seen").inc(int(len(fresh) - fresh.sum()))
        return Rows(slot[fresh], ts[fresh], value[rows[fresh]])

    def _in_states(self, bound: BoundRule, rows: Rows, wanted: Sequence[str]) -> np.ndarray:
        """Per row, whether the machine was in one of `wanted` states at the row's time."""
        codes = [self.states.code(s) for s in wanted]
        allowed = np.zeros(len(self.states.codes) + 1, dtype=bool)  # the last entry: no state known
        allowed[codes] = True
        names = self._carry[bound.id].names
        keep = np.zeros(len(rows), dtype=bool)
        for lo, hi in spans(rows.first):
            keep[lo:hi] = allowed[self.states.state_at(names[rows.slot[lo]], rows.ts[lo:hi])]
        return keep

    # signal rules ------------------------------------------------------------------------------------

    def _signal(self, bound: BoundRule, batch: _Batch) -> list[Detection]:
        rule = bound.rule
        rows = self._rows(bound, batch, batch.signal_rows(rule.signal), batch.values(), rule.signal)
        if isinstance(rule, StaleRule):
            return self._stale(bound, rows)
        if rule.while_state:
            rows = rows.take(self._in_states(bound, rows, rule.while_state))
        if not len(rows):
            return []
        carry = self._carry[bound.id]
        slot = rows.slot
        prev_value = previous(rows.value, rows.first, carry["last_value"][slot])
        prev_ts = previous(rows.ts, rows.first, carry["last_ts"][slot])
        gap = rows.ts - prev_ts > rule.max_gap_s * _US
        on_delay = rule.on_delay_s
        explain: dict[str, np.ndarray] = {}
        if isinstance(rule, ThresholdRule):
            cond = self._threshold(bound, rows, prev_value, prev_ts, gap)
        elif isinstance(rule, RateRule):
            rate = np.where(gap, np.nan, (rows.value - prev_value) / ((rows.ts - prev_ts) / (60 * _US)))
            cond = np.zeros(len(rows), dtype=bool)
            if rule.rise_per_min is not None:
                cond |= rate > rule.rise_per_min
            if rule.fall_per_min is not None:
                cond |= rate < -rule.fall_per_min
            explain["rate_per_min"] = rate
        elif isinstance(rule, FlatlineRule):
            cond = ~gap & (np.abs(rows.value - prev_value) <= rule.tolerance)
            on_delay = max(on_delay, rule.min_duration_s)
        elif isinstance(rule, AnomalyRule):
            cond, explain = self._anomaly(rule, carry, rows)
        else:  # pragma: no cover - every signal rule kind is handled above
            raise TypeError(type(rule).__name__)
        return self._conclude(bound, rows, cond, on_delay, explain)

    def _threshold(
        self, bound: BoundRule, rows: Rows, prev_value: np.ndarray, prev_ts: np.ndarray, gap: np.ndarray
    ) -> np.ndarray:
        rule: ThresholdRule = bound.rule
        v = rows.value
        if bound.condition is not None:
            rate = np.where(gap, np.nan, (v - prev_value) / ((rows.ts - prev_ts) / (60 * _US)))
            with np.errstate(invalid="ignore", divide="ignore"):
                result = bound.condition({"value": v, "rate": rate})
            return np.broadcast_to(np.asarray(result, dtype=bool), v.shape).copy()
        h = rule.hysteresis
        on = np.zeros(len(v), dtype=bool)
        off = np.ones(len(v), dtype=bool)
        if rule.above is not None:
            on |= v > rule.above
            off &= v <= rule.above - h
        if rule.below is not None:
            on |= v < rule.below
            off &= v >= rule.below + h
        return latch(on, off, rows.first, self._carry[bound.id]["cond"][rows.slot])

    def _anomaly(
        self, rule: AnomalyRule, carry: Carry, rows: Rows
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        x = np.log(np.maximum(rows.value, 1e-12)) if rule.transform == "log" else rows.value
        learning = self._learn_baseline(rule.baseline_samples, carry, rows, x)
        center, scale = carry["center"][rows.slot], carry["scale"][rows.slot]
        z = (x - center) / scale
        z[learning] = 0.0
        limit = rule.limit
        if rule.method == "robust_z":
            stat_hi, stat_lo = z, -z
            # Clears once back within half the limit, so a value hovering at the limit does not chatter.
            on_hi, off_hi = z > limit, z <= limit / 2
            on_lo, off_lo = z < -limit, z >= -limit / 2
        else:
            stat_hi, stat_lo = self._smooth(rule, carry, rows, z, learning)
            if rule.method == "ewma":
                limit = rule.limit * np.sqrt(rule.ewma_lambda / (2 - rule.ewma_lambda))
            # Clears once the statistic is back below half the limit: no chattering at the limit.
            on_hi, off_hi = stat_hi > limit, stat_hi <= limit / 2
            on_lo, off_lo = stat_lo > limit, stat_lo <= limit / 2
        if rule.side == "high":
            on, off = on_hi, off_hi
        elif rule.side == "low":
            on, off = on_lo, off_lo
        else:
            on, off = on_hi | on_lo, off_hi & off_lo
        on &= ~learning
        off &= ~learning  # while a normal is being learned, the alarm keeps its state
        cond = latch(on, off, rows.first, carry["cond"][rows.slot])
        statistic = np.where(stat_hi >= stat_lo, stat_hi, -stat_lo) if rule.method != "robust_z" else z
        return cond, {
            "z": z,
            "statistic": statistic,
            "baseline": center,
            "sigma": scale,
            "limit": np.full(len(z), limit),
        }

    def _learn_baseline(self, needed: int, carry: Carry, rows: Rows, values: np.ndarray) -> np.ndarray:
        """Rows whose `values` went into a baseline still being learned (median and MAD of the first
        `needed` of each series)."""
        learning = np.zeros(len(rows), dtype=bool)
        unknown = np.isnan(carry["center"][rows.slot])
        if not unknown.any():
            return learning
        for lo, hi in spans(rows.first):
            if not unknown[lo]:
                continue
            slot = int(rows.slot[lo])
            buffer = carry.learning.setdefault(slot, [])
            have = sum(len(b) for b in buffer)
            take = min(needed - have, hi - lo)
            buffer.append(values[lo : lo + take])
            learning[lo : lo + take] = True
            if have + take >= needed:
                baseline = np.concatenate(carry.learning.pop(slot))
                carry["center"][slot] = median = float(np.median(baseline))
                carry["scale"][slot] = _robust_sigma(baseline, median)
        return learning

    def _smooth(
        self, rule: AnomalyRule, carry: Carry, rows: Rows, z: np.ndarray, learning: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """EWMA (high = statistic, low = its negative) or the two one-sided CUSUMs of the z-scores, for
        all series at once (one row of a matrix per series), or series by series when their lengths
        differ too much to pad."""
        layout = Padded.of(rows.first)
        layouts = (
            [layout] if layout is not None else [Padded.of(rows.first[lo:hi]) for lo, hi in spans(rows.first)]
        )
        offsets = [0] if layout is not None else [lo for lo, _ in spans(rows.first)]
        hi_out, lo_out = np.zeros(len(z)), np.zeros(len(z))
        lam, k = rule.ewma_lambda, rule.cusum_k
        for part, offset in zip(layouts, offsets, strict=True):
            assert part is not None  # one series is always its own layout
            slots = rows.slot[offset + part.starts]
            values = z[offset : offset + int(part.lengths.sum())]
            a0 = np.nan_to_num(carry["a"][slots])
            b0 = np.nan_to_num(carry["b"][slots])
            matrix = part.pad(values, 0.0)  # padding comes after each series' rows: it changes nothing
            if rule.method == "ewma":
                e = _ewma(matrix, a0, lam)
                up, down = e, -e
                carry["a"][slots] = part.last(e)
            else:
                # Capped at twice the limit, so the alarm clears soon after the shift ends.
                cap = 2 * rule.limit
                up, down = _cusum(matrix - k, a0, cap), _cusum(-matrix - k, b0, cap)
                carry["a"][slots], carry["b"][slots] = part.last(up), part.last(down)
            span = slice(offset, offset + len(values))
            hi_out[span], lo_out[span] = part.unpad(up), part.unpad(down)
        return np.where(learning, 0.0, hi_out), np.where(learning, 0.0, lo_out)

    # shared conclusion: delays, transitions, carried state ---------------------------------------------

    def _conclude(
        self,
        bound: BoundRule,
        rows: Rows,
        cond: np.ndarray,
        on_delay_s: float,
        explain: dict[str, np.ndarray],
        at: np.ndarray | None = None,
    ) -> list[Detection]:
        rule, carry, slot = bound.rule, self._carry[bound.id], rows.slot
        result = delayed(
            cond,
            rows.ts,
            rows.first,
            carry["cond"][slot],
            carry["start"][slot],
            carry["last_ts"][slot],
            carry["active"][slot],
            int(on_delay_s * _US),
            int(rule.off_delay_s * _US),
            int(rule.max_gap_s * _US),
        )
        found = [
            self._detection(
                bound,
                carry.names[slot[i]],
                int(rows.ts[i] if at is None else at[i]),
                bool(result.active[i]),
                float(rows.value[i]),
                {k: v[i] for k, v in explain.items()},
            )
            for i in changes(result.active, rows.first, carry["active"][slot])
        ]
        last = group_lasts(slot)
        s = slot[last]
        carry["cond"][s] = cond[last]
        carry["start"][s] = result.run_start[last]
        carry["last_ts"][s] = rows.ts[last]
        carry["last_value"][s] = rows.value[last]
        carry["active"][s] = result.active[last]
        return found

    def _detection(
        self, bound: BoundRule, asset: str, at_us: int, active: bool, value: float, explain: dict[str, Any]
    ) -> Detection:
        rule = bound.rule
        explanation = {k: _plain(v) for k, v in explain.items()}
        return Detection(
            rule_id=rule.id,
            asset_id=asset,
            at=_datetime(at_us),
            active=active,
            value=_plain(value),
            message=_message(rule, asset, value, explanation) if active else f"{rule.title}: back to normal",
            explanation=explanation,
        )

    # stale data ----------------------------------------------------------------------------------------

    def _stale(self, bound: BoundRule, rows: Rows) -> list[Detection]:
        """Gaps inside the batch (activated at last sample + max age, cleared by the next sample)."""
        rule: StaleRule = bound.rule
        carry = self._carry[bound.id]
        if not len(rows):
            return []
        max_age = int(rule.max_age_s * _US)
        prev_ts = previous(rows.ts, rows.first, carry["last_ts"][rows.slot])
        was_active = previous(np.zeros(len(rows), dtype=bool), rows.first, carry["active"][rows.slot])
        out = []
        # A series never heard before counts from when watching it began (as the tail does).
        since = carry["b"][rows.slot]
        began = np.where(np.isnan(since), self._watch_start(), np.nan_to_num(since)).astype(np.int64)
        prev_ts = np.where(prev_ts == _NONE, began, prev_ts)
        # A clear comes after its activation, also when the activation was declared by data time and
        # the late series then delivers samples from before it (carried "start" is the activation).
        activated = previous(np.zeros(len(rows), dtype=np.int64), rows.first, carry["start"][rows.slot])
        for i in np.flatnonzero(rows.ts - prev_ts > max_age):
            asset = carry.names[rows.slot[i]]
            if not was_active[i]:
                out.append(self._stale_detection(bound, asset, int(prev_ts[i]) + max_age, True))
                activated[i] = int(prev_ts[i]) + max_age
            out.append(self._stale_detection(bound, asset, max(int(rows.ts[i]), int(activated[i])), False))
        for i in np.flatnonzero(was_active & rows.first & (rows.ts - prev_ts <= max_age)):
            at = max(int(rows.ts[i]), int(activated[i]))
            out.append(self._stale_detection(bound, carry.names[rows.slot[i]], at, False))
        last = group_lasts(rows.slot)
        carry["last_ts"][rows.slot[last]] = rows.ts[last]
        carry["last_value"][rows.slot[last]] = rows.value[last]
        carry["active"][rows.slot[last]] = False
        return out

    def _watch_start(self) -> int:
        return self.origin_us if self.origin_us != _NONE else self.samples_now_us

    def _stale_tail(self, bound: BoundRule) -> list[Detection]:
        """Watched series silent for longer than the limit, by the newest sample of the tenant. A watched
        machine that never sent anything is stale too, counted from when watching began."""
        rule: StaleRule = bound.rule
        if self.samples_now_us == _NONE:
            return []
        carry = self._carry[bound.id]
        slots = carry.slots_of(bound.assets)  # the machines the rule watches now
        since = carry["b"][slots]  # when watching a series began (its first batch, or when it was added)
        new = np.isnan(since)
        # From when watching began; a machine added to the targets later, from when it was added.
        since[new] = self.samples_now_us if bound.id in self._tails else self.origin_us
        self._tails.add(bound.id)
        carry["b"][slots] = since
        last_ts = carry["last_ts"][slots]
        heard = np.where(last_ts == _NONE, since.astype(np.int64), last_ts)
        max_age = int(rule.max_age_s * _US)
        due = ~carry["active"][slots] & (self.samples_now_us - heard > max_age)
        out = []
        for slot, at in zip(slots[due], heard[due] + max_age, strict=True):
            out.append(self._stale_detection(bound, carry.names[slot], int(at), True))
        carry["active"][slots[due]] = True
        carry["start"][slots[due]] = heard[due] + max_age
        return out

    def _stale_detection(self, bound: BoundRule, asset: str, at_us: int, active: bool) -> Detection:
        rule: StaleRule = bound.rule
        message = (
            f"{rule.title}: no {rule.signal} from {asset} for more than {rule.max_age_s:g} s"
            if active
            else f"{rule.title}: {rule.signal} from {asset} arrives again"
        )
        return Detection(
            rule.id, asset, _datetime(at_us), active, None, message, {"max_age_s": rule.max_age_s}
        )

    # machine states ------------------------------------------------------------------------------------

    def _state_duration(self, bound: BoundRule, batch: _Batch) -> list[Detection]:
        rule: StateDurationRule = bound.rule
        codes = self.states.codes_of(batch)
        rows = self._rows(bound, batch, batch.all_rows(), codes.astype(np.float64))
        if not len(rows):
            return []
        carry = self._carry[bound.id]
        wanted = np.array([self.states.code(s) for s in rule.states])
        in_state = np.isin(rows.value.astype(np.int64), wanted)
        slot, ts, first = rows.slot, rows.ts, rows.first
        was_in, was_start, was_active = carry["cond"][slot], carry["start"][slot], carry["active"][slot]
        # An episode: consecutive records in the wanted states; it lasts until the next other record.
        start = run_starts(
            in_state, ts, first, was_in, was_start, carry["last_ts"][slot], np.iinfo(np.int64).max // 4
        )
        longer = int(rule.longer_than_s * _US)
        last = group_lasts(slot)
        # A state lasts until the machine's next record; the newest lasts until now (data time).
        until = np.where(last, max(self.now_us, int(batch.ts.max())), np.roll(ts, -1))
        due = start + longer
        was = previous(np.zeros(len(rows), dtype=bool), first, was_active)
        fires = in_state & (due < until) & ((due >= ts) | (first & ~was))
        active = latch(fires, ~in_state, first, was_active)
        # The alarm of an episode ends no earlier than it began (a record may arrive late).
        episode_due = previous(start, first, was_start) + longer
        names = carry.names
        out = []
        # An episode carried from the last batch that outlasted the limit and ends with this batch's
        # first record: it fires (at its due time) and clears at once.
        for i in np.flatnonzero(first & ~in_state & was_in & ~was_active & (was_start + longer < ts)):
            out.append(self._state_detection(bound, names[slot[i]], int(was_start[i] + longer), True))
            out.append(self._state_detection(bound, names[slot[i]], int(ts[i]), False))
        for i in changes(active, first, was_active):
            at = int(due[i]) if active[i] else max(int(ts[i]), int(episode_due[i]))
            out.append(self._state_detection(bound, names[slot[i]], at, bool(active[i])))
        s = slot[last]
        carry["cond"][s], carry["start"][s] = in_state[last], start[last]
        carry["last_ts"][s], carry["active"][s] = ts[last], active[last]
        return out

    def _state_tail(self, bound: BoundRule) -> list[Detection]:
        rule: StateDurationRule = bound.rule
        carry = self._carry[bound.id]
        slots = carry.slots_of(bound.assets)  # the machines the rule watches now
        start = carry["start"][slots]
        due_at = start + int(rule.longer_than_s * _US)
        due = carry["cond"][slots] & ~carry["active"][slots] & (start != _NONE) & (due_at < self.now_us)
        out = [
            self._state_detection(bound, carry.names[s], int(at), True)
            for s, at in zip(slots[due], due_at[due], strict=True)
        ]
        carry["active"][slots[due]] = True
        return out

    def _state_detection(self, bound: BoundRule, asset: str, at_us: int, active: bool) -> Detection:
        rule: StateDurationRule = bound.rule
        states = "/".join(rule.states)
        message = (
            f"{rule.title}: {asset} {states} for more than {rule.longer_than_s / 60:g} min"
            if active
            else f"{rule.title}: {asset} left {states}"
        )
        return Detection(
            rule.id, asset, _datetime(at_us), active, None, message, {"longer_than_s": rule.longer_than_s}
        )

    # counts ------------------------------------------------------------------------------------------------

    def _scrap_rate(self, bound: BoundRule, batch: _Batch) -> list[Detection]:
        rule: ScrapRateRule = bound.rule
        produced = batch.table["produced"].to_numpy(zero_copy_only=False).astype(np.float64)
        scrap = pc.fill_null(batch.table["scrap"], 0).to_numpy(zero_copy_only=False).astype(np.float64)
        rows = self._rows(bound, batch, batch.all_rows(), np.arange(batch.table.num_rows, dtype=np.float64))
        if not len(rows):
            return []
        index = rows.value.astype(np.int64)
        made, bad = produced[index], scrap[index]
        carry = self._carry[bound.id]
        window = int(rule.window_s * _US)
        ratio = np.full(len(rows), np.nan)
        in_window = np.zeros(len(rows))
        normal = np.full(len(rows), np.nan)  # the machine's own scrap rate, once learned
        for lo, hi in spans(rows.first):
            slot = int(rows.slot[lo])
            if rule.significance_z is not None:
                normal[lo:hi] = self._learn_scrap_rate(rule, carry, slot, made[lo:hi], bad[lo:hi])
            tail_ts, tail_made, tail_bad = carry.extra.get(
                slot, (np.empty(0, np.int64), np.empty(0), np.empty(0))
            )
            ts = np.concatenate([tail_ts, rows.ts[lo:hi]])
            cum_made = np.concatenate([[0.0], np.cumsum(np.concatenate([tail_made, made[lo:hi]]))])
            cum_bad = np.concatenate([[0.0], np.cumsum(np.concatenate([tail_bad, bad[lo:hi]]))])
            end = np.arange(len(tail_ts), len(ts)) + 1
            begin = np.searchsorted(ts, ts[end - 1] - window, side="right")
            sum_made = cum_made[end] - cum_made[begin]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio[lo:hi] = (cum_bad[end] - cum_bad[begin]) / sum_made
            in_window[lo:hi] = sum_made
            keep = ts > ts[-1] - window
            all_made = np.concatenate([tail_made, made[lo:hi]])
            all_bad = np.concatenate([tail_bad, bad[lo:hi]])
            carry.extra[slot] = (ts[keep], all_made[keep], all_bad[keep])
        enough = in_window >= rule.min_produced
        on = enough & (ratio > rule.above)
        explain = {"scrap_ratio": ratio, "produced_in_window": in_window}
        if rule.significance_z is not None:
            # More scrap than the machine's own rate explains, by binomial standard errors.
            p0 = np.clip(normal, 0.5 / rule.baseline_units, 0.5)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = (ratio - p0) * np.sqrt(in_window / (p0 * (1 - p0)))
            on &= ~np.isnan(normal) & (z > rule.significance_z)
            explain |= {"normal_ratio": normal, "z": z}
        off = enough & (ratio <= rule.above - rule.hysteresis)
        cond = latch(on, off, rows.first, carry["cond"][rows.slot])
        rows = Rows(rows.slot, rows.ts, ratio)
        return self._conclude(bound, rows, cond, rule.on_delay_s, explain)

    def _learn_scrap_rate(
        self, rule: ScrapRateRule, carry: Carry, slot: int, made: np.ndarray, bad: np.ndarray
    ) -> np.ndarray:
        """Per row, the machine's normal scrap rate once its first `baseline_units` are counted (NaN
        before); the count goes on across batches in the carried sums."""
        if not np.isnan(carry["center"][slot]):
            return np.full(len(made), carry["center"][slot])
        before = np.nan_to_num(carry["a"][slot])
        cumulative = before + np.cumsum(made)
        learning = cumulative - made < rule.baseline_units  # rows begun before the baseline was full
        carry["a"][slot] = before + made[learning].sum()
        carry["b"][slot] = np.nan_to_num(carry["b"][slot]) + bad[learning].sum()
        out = np.full(len(made), np.nan)
        if carry["a"][slot] >= rule.baseline_units:
            carry["center"][slot] = carry["b"][slot] / carry["a"][slot]
            out[~learning] = carry["center"][slot]
        return out

    # multivariate ----------------------------------------------------------------------------------------

    def _multivariate(self, bound: BoundRule, batch: _Batch) -> list[Detection]:
        rule: MultivariateRule = bound.rule
        p = len(rule.signals)
        parts = [batch.signal_rows(s) for s in rule.signals]
        rows_all = np.concatenate(parts)
        which = np.concatenate([np.full(len(r), j) for j, r in enumerate(parts)])
        watched = batch.asset_mask(self._targets[bound.id])[batch.asset_code[rows_all]]
        rows_all, which = rows_all[watched], which[watched]
        if not len(rows_all):
            return []
        code, ts = batch.asset_code[rows_all], batch.ts[rows_all]
        # One vector per machine and instant: rows with every signal present.
        keys = np.stack([code, ts], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        matrix = np.full((len(unique), p), np.nan)
        matrix[inverse, which] = batch.values()[rows_all]
        complete = ~np.isnan(matrix).any(axis=1)
        unique, matrix = unique[complete], matrix[complete]
        carry = self._carry[bound.id]
        present = np.unique(unique[:, 0])
        slot_of_code = np.full(len(batch.assets), -1, dtype=np.int64)
        slot_of_code[present] = carry.slots_of([batch.assets[c] for c in present])
        slot = slot_of_code[unique[:, 0]]
        fresh = unique[:, 1] > carry["last_ts"][slot]
        rows = Rows(slot[fresh], unique[fresh, 1], np.zeros(int(fresh.sum())))
        matrix = matrix[fresh]
        if rule.while_state:
            keep = self._in_states(bound, rows, rule.while_state)
            rows, matrix = rows.take(keep), matrix[keep]
        if not len(rows):
            return []
        distance = np.zeros(len(rows))
        limit = np.full(len(rows), np.inf)
        learning = np.zeros(len(rows), dtype=bool)
        top = np.zeros(len(rows), dtype=np.int64)
        top_z = np.zeros(len(rows))
        for lo, hi in spans(rows.first):
            s = int(rows.slot[lo])
            model = carry.extra.get(s)
            start = lo
            if not isinstance(model, _Normal):
                buffer = carry.learning.setdefault(s, [])
                have = sum(len(b) for b in buffer)
                take = min(rule.baseline_samples - have, hi - lo)
                buffer.append(matrix[lo : lo + take])
                learning[lo : lo + take] = True
                start = lo + take
                if have + take < rule.baseline_samples:
                    continue
                model = carry.extra[s] = _Normal.fit(np.concatenate(carry.learning.pop(s)), rule.alpha)
            d = matrix[start:hi] - model.mean
            w = d @ model.inverse
            contribution = d * w
            distance[start:hi] = contribution.sum(axis=1)
            limit[start:hi] = model.limit
            top[start:hi] = np.argmax(contribution, axis=1)
            top_z[start:hi] = np.take_along_axis(d / model.sigma, top[start:hi, None], axis=1)[:, 0]
        cond = ~learning & (distance > limit)
        rows = Rows(rows.slot, rows.ts, distance)
        names = np.array(rule.signals, dtype=object)
        return self._conclude(
            bound,
            rows,
            cond,
            rule.on_delay_s,
            {"t2": distance, "limit": limit, "top_signal": names[top], "top_signal_z": top_z},
        )


@dataclass(frozen=True, slots=True)
class _Normal:
    """A machine's learned normal: mean, inverse covariance, per-signal sigma, and the T² limit."""

    mean: np.ndarray
    inverse: np.ndarray
    sigma: np.ndarray
    limit: float

    @staticmethod
    def fit(baseline: np.ndarray, alpha: float) -> _Normal:
        n, p = baseline.shape
        mean = baseline.mean(axis=0)
        cov = np.cov(baseline, rowvar=False)
        # A signal that hardly varied in the baseline (idle, quantised) would make any later wobble of it
        # an extreme distance: its variance is held at least at (0.1 % of its level)².
        floor = (1e-3 * np.maximum(1.0, np.abs(mean))) ** 2
        cov = cov + np.diag(np.maximum(floor - np.diag(cov), 0.0))
        inverse = np.linalg.inv(cov + 1e-9 * np.eye(p) * float(np.trace(cov)) / p)
        # Hotelling's T² for a new observation against a mean and covariance estimated from n samples.
        from scipy.stats import f

        limit = p * (n + 1) * (n - 1) / (n * (n - p)) * float(f.ppf(1 - alpha, p, n - p))
        return _Normal(mean, inverse, np.sqrt(np.maximum(np.diag(cov), 1e-12)), limit)


def _robust_sigma(values: np.ndarray, median: float) -> float:
    """The standard deviation of a normal sample, estimated robustly: 1.4826 × MAD. Where more than half
    the values are equal (a quantised or idle signal) the MAD is 0; then 1.2533 × the mean absolute
    deviation, then the standard deviation, then the signal's resolution (its smallest step), so a
    normal value never counts as infinitely far off."""
    deviation = np.abs(values - median)
    for estimate in (
        _MAD_TO_SIGMA * float(np.median(deviation)),
        1.2533 * float(deviation.mean()),
        float(values.std()),
    ):
        if estimate > 0:
            return estimate
    return 1e-6 * max(1.0, abs(median))  # a constant baseline: any change at all is news


def _ewma(values: np.ndarray, start: np.ndarray, lam: float) -> np.ndarray:
    """e_t = (1 - λ) e_(t-1) + λ x_t along each row of `values` from e_0 = start (one per row), without
    a loop over rows: e_t = a^t (e_0 + λ Σ_(s<=t) a^-s x_s) with a = 1 - λ, in blocks short enough that
    a^-s stays far from overflowing (the rounding stays relative to the result)."""
    a = 1.0 - lam
    if a <= 0.0:
        return values.copy()
    length = values.shape[1]
    block = max(1, min(length, int(200 / -np.log10(a))))
    out = np.empty_like(values)
    level = start.astype(np.float64)
    for lo in range(0, length, block):
        part = values[:, lo : lo + block]
        steps = np.arange(1, part.shape[1] + 1)
        weighted = np.cumsum(part * a ** (-steps.astype(np.float64)), axis=1)
        out[:, lo : lo + part.shape[1]] = a**steps * (level[:, None] + lam * weighted)
        level = out[:, lo + part.shape[1] - 1]
    return out


def _cusum(steps: np.ndarray, start: np.ndarray, cap: float) -> np.ndarray:
    """min(cap, max(0, S + step)) along each row of `steps` from S = start (one per row). Below the cap
    without a loop: S_t = C_t - min(0, min C_<=t) with C the running sum (Lindley's recursion). A row
    that reaches the cap (a shift is under way: rare) goes on step by step from there."""
    cumulative = start[:, None] + np.cumsum(steps, axis=1)
    statistic: np.ndarray = cumulative - np.minimum(0.0, np.minimum.accumulate(cumulative, axis=1))
    for row in np.flatnonzero((statistic > cap).any(axis=1)):
        values, moves = statistic[row], steps[row]
        first = int(np.argmax(values > cap))
        level = values[first] = cap
        for t in range(first + 1, len(values)):
            level = values[t] = min(cap, max(0.0, level + moves[t]))
    return statistic


def _plain(value: Any) -> Any:
    """A numpy scalar as a JSON-ready Python value (NaN and infinity as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _message(rule: Any, asset: str, value: float, explanation: dict[str, Any]) -> str:
    title = rule.title
    if isinstance(rule, ThresholdRule):
        bound = (
            f"above {rule.above:g}"
            if rule.above is not None and value > rule.above
            else (f"below {rule.below:g}" if rule.below is not None else rule.when or "")
        )
        return f"{title}: {asset} {rule.signal} {value:.4g} {bound}".rstrip()
    if isinstance(rule, RateRule):
        return f"{title}: {asset} {rule.signal} changes {explanation.get('rate_per_min') or 0:.3g}/min"
    if isinstance(rule, FlatlineRule):
        return f"{title}: {asset} {rule.signal} stuck at {value:.4g} for {rule.min_duration_s / 60:g} min"
    if isinstance(rule, AnomalyRule):
        return (
            f"{title}: {asset} {rule.signal} {value:.4g} is {explanation.get('z') or 0:+.1f} σ from "
            f"its normal {explanation.get('baseline') or 0:.4g} ({rule.method})"
        )
    if isinstance(rule, ScrapRateRule):
        return f"{title}: {asset} scrap {100 * (value or 0):.1f} % over {rule.window_s / 60:g} min"
    if isinstance(rule, MultivariateRule):
        return (
            f"{title}: {asset} signals together far from normal (T² {value:.1f}); most of all "
            f"{explanation.get('top_signal')} at {explanation.get('top_signal_z') or 0:+.1f} σ"
        )
    return f"{title}: {asset}"
