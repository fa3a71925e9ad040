"""The Sparkplug B 3.0 host application's view of its edge nodes: births, deaths, aliases, seq.

Runs on one thread (the batching subscriber's), so it keeps its state without locks. For each edge node
(group, node id) it holds the session's bdSeq, the last seq, the metrics its births declared (by alias and
by name), its devices, and messages that arrived ahead of a seq gap.

- NBIRTH starts a session: metrics, aliases and bdSeq are taken from it; earlier state is dropped.
- NDEATH ends the session only if its bdSeq is the session's; a late NDEATH of an older session (the
  broker sends the Will of a connection the node already replaced) changes nothing.
- On death, every metric of the node (or device) is marked stale: one sample with its last value and
  quality BAD at the time of death, so readers see where the data stopped being current.
- seq runs 0..255 and wraps. A message ahead of the expected seq waits up to `reorder_timeout_ms` for the
  missing ones; then what waits is applied in order and a Rebirth is requested (NCMD). A seq already
  seen (a QoS 1 redelivery) is a duplicate and skipped.
- Data of a node or device without a birth, and metrics with an unknown alias, are dead-lettered, and a
  Rebirth is requested, at most once per `rebirth_interval_ms` per node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError

from leitstand.connect.base import CounterIncrements, Health, Reject, SeenAsset, describe_payload
from leitstand.connect.mqtt.decode import KindBatch
from leitstand.connect.sparkplug import columns
from leitstand.connect.sparkplug import decode as spb
from leitstand.connect.sparkplug.columns import BAD_TS, MAX_MS
from leitstand.connect.sparkplug.config import SparkplugConfig
from leitstand.domain.assets import ID_PATTERN
from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.conform import conform

log = logging.getLogger(__name__)

SAMPLE, STATE, COUNTER, SKIP = "sample", "state", "counter", "skip"


@dataclass(slots=True)
class MetricDef:
    """A metric as its birth declared it, and where its values go."""

    asset_id: str
    signal: str
    datatype: int
    role: str
    field: str | None  # the scalar value field, None for arrays and other types
    bits: int  # signed integer width, 0 if unsigned or not an integer
    path: tuple[str, ...]  # the asset's path, for creating it (and its signals) when allowed
    last: float | None = None  # the last value stored, for marking it stale at death
    ref: int = -1  # its slot in the host's registry, for numeric scalar samples (the columnar path)


@dataclass(slots=True)
class EdgeNode:
    group: str
    node: str
    site: str
    bd_seq: int | None = None
    online: bool = False
    seq: int = 0
    aliases: dict[int, MetricDef] = field(default_factory=dict)
    names: dict[tuple[str | None, str], MetricDef] = field(default_factory=dict)
    devices: dict[str, bool] = field(default_factory=dict)
    pending: dict[int, tuple[spb.SparkplugTopic, Any, float, str, bytes]] = field(default_factory=dict)
    gap_since: float | None = None
    rebirth_at: float = float("-inf")
    births: int = 0
    last_message_at: float | None = None

    def view(self) -> dict[str, object]:
        return {
            "group": self.group,
            "node": self.node,
            "online": self.online,
            "bd_seq": self.bd_seq,
            "seq": self.seq,
            "births": self.births,
            "metrics": len(self.names),
            "devices": dict(sorted(self.devices.items())),
            "last_message_at": self.last_message_at,
        }


class _Out:
    """Columns of the records a batch yields, per kind, and its rejects. Numeric scalar samples, nearly
    all of the traffic, are kept as (registry slot, ts, value); the slots become asset and signal
    columns once per batch."""

    def __init__(self, registry: list[MetricDef]) -> None:
        self.registry = registry
        self.ref: list[int] = []
        self.ref_ts: list[int] = []
        self.ref_value: list[float | int] = []
        # (slots, ts, values) arrays from payloads decoded as columns (columns.py)
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # values before these (list index, chunk count) are noted in their definitions' `last`
        self._settled = (0, 0)
        self.asset: list[str] = []
        self.signal: list[str] = []
        self.ts: list[int] = []  # epoch milliseconds
        self.value: list[float] = []
        self.quality: list[str] = []
        self.states: dict[str, list[Any]] = {"asset_id": [], "ts": [], "state": []}
        self.counts: dict[str, list[Any]] = {"asset_id": [], "ts": [], "produced": []}
        self.rejects: list[Reject] = []

    def sample(self, asset: str, signal: str, ts: int, value: float, quality: str = "GOOD") -> None:
        self.asset.append(asset)
        self.signal.append(signal)
        self.ts.append(ts)
        self.value.append(value)
        self.quality.append(quality)

    def _fast(self, since: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slots, timestamps and values of the numeric scalar samples, from `since` on."""
        listed, chunked = since
        parts = [
            (
                np.array(self.ref[listed:], np.int64),
                np.array(self.ref_ts[listed:], np.int64),
                np.array(self.ref_value[listed:], np.float64),
            ),
            *self.chunks[chunked:],
        ]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def settle_last(self) -> None:
        """Note each metric's last value in this batch on its definition (for stale marks)."""
        since, self._settled = self._settled, (len(self.ref), len(self.chunks))
        refs, _, values = self._fast(since)
        if not len(refs):
            return
        slots, first_from_end = np.unique(refs[::-1], return_index=True)
        for slot, i in zip(slots.tolist(), (len(refs) - 1 - first_from_end).tolist(), strict=True):
            self.registry[slot].last = float(values[i])

    def batches(self) -> dict[RecordKind, KindBatch]:
        self.settle_last()
        refs, fast_ts, fast_values = self._fast()
        slots, positions = _dense(refs)
        used = [self.registry[s] for s in slots.tolist()]
        indices = pa.array(positions.astype(np.int32))
        columnar = pa.table(
            {
                "asset_id": pa.DictionaryArray.from_arrays(
                    indices, pa.array([d.asset_id for d in used], pa.string())
                ),
                "signal": pa.DictionaryArray.from_arrays(
                    indices, pa.array([d.signal for d in used], pa.string())
                ),
                "ts": pa.array(fast_ts),
                "value": pa.array(fast_values),
                "quality": pa.repeat(pa.scalar("GOOD"), len(refs)),
            }
        )
        others = pa.table(
            {
                "asset_id": pa.array(self.asset, pa.string()),
                "signal": pa.array(self.signal, pa.string()),
                "ts": pa.array(self.ts, pa.int64()),
                "value": pa.array(self.value, pa.float64()),
                "quality": pa.array(self.quality, pa.string()),
            }
        )
        samples = pa.concat_tables(
            [self._stored(columnar, RecordKind.SAMPLES), self._stored(others, RecordKind.SAMPLES)]
        )
        states = pa.table(
            {
                "asset_id": pa.array(self.states["asset_id"], pa.string()),
                "ts": pa.array(self.states["ts"], pa.int64()),
                "state": pa.array(self.states["state"], pa.string()),
            }
        )
        counts = pa.table(
            {
                "asset_id": pa.array(self.counts["asset_id"], pa.string()),
                "ts": pa.array(self.counts["ts"], pa.int64()),
                "produced": pa.array(self.counts["produced"], pa.int64()),
            }
        )
        return {
            RecordKind.SAMPLES: KindBatch(samples, self.rejects),
            RecordKind.STATES: KindBatch(self._stored(states, RecordKind.STATES)),
            RecordKind.COUNTS: KindBatch(self._stored(counts, RecordKind.COUNTS)),
        }

    def _stored(self, table: pa.Table, kind: RecordKind) -> pa.Table:
        """`table` (ts in epoch milliseconds) in the kind's schema, without timestamps that cannot be
        stored (after the year 9999), which are dead-lettered."""
        ok = pc.less_equal(table["ts"], MAX_MS)
        dropped = table.num_rows - (pc.sum(ok).as_py() or 0)
        if dropped:
            table = table.filter(ok)
            self.rejects.append(
                Reject(
                    "invalid_timestamp",
                    f"{dropped} {kind.value} with timestamps after 9999-12-31 were not stored",
                    {"records": dropped},
                )
            )
        ts = table.schema.get_field_index("ts")
        table = table.set_column(ts, "ts", table["ts"].cast(pa.timestamp("ms", tz="UTC")))
        return conform(table, SPECS[kind])


# A data message applied in order but not yet read: node, device, parsed payload, bytes, arrival, topic
_Deferred = tuple[EdgeNode, str | None, Any, bytes, float, str]
_COLUMNAR_MIN = 8  # fewer messages of one shape in a batch are read metric by metric
_MAX_LAYOUTS = 10_000  # also the most topics remembered
_MAX_HELD = 64  # messages held behind a seq gap before giving up on it
_UNSEEN = object()
_FIELD_NUMBER = {
    "int_value": 10,
    "long_value": 11,
    "float_value": 12,
    "double_value": 13,
    "boolean_value": 14,
}


def _dense(refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(refs, return_inverse=True) for small non-negative integers, without sorting."""
    if not len(refs):
        return refs, refs
    present = np.zeros(int(refs.max()) + 1, bool)
    present[refs] = True
    slots = np.flatnonzero(present)
    index = np.zeros(len(present), np.int64)
    index[slots] = np.arange(len(slots))
    return slots, index[refs]


def _signed(raw: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Unsigned wire integers as the signed values they carry, column-wise (see decode.signed)."""
    as_int = raw.view(np.int64)  # uint64 two's complement: right for Int64
    narrow = (bits > 0) & (bits < 64)
    wide32 = narrow & (raw >= np.uint64(1 << 31))  # sign-extended to 32 bits
    width = np.where(narrow, bits, 1).astype(np.uint64)
    n_bit = (
        narrow & ~wide32 & (raw >= (np.uint64(1) << (width - np.uint64(1)))) & (raw < (np.uint64(1) << width))
    )
    out = as_int.astype(np.float64)
    out = np.where(wide32, as_int - (1 << 32), out)
    out = np.where(n_bit, as_int - (np.int64(1) << width.astype(np.int64)), out)
    return out.astype(np.float64)


class SparkplugHost:
    """Turns Sparkplug messages into records; `publish(topic, payload)` sends Rebirth requests."""

    def __init__(
        self,
        config: SparkplugConfig,
        health: Health,
        publish: Callable[[str, bytes], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self.health = health
        self._publish = publish
        self.nodes: dict[tuple[str, str], EdgeNode] = {}
        # numeric scalar metrics by slot; a metric born again keeps its slot
        self._registry: list[MetricDef] = []
        self._slots: dict[tuple[str, str, str | None, str], int] = {}
        self._counters = CounterIncrements()
        self._states = frozenset(config.state_metrics)
        self._counter_names = frozenset(config.counter_metrics)
        self._seen: set[SeenAsset] = set()
        self._reorder_s = config.reorder_timeout_ms / 1000
        self._rebirth_s = config.rebirth_interval_ms / 1000
        self._deferred: list[_Deferred] = []  # data messages applied in seq order, not yet read
        self._columnar_min = _COLUMNAR_MIN
        self.columnar_messages = 0  # data messages read as columns (the rest metric by metric)
        self._layouts: dict[tuple[str, str, str | None, int], columns.Layout | None] = {}
        self._topics: dict[str, tuple[spb.SparkplugTopic, str] | tuple[str, str] | None] = {}

    def decode(
        self, topics: list[str], payloads: list[bytes], arrived: list[float]
    ) -> dict[RecordKind, KindBatch]:
        out = _Out(self._registry)
        for topic, payload, at in zip(topics, payloads, arrived, strict=True):
            self._message(topic, payload, at, out)
        self._tick(self._clock(), out)
        self._flush(out)
        return out.batches()

    def take_seen(self) -> set[SeenAsset]:
        seen, self._seen = self._seen, set()
        return seen

    # messages --------------------------------------------------------------------------------------

    def _topic(self, topic: str) -> tuple[spb.SparkplugTopic, str] | tuple[str, str] | None:
        """A topic's meaning and site, or (reason, message) when it cannot be taken, or None when it is
        not for the host (STATE, commands); cached, as a node sends on few topics."""
        known = self._topics.get(topic, _UNSEEN)
        if known is not _UNSEEN:
            return known  # type: ignore[return-value]
        t = spb.parse_topic(topic)
        result: tuple[spb.SparkplugTopic, str] | tuple[str, str] | None
        site = self._site(t.group) if t is not None else None
        if t is None or t.message_type in ("NCMD", "DCMD"):
            result = None
        elif site is None:
            result = (
                "tenant_mismatch",
                f"group {t.group!r} does not belong to tenant {self.config.tenant!r} "
                f"(expected '{self.config.tenant}:<site>')",
            )
        else:
            bad = [n for n in (t.node, t.device) if n is not None and not ID_PATTERN.fullmatch(n)]
            result = ("invalid_id", f"{bad[0]!r} cannot be an asset id") if bad else (t, site)
        if len(self._topics) >= _MAX_LAYOUTS:
            self._topics.clear()
        self._topics[topic] = result
        return result

    def _message(self, topic: str, payload: bytes, at: float, out: _Out) -> None:
        meaning = self._topic(topic)
        if meaning is None:
            return
        if isinstance(meaning[0], str):
            if meaning[0] == "tenant_mismatch":  # another tenant's group: counted, never stored here
                self.health.failed("foreign_group", str(meaning[1]))
            else:
                out.rejects.append(Reject(meaning[0], str(meaning[1]), describe_payload(topic, payload)))
            return
        t, site = meaning
        if len(payload) > self.config.max_payload_bytes:
            out.rejects.append(
                Reject(
                    "payload_too_large",
                    f"payload of {len(payload)} bytes exceeds max_payload_bytes "
                    f"({self.config.max_payload_bytes})",
                    describe_payload(topic, payload),
                )
            )
            return
        try:
            message = spb.Payload.FromString(payload)
        except DecodeError as exc:
            out.rejects.append(
                Reject(
                    "invalid_protobuf",
                    f"payload is not a Sparkplug B protobuf: {exc}",
                    describe_payload(topic, payload),
                )
            )
            return
        key = (t.group, t.node)
        node = self.nodes.get(key)
        kind = t.message_type
        if kind == "NBIRTH":
            self._nbirth(t, site, message, at, out)
            return
        if kind == "NDEATH":
            self._ndeath(node, t, message, at, out)
            return
        if kind not in ("NDATA", "DBIRTH", "DDATA", "DDEATH"):
            out.rejects.append(
                Reject(
                    "unknown_message_type",
                    f"message type {kind!r} is not Sparkplug B",
                    describe_payload(topic, payload),
                )
            )
            return
        if node is None or not node.online:
            out.rejects.append(
                Reject(
                    "no_birth",
                    f"{kind} from edge node {t.node!r} before its NBIRTH",
                    describe_payload(topic, payload),
                )
            )
            if node is None:  # remembered, so that rebirth requests to it are rate-limited too
                node = self.nodes[(t.group, t.node)] = EdgeNode(t.group, t.node, site)
            self._rebirth(node, at, "data before birth")
            return
        node.last_message_at = at
        if not message.HasField("seq"):
            out.rejects.append(Reject("missing_seq", f"{kind} without seq", describe_payload(topic, payload)))
            return
        seq = int(message.seq) % 256
        expected = (node.seq + 1) % 256
        if seq == expected:
            self._apply(node, t, message, at, out, topic, payload)
            node.seq = seq
            self._drain(node, out)
        elif 0 <= (node.seq - seq) % 256 < 128:  # at or behind the last one: already seen
            self.health.failed("duplicate", f"seq {seq} from {t.group}/{t.node} was already seen")
        else:
            node.pending[seq] = (t, message, at, topic, payload)
            if node.gap_since is None:
                node.gap_since = at
            if len(node.pending) >= _MAX_HELD:  # more would wrap into what counts as already seen
                self._give_up(node, at, out)

    def _drain(self, node: EdgeNode, out: _Out) -> None:
        """Apply waiting messages that are now in order."""
        while node.pending:
            nxt = (node.seq + 1) % 256
            item = node.pending.pop(nxt, None)
            if item is None:
                return
            t, message, at, topic, payload = item
            self._apply(node, t, message, at, out, topic, payload)
            node.seq = nxt
        node.gap_since = None

    def _tick(self, now: float, out: _Out) -> None:
        """Give up on seq gaps older than the reorder timeout."""
        for node in list(self.nodes.values()):
            if node.gap_since is not None and now - node.gap_since >= self._reorder_s:
                self._give_up(node, now, out)

    def _give_up(self, node: EdgeNode, now: float, out: _Out, rebirth: bool = True) -> None:
        """Apply what waits behind a seq gap, in order, and (unless the session ends anyway) request a
        Rebirth to learn the current values."""
        if not node.pending:
            node.gap_since = None
            return
        missing = (min(node.pending, key=lambda s: (s - node.seq) % 256) - node.seq - 1) % 256
        self.health.failed(
            "seq_gap", f"{missing} message(s) from {node.group}/{node.node} after seq {node.seq} missing"
        )
        for seq in sorted(node.pending, key=lambda s: (s - node.seq) % 256):
            t, message, at, topic, payload = node.pending.pop(seq)
            self._apply(node, t, message, at, out, topic, payload)
            node.seq = seq
        node.gap_since = None
        if rebirth:
            self._rebirth(node, now, "seq gap")

    def _nbirth(self, t: spb.SparkplugTopic, site: str, message: Any, at: float, out: _Out) -> None:
        key = (t.group, t.node)
        old = self.nodes.get(key)
        if old is not None and old.online:  # what the old session left behind a gap is still its data
            self._give_up(old, at, out, rebirth=False)
        self._flush(out)
        node = EdgeNode(t.group, t.node, site, births=(old.births if old else 0) + 1)
        if old is not None:
            node.rebirth_at = old.rebirth_at
        node.bd_seq = _bd_seq(message)
        node.seq = int(message.seq) % 256 if message.HasField("seq") else 0
        node.online = True
        node.last_message_at = at
        self.nodes[key] = node
        self._define(node, None, message, at, out)

    def _ndeath(
        self, node: EdgeNode | None, t: spb.SparkplugTopic, message: Any, at: float, out: _Out
    ) -> None:
        if node is None or not node.online:
            self.health.failed("death_before_birth", f"NDEATH of {t.group}/{t.node}, which is not online")
            return
        bd_seq = _bd_seq(message)
        if bd_seq is not None and node.bd_seq is not None and bd_seq != node.bd_seq:
            self.health.failed(
                "stale_death", f"NDEATH of {t.group}/{t.node} with bdSeq {bd_seq}, session has {node.bd_seq}"
            )
            return
        self._give_up(node, at, out, rebirth=False)  # what waited behind a gap came before the death
        node.online = False
        node.last_message_at = at
        for device in node.devices:
            node.devices[device] = False
        self._stale(node, None, at, out)

    def _apply(
        self,
        node: EdgeNode,
        t: spb.SparkplugTopic,
        message: Any,
        at: float,
        out: _Out,
        topic: str,
        payload: bytes,
    ) -> None:
        kind = t.message_type
        device = t.device
        if kind in ("DBIRTH", "DDEATH"):
            self._flush(out)  # data before a birth or death is read with the metrics it was sent under
        if kind == "NDATA":
            self._deferred.append((node, None, message, payload, at, topic))
        elif device is None:
            out.rejects.append(
                Reject(
                    "invalid_topic",
                    f"{kind} needs a device id in its topic",
                    describe_payload(topic, payload),
                )
            )
        elif kind == "DBIRTH":
            node.devices[device] = True
            self._define(node, device, message, at, out)
        elif not node.devices.get(device):
            out.rejects.append(
                Reject(
                    "no_birth",
                    f"{kind} from device {device!r} before its DBIRTH",
                    describe_payload(topic, payload),
                )
            )
            self._rebirth(node, at, "device data before birth")
        elif kind == "DDEATH":
            node.devices[device] = False
            self._stale(node, device, at, out)
        else:
            self._deferred.append((node, device, message, payload, at, topic))

    def _flush(self, out: _Out) -> None:
        """Store the data messages waiting since the last flush: those of a shape seen often enough as
        columns (columns.py), the others metric by metric."""
        waiting, self._deferred = self._deferred, []
        shapes: dict[tuple[str, str, str | None, int], list[_Deferred]] = {}
        for item in waiting:
            shapes.setdefault((item[0].group, item[0].node, item[1], len(item[3])), []).append(item)
        slow: list[_Deferred] = []
        for key, items in shapes.items():
            layout = self._layout(key, items[0][3]) if len(items) >= self._columnar_min else None
            slow += items if layout is None else self._columnar(layout, items, out)
        # in the order they came: counters turn into increments, and the last value is the last
        order = {id(item): i for i, item in enumerate(waiting)}
        for node, device, message, _payload, at, topic in sorted(slow, key=lambda item: order[id(item)]):
            self._data(node, device, message, at, out, topic)

    def _layout(self, key: tuple[str, str, str | None, int], payload: bytes) -> columns.Layout | None:
        if key not in self._layouts:
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.clear()
            self._layouts[key] = columns.learn(payload)
        return self._layouts[key]

    def _columnar(self, layout: columns.Layout, items: list[_Deferred], out: _Out) -> list[_Deferred]:
        """Read the messages that match `layout` as columns; return those that must go metric by metric
        (another shape, an unknown alias, a metric that is not a numeric scalar sample, a value in
        another field than the birth's datatype uses)."""
        node = items[0][0]
        rows = np.frombuffer(b"".join(item[3] for item in items), np.uint8).reshape(len(items), layout.length)
        ok, got = columns.read(layout, rows)
        aliases = got["alias"]
        if len(aliases) and (aliases == aliases[0]).all():  # the usual case: the same metrics each time
            uniq, first = np.unique(aliases[0], return_inverse=True)
            inverse = np.broadcast_to(first, aliases.shape)
        else:
            uniq, inverse = np.unique(aliases, return_inverse=True)
        defs = [node.aliases.get(int(a)) for a in uniq.tolist()]
        usable = np.array([d is not None and d.ref >= 0 for d in defs], bool)
        field = np.array([_FIELD_NUMBER.get(d.field or "", -1) if d is not None else -1 for d in defs])
        inverse = inverse.reshape(got["alias"].shape)
        good = (usable[inverse] & (field[inverse] == layout.value_field)).all(axis=1)
        matched = np.flatnonzero(ok)
        slow = [items[i] for i in np.flatnonzero(~ok).tolist()]
        slow += [items[i] for i in matched[~good].tolist()]
        if not good.any():
            return slow
        inverse = inverse[good]
        refs = np.array([d.ref if d is not None else -1 for d in defs], np.int64)[inverse]
        bits = np.array([d.bits if d is not None else 0 for d in defs], np.int64)[inverse]
        is_float = np.isin(layout.value_field, (12, 13))[None, :]
        # as protobuf reads them: int_value is 32 bits wide, a boolean is any non-zero varint
        fields = layout.value_field[None, :]
        raw = np.where(fields == 10, got["raw"][good] & np.uint64(0xFFFFFFFF), got["raw"][good])
        raw = np.where(fields == 14, (raw != 0).astype(np.uint64), raw)
        values = np.where(is_float, got["float"][good], raw.astype(np.float64))
        signed = bits > 0
        if signed.any():
            values = np.where(signed, _signed(raw, bits), values)
        ts = got["ts"][good]
        arrival = np.array([int(items[i][4] * 1000) for i in matched[good].tolist()], np.int64)
        ts = np.where(ts >= 0, ts, arrival[:, None])
        out.chunks.append((refs.ravel(), ts.ravel(), values.ravel()))
        self.columnar_messages += int(good.sum())
        return slow

    def _define(self, node: EdgeNode, device: str | None, message: Any, at: float, out: _Out) -> None:
        """Take the metrics a birth declares, and store their values."""
        asset = device if device is not None else node.node
        path = (self.config.tenant, node.site, f"{node.site}-edge", node.node, *((device,) if device else ()))
        self._seen.add((path, None))
        for key in [k for k in node.names if k[0] == device]:
            stale = node.names.pop(key)
            for alias, d in list(node.aliases.items()):
                if d is stale:
                    del node.aliases[alias]
        for metric in message.metrics:
            name = metric.name
            if not name:
                continue
            datatype = int(metric.datatype)
            role = self._role(name, datatype)
            signal = spb.signal_id(name)
            d = MetricDef(
                asset,
                signal,
                datatype,
                role,
                spb.SCALAR_FIELD.get(datatype) if datatype not in spb.TEXT_TYPES else None,
                spb.signed_bits(datatype),
                path,
            )
            if role == SAMPLE and d.field is not None:
                slot_key = (node.group, node.node, device, name)
                d.ref = self._slots.setdefault(slot_key, len(self._registry))
                if d.ref == len(self._registry):
                    self._registry.append(d)
                else:
                    self._registry[d.ref] = d
            node.names[(device, name)] = d
            if metric.HasField("alias"):
                node.aliases[int(metric.alias)] = d
            if role == SAMPLE and not spb.is_array(datatype):
                self._seen.add((path, signal))
        self._data(node, device, message, at, out, None)

    def _role(self, name: str, datatype: int) -> str:
        if spb.is_control(name):
            return SKIP
        if name in self._states:
            return STATE
        if name in self._counter_names:
            return COUNTER
        if (datatype in spb.SCALAR_FIELD and datatype not in spb.TEXT_TYPES) or spb.is_array(datatype):
            return SAMPLE if datatype != spb.DataType.STRING_ARRAY else SKIP
        return SKIP

    def _data(
        self, node: EdgeNode, device: str | None, message: Any, at: float, out: _Out, topic: str | None
    ) -> None:
        """Store the metric values of a birth or data message (the hot path: one pass, no per-metric
        objects beyond what protobuf hands out)."""
        default_ts = int(message.timestamp) if message.HasField("timestamp") else int(at * 1000)
        default_ts = min(default_ts, BAD_TS)
        names, aliases = node.names, node.aliases
        ref_out, ts_out, value_out = out.ref, out.ref_ts, out.ref_value
        unknown = 0
        for metric in message.metrics:
            name = metric.name
            d = names.get((device, name)) if name else aliases.get(metric.alias)
            if d is None:
                unknown += 1
                continue
            if d.ref >= 0:  # a numeric scalar sample: three appends
                value = getattr(metric, d.field)  # type: ignore[arg-type]
                if not value and metric.is_null:
                    continue
                if d.bits and value >= 1 << (d.bits - 1):
                    value = spb.signed(value, d.bits)
                ref_out.append(d.ref)
                ts_out.append(min(metric.timestamp or default_ts, BAD_TS))
                value_out.append(value)
                continue
            role = d.role
            if role == SKIP or metric.is_null:
                continue
            ts = min(metric.timestamp or default_ts, BAD_TS)
            if role == SAMPLE:
                self._array(d, metric, ts, out, topic)
            elif role == STATE:
                which = metric.WhichOneof("value")
                if which is not None:
                    out.states["asset_id"].append(d.asset_id)
                    out.states["ts"].append(ts)
                    out.states["state"].append(str(getattr(metric, which)))
            else:  # COUNTER
                if d.field is None:
                    continue
                reading = spb.signed(getattr(metric, d.field), d.bits)
                increment = self._counters.increment(f"{d.asset_id}/{d.signal}", int(reading))
                if increment is not None:
                    out.counts["asset_id"].append(d.asset_id)
                    out.counts["ts"].append(ts)
                    out.counts["produced"].append(increment)
        if unknown:
            where = f"{node.group}/{node.node}" + (f"/{device}" if device else "")
            out.rejects.append(
                Reject(
                    "unknown_alias",
                    f"{unknown} metric(s) from {where} name an alias or metric its birth did not declare",
                    {"source": topic or where, "unknown_metrics": unknown},
                )
            )
            self._rebirth(node, at, "unknown alias")

    def _array(self, d: MetricDef, metric: Any, ts: int, out: _Out, topic: str | None) -> None:
        """An array metric: one sample per element, signal `<name>.<index>`."""
        try:
            values = spb.array(metric, d.datatype)
        except spb.ValueInvalid as exc:
            out.rejects.append(Reject(exc.code, str(exc), {"source": topic, "metric": d.signal}))
            return
        for i, v in enumerate(values.tolist()):
            out.sample(d.asset_id, f"{d.signal}.{i}", ts, v)
            self._seen.add((d.path, f"{d.signal}.{i}"))

    def _stale(self, node: EdgeNode, device: str | None, at: float, out: _Out) -> None:
        self._flush(out)
        """Mark the metrics of a node (and all its devices) or of one device stale at `at`."""
        ts = int(at * 1000)
        out.settle_last()  # values of this batch count too
        for (dev, _), d in node.names.items():
            if (device is None or dev == device) and d.last is not None and d.role == SAMPLE:
                out.sample(d.asset_id, d.signal, ts, d.last, "BAD")
                d.last = None

    def _rebirth(self, node: EdgeNode, now: float, why: str) -> None:
        if now - node.rebirth_at < self._rebirth_s:
            return
        node.rebirth_at = now
        command = spb.Payload(timestamp=int(now * 1000))
        metric = command.metrics.add()
        metric.name = "Node Control/Rebirth"
        metric.datatype = spb.DataType.BOOLEAN
        metric.boolean_value = True
        self._publish(f"{spb.NAMESPACE}/{node.group}/NCMD/{node.node}", command.SerializeToString())
        log.info("requested a rebirth of %s/%s (%s)", node.group, node.node, why)
        self.health.failed("rebirth_requested", f"{node.group}/{node.node}: {why}")

    def _site(self, group: str) -> str | None:
        prefix = f"{self.config.tenant}:"
        if group.startswith(prefix) and ID_PATTERN.fullmatch(group[len(prefix) :]):
            return group[len(prefix) :]
        return None


def _bd_seq(message: Any) -> int | None:
    for metric in message.metrics:
        if metric.name == "bdSeq":
            return int(metric.long_value or metric.int_value)
    return None
