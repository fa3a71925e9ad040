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
        for topic, payload, at in zip(topics, payloads, arrived, strict=True):
            parsed = self.topic(topic)
            if isinstance(parsed, TopicInvalid):
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
            if self._add(parsed, doc, at, columns.rows, columns.rejects, topic):
                self._seen.add((parsed.path, parsed.signal))
        return {
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


def _not_json(topic: str, payload: bytes, exc: orjson.JSONDecodeError) -> Reject:
    try:
        payload.decode()
    except UnicodeDecodeError:
        return Reject("invalid_utf8", "payload is not UTF-8 text", describe_payload(topic, payload))
    return Reject("invalid_json", f"payload is not valid JSON: {exc}", describe_payload(topic, payload))
