"""Unified Namespace messages → record tables. The topic names the asset and what the payload is:

    <enterprise>/<site>[/<area>[/<line>[/<machine>]]]/samples/<signal>   a measured value
    <enterprise>/<site>[/<area>[/<line>[/<machine>]]]/state              a machine state
    <enterprise>/<site>[/<area>[/<line>[/<machine>]]]/count              produced units

The enterprise level is the tenant id; the last path level is the asset's id. Payloads are JSON: one
record object, a list of them, or (samples, states) a bare value stamped with its arrival time. See
docs/connect/mqtt.md. Each bad message or record becomes a Reject with its reason; the rest of the
batch is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from leitstand.connect.base import Reject, describe_payload
from leitstand.domain.assets import ID_PATTERN
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.conform import conform
from leitstand.ingest.decode_json import RecordInvalid, json_row

KIND_LEVELS = {"samples": RecordKind.SAMPLES, "state": RecordKind.STATES, "count": RecordKind.COUNTS}
MAX_DEPTH = 5  # enterprise, site, area, line, machine
_TOPIC_FIELDS = ("tenant", "asset_id", "signal")
_CACHE_TOPICS = 200_000


class TopicInvalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class UnsTopic:
    """What a topic says: the record kind, the asset's path of ids from the enterprise, the signal."""

    kind: RecordKind
    path: tuple[str, ...]
    signal: str | None = None

    @property
    def asset_id(self) -> str:
        return self.path[-1]


def parse_topic(topic: str, tenant: str) -> UnsTopic:
    """The UNS meaning of `topic` for `tenant`'s connection, or TopicInvalid with the reason."""
    levels = topic.split("/")
    if len(levels) >= 3 and levels[-2] == "samples":
        kind, path, signal = RecordKind.SAMPLES, levels[:-2], levels[-1]
    elif len(levels) >= 2 and levels[-1] in ("state", "count"):
        kind, path, signal = KIND_LEVELS[levels[-1]], levels[:-1], None
    else:
        raise TopicInvalid(
            "unknown_topic",
            f"topic {topic!r} is not in the UNS tree: it must end in /samples/<signal>, /state or /count",
        )
    if path[0] != tenant:
        raise TopicInvalid(
            "tenant_mismatch", f"topic {topic!r} is outside this connection's enterprise {tenant!r}"
        )
    if not 2 <= len(path) <= MAX_DEPTH:
        raise TopicInvalid(
            "invalid_topic",
            f"topic {topic!r}: the asset path must have 2 to {MAX_DEPTH} levels "
            "(enterprise/site/area/line/machine)",
        )
    for level in (*path, signal) if signal is not None else path:
        if not ID_PATTERN.fullmatch(level):
            raise TopicInvalid(
                "invalid_topic",
                f"topic {topic!r}: level {level!r} is not an id (letters, digits, '_', '.', '-')",
            )
    return UnsTopic(kind, tuple(path), signal)


@dataclass(slots=True)
class KindBatch:
    """One kind's records from a batch of messages, and what could not become a record."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


@dataclass(slots=True)
class _Columns:
    rows: dict[str, list[Any]]
    rejects: list[Reject] = field(default_factory=list)


class UnsDecoder:
    """Decodes batches of (topic, payload, arrival time) for one tenant's connection."""

    def __init__(self, tenant: str, max_payload_bytes: int) -> None:
        self.tenant = tenant
        self.max_payload_bytes = max_payload_bytes
        self._topics: dict[str, UnsTopic | TopicInvalid] = {}
        self.foreign = 0  # messages of another enterprise's tree (a subscription reaching beyond it)
        # (asset path, signal) of every topic that yielded a record since the last `take_seen`
        self._seen: set[tuple[tuple[str, ...], str | None]] = set()

    def topic(self, topic: str) -> UnsTopic | TopicInvalid:
        parsed = self._topics.get(topic)
        if parsed is None:
            try:
                parsed = parse_topic(topic, self.tenant)
            except TopicInvalid as exc:
                parsed = exc
            if len(self._topics) >= _CACHE_TOPICS:
                self._topics.clear()
            self._topics[topic] = parsed
        return parsed

    def decode(
        self, topics: Sequence[str], payloads: Sequence[bytes], arrived: Sequence[float]
    ) -> dict[RecordKind, KindBatch]:
        out = {kind: _Columns({n: [] for n in SPECS[kind].schema.names}) for kind in RecordKind}
        samples = out[RecordKind.SAMPLES]
        fast = _FastSamples()
        seen: set[str] = set()  # topics that yielded records
        for index, (topic, payload, at) in enumerate(zip(topics, payloads, arrived, strict=True)):
            parsed = self.topic(topic)
            if isinstance(parsed, TopicInvalid):
                if parsed.code == "tenant_mismatch":  # another tenant's data: counted, never stored here
                    self.foreign += 1
                    continue
                samples.rejects.append(Reject(parsed.code, str(parsed), describe_payload(topic, payload)))
                continue
            columns = out[parsed.kind]
            if len(payload) > self.max_payload_bytes:
                columns.rejects.append(
                    Reject(
                        "payload_too_large",
                        f"payload of {len(payload)} bytes exceeds max_payload_bytes "
                        f"({self.max_payload_bytes})",
                        describe_payload(topic, payload),
                    )
                )
                continue
            try:
                doc = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                columns.rejects.append(_not_json(topic, payload, exc))
                continue
            # The common sample, {"timestamp_ms": <number>, "value": <number>}, goes into plain columns
            # and is checked per batch; everything else record by record.
            if parsed.kind is RecordKind.SAMPLES and type(doc) is dict and len(doc) == 2:
                ts, value = doc.get("timestamp_ms"), doc.get("value")
                if type(ts) in _NUMBERS and type(value) in _NUMBERS:
                    fast.add(parsed, ts, value, index)  # type: ignore[arg-type]
                    seen.add(topic)
                    continue
            if self._add(parsed, doc, at, columns.rows, columns.rejects, topic):
                seen.add(topic)
        for topic in seen:
            named = self._topics.get(topic)
            if isinstance(named, UnsTopic):
                self._seen.add((named.path, named.signal))
        batches = {
            kind: KindBatch(
                conform(  # fills in the defaults of optional fields (quality, scrap, rework)
                    pa.Table.from_arrays(
                        [pa.array(c.rows[f.name], f.type) for f in SPECS[kind].schema],
                        schema=SPECS[kind].schema,
                    ),
                    SPECS[kind],
                ),
                c.rejects,
            )
            for kind, c in out.items()
        }
        if fast.values:
            table, rejects = fast.table(topics, payloads)
            general = batches[RecordKind.SAMPLES]
            batches[RecordKind.SAMPLES] = KindBatch(
                pa.concat_tables([table, general.table]), [*rejects, *general.rejects]
            )
        return batches

    def take_seen(self) -> set[tuple[tuple[str, ...], str | None]]:
        """Asset paths and signals that records named since the last call (for creating unknown ones)."""
        seen, self._seen = self._seen, set()
        return seen

    def _add(
        self,
        topic: UnsTopic,
        doc: object,
        arrived: float,
        rows: dict[str, list[Any]],
        rejects: list[Reject],
        source: str,
    ) -> bool:
        """Append the records in `doc`; True if at least one was good."""
        spec = SPECS[topic.kind]
        records = doc if isinstance(doc, list) else [doc]
        good = False
        for record in records:
            try:
                row = json_row(self._record(topic, record, arrived), spec)
            except RecordInvalid as exc:
                rejects.append(Reject(exc.code, str(exc), {"source": source, "record": record}))
                continue
            for name, column in rows.items():
                column.append(row.get(name))
            good = True
        return good

    def _record(self, topic: UnsTopic, record: object, arrived: float) -> dict[str, Any]:
        if not isinstance(record, dict):
            record = self._bare(topic, record, arrived)
        elif any(f in record for f in _TOPIC_FIELDS):
            raise RecordInvalid(
                "the asset and signal come from the topic; leave tenant, asset_id and signal out of "
                "the payload",
                "field_in_topic",
            )
        else:
            record = dict(record)
            value = record.get("value")
            if topic.kind is RecordKind.SAMPLES and isinstance(value, bool):
                record["value"] = float(value)
        record["asset_id"] = topic.asset_id
        if topic.signal is not None:
            record["signal"] = topic.signal
        return record

    @staticmethod
    def _bare(topic: UnsTopic, value: object, arrived: float) -> dict[str, Any]:
        """A bare value: a number or boolean for samples, a string for states, at its arrival time."""
        ts = datetime.fromtimestamp(arrived, UTC).isoformat()
        if topic.kind is RecordKind.SAMPLES and isinstance(value, int | float):
            return {"ts": ts, "value": float(value) if isinstance(value, bool) else value}
        if topic.kind is RecordKind.STATES and isinstance(value, str):
            return {"ts": ts, "state": value}
        expected = {
            RecordKind.SAMPLES: "a number, a boolean or a sample object",
            RecordKind.STATES: "a state name or a state object",
            RecordKind.COUNTS: "a count object",
        }[topic.kind]
        raise RecordInvalid(f"payload must be {expected}, not {type(value).__name__}", "wrong_type")


_NUMBERS = (int, float)  # not bool: type(True) is bool
# epoch milliseconds of 0001-01-01 and 9999-12-31, the timestamps that can be stored
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999


class _FastSamples:
    """Samples of the common form, as columns; values and timestamps are checked for the whole batch."""

    def __init__(self) -> None:
        self.assets: list[str] = []
        self.signals: list[str | None] = []
        self.ts_ms: list[float] = []
        self.values: list[float] = []
        self.index: list[int] = []  # the message each came from

    def add(self, topic: UnsTopic, ts_ms: float, value: float, index: int) -> None:
        self.assets.append(topic.asset_id)
        self.signals.append(topic.signal)
        self.ts_ms.append(ts_ms)
        self.values.append(value)
        self.index.append(index)

    def table(self, topics: Sequence[str], payloads: Sequence[bytes]) -> tuple[pa.Table, list[Reject]]:
        spec = SPECS[RecordKind.SAMPLES]
        try:
            ts_ms = np.array(self.ts_ms, np.float64)
            values = np.array(self.values, np.float64)
        except OverflowError:  # an integer beyond a double: a whole-number value no sample can hold
            ts_ms = np.array([float(t) if abs(t) < 2**63 else np.inf for t in self.ts_ms])
            values = np.array([float(v) if abs(v) < 2**1023 else np.inf for v in self.values])
        bad_value = ~np.isfinite(values)
        bad_ts = ~np.isfinite(ts_ms) | (ts_ms < _MIN_MS) | (ts_ms > _MAX_MS)
        rejects = [
            Reject(
                "non_finite_value" if bad_value[i] else "invalid_timestamp",
                "field 'value' is not a finite number"
                if bad_value[i]
                else "field 'ts' is outside the timestamps that can be stored (years 1 to 9999 UTC)",
                describe_payload(topics[self.index[i]], payloads[self.index[i]]),
            )
            for i in np.flatnonzero(bad_value | bad_ts).tolist()
        ]
        good = ~(bad_value | bad_ts)
        keep = None if good.all() else pa.array(good)
        ts_us = np.round(np.where(good, ts_ms, 0) * 1000).astype(np.int64)
        table = pa.table(
            {
                "tenant": pa.nulls(len(values), pa.string()),
                "asset_id": pa.array(self.assets, pa.string()),
                "signal": pa.array(self.signals, pa.string()),
                "ts": pa.array(ts_us, pa.int64()).cast(spec.schema.field("ts").type),
                "value": pa.array(values, pa.float64()),
                "quality": pa.repeat(pa.scalar("GOOD"), len(values)),
            },
            schema=spec.schema,
        )
        return (table if keep is None else table.filter(keep)), rejects


def _not_json(topic: str, payload: bytes, exc: orjson.JSONDecodeError) -> Reject:
    try:
        payload.decode()
    except UnicodeDecodeError:
        return Reject("invalid_utf8", "payload is not UTF-8 text", describe_payload(topic, payload))
    return Reject("invalid_json", f"payload is not valid JSON: {exc}", describe_payload(topic, payload))
