"""OPC UA data change notifications → Arrow tables in the record schemas, and what cannot be a record.

No I/O: the connector buffers the notifications a subscription delivers and decodes them here in
batches. Each monitored item's client handle is the index of its node mapping in `targets`.

- sample nodes give samples: a number (a boolean as 0/1) with the quality from the status code (Good,
  Uncertain, Bad). A value that is no number is a `wrong_type` reject, a missing one (a Bad status
  without a value, as the standard prescribes) a `no_value` reject.
- state nodes give states: a string, or an integer as its decimal text. Values with a Bad status are
  `bad_status` rejects: a state is only known when the server vouches for it.
- counter nodes give counts: the increment of a running counter since its previous reading (the first
  reading gives nothing, a reading below the previous one is a reset). Bad readings are `bad_status`
  rejects and do not move the counter's baseline.

The timestamp is the source timestamp, else the server timestamp, else when the value was received.
A BadWaitingForInitialData notification without a value (a server that has nothing yet) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from leitstand.connect.base import MAX_KEPT_PAYLOAD_BYTES, CounterIncrements, Reject
from leitstand.domain.records import SPECS, TS_TYPE, Quality, RecordKind

_KINDS = {"sample": RecordKind.SAMPLES, "state": RecordKind.STATES, "counter": RecordKind.COUNTS}
_QUALITIES = pa.array([Quality.GOOD.value, Quality.UNCERTAIN.value, Quality.BAD.value, Quality.BAD.value])
_WAITING = StatusCodes.BadWaitingForInitialData
_SEVERITY_SHIFT = 30  # the top two bits of a status code: 0 good, 1 uncertain, 2 and 3 bad
_EPOCH_FLOOR = datetime(1601, 1, 2, tzinfo=UTC)  # an OPC UA DateTime of (almost) zero means "not set"


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """What one monitored node's values become."""

    node_id: str
    asset_id: str
    signal: str | None
    record: str  # sample | state | counter

    @property
    def kind(self) -> RecordKind:
        return _KINDS[self.record]


@dataclass(slots=True)
class DecodedBatch:
    """The records of one flush, per kind, and the values that could not become records."""

    tables: dict[RecordKind, pa.Table] = field(default_factory=dict)
    rejects: dict[RecordKind, list[Reject]] = field(default_factory=dict)
    repeated: dict[str, tuple[int, str]] = field(default_factory=dict)  # code → (count, a message)
    values: int = 0

    @property
    def records(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


class TargetColumns:
    """The asset and signal of every target as Arrow arrays, so a batch's columns are one `take`."""

    def __init__(self, targets: Sequence[NodeTarget]) -> None:
        self.targets = list(targets)
        self.assets = pa.array([t.asset_id for t in self.targets], pa.string())
        self.signals = pa.array([t.signal for t in self.targets], pa.string())
        self.records = [t.record for t in self.targets]


def decode(
    columns: TargetColumns,
    items: Sequence[ua.MonitoredItemNotification],
    received_at: datetime,
    counters: CounterIncrements,
    source: str,
    faults: dict[int, str] | None = None,
) -> DecodedBatch:
    """Turn buffered notifications (in arrival order) into record tables and rejects.

    `faults` (handle → reason code, kept by the caller between batches) makes a lasting fault one
    reject: a node that keeps sending values of the wrong type is rejected when it starts, and again
    only after a good value came in between; the repeats are counted in `repeated`."""
    faults = {} if faults is None else faults
    batch = DecodedBatch(values=len(items))
    s_rows: list[int] = []
    s_ts: list[datetime] = []
    s_values: list[float] = []
    s_quality: list[int] = []
    st_rows: list[int] = []
    st_ts: list[datetime] = []
    st_values: list[str] = []
    c_rows: list[int] = []
    c_ts: list[datetime] = []
    c_values: list[int] = []
    targets, records = columns.targets, columns.records
    n_targets = len(records)
    for item in items:
        handle = item.ClientHandle
        if not 0 <= handle < n_targets:
            continue  # not one of ours (a late notification of a deleted item)
        dv = item.Value
        variant = dv.Value
        value = variant.Value if variant is not None else None
        status = dv.StatusCode.value if dv.StatusCode is not None else 0
        ts = dv.SourceTimestamp or dv.ServerTimestamp or received_at
        if ts < _EPOCH_FLOOR:
            ts = (
                dv.ServerTimestamp
                if dv.ServerTimestamp and dv.ServerTimestamp >= _EPOCH_FLOOR
                else received_at
            )
        if status == _WAITING and value is None:
            continue  # the server has no value yet (it just started): nothing to record, nothing wrong
        record = records[handle]
        if record == "sample":
            if isinstance(value, int | float):
                s_rows.append(handle)
                s_ts.append(ts)
                s_values.append(float(value))  # bool → 0.0 / 1.0
                s_quality.append(status >> _SEVERITY_SHIFT)
            else:
                _reject(batch, faults, handle, targets[handle], variant, status, ts, source)
                continue
        elif record == "state":
            if status >> _SEVERITY_SHIFT >= 2:
                _reject(batch, faults, handle, targets[handle], variant, status, ts, source, bad=True)
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                _reject(batch, faults, handle, targets[handle], variant, status, ts, source)
                continue
            st_rows.append(handle)
            st_ts.append(ts)
            st_values.append(value)
        else:
            reading = _whole_number(value)
            if status >> _SEVERITY_SHIFT >= 2:
                _reject(batch, faults, handle, targets[handle], variant, status, ts, source, bad=True)
                continue
            if reading is None:
                _reject(batch, faults, handle, targets[handle], variant, status, ts, source)
                continue
            increment = counters.increment(targets[handle].node_id, reading)
            if increment:  # nothing on the first reading, and nothing when the counter did not move
                c_rows.append(handle)
                c_ts.append(ts)
                c_values.append(increment)
        if faults:
            faults.pop(handle, None)  # a good value: the node's fault, if it had one, is over
    if s_rows:
        batch.tables[RecordKind.SAMPLES] = _table(
            RecordKind.SAMPLES,
            {
                "asset_id": columns.assets.take(pa.array(s_rows, pa.int32())),
                "signal": columns.signals.take(pa.array(s_rows, pa.int32())),
                "ts": pa.array(s_ts, TS_TYPE),
                "value": pa.array(s_values, pa.float64()),
                "quality": _QUALITIES.take(pa.array(s_quality, pa.int8())),
            },
        )
    if st_rows:
        batch.tables[RecordKind.STATES] = _table(
            RecordKind.STATES,
            {
                "asset_id": columns.assets.take(pa.array(st_rows, pa.int32())),
                "ts": pa.array(st_ts, TS_TYPE),
                "state": pa.array(st_values, pa.string()),
            },
        )
    if c_rows:
        n = len(c_rows)
        batch.tables[RecordKind.COUNTS] = _table(
            RecordKind.COUNTS,
            {
                "asset_id": columns.assets.take(pa.array(c_rows, pa.int32())),
                "ts": pa.array(c_ts, TS_TYPE),
                "produced": pa.array(c_values, pa.int64()),
                "scrap": pa.repeat(pa.scalar(0, pa.int64()), n),
                "rework": pa.repeat(pa.scalar(0, pa.int64()), n),
            },
        )
    return batch


def status_name(code: int) -> str:
    """An OPC UA status code's name, e.g. BadSensorFailure."""
    return ua.StatusCode(ua.UInt32(code)).name


def standard_node(object_id: int) -> ua.NodeId:
    """A node of the standard address space (namespace 0) by its numeric id."""
    return ua.NodeId(ua.Int32(object_id))


def _table(kind: RecordKind, columns: dict[str, pa.Array]) -> pa.Table:
    """A table in the kind's exact schema; columns not given (tenant, reason, product) are null."""
    schema = SPECS[kind].schema
    n = len(next(iter(columns.values())))
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _reject(
    batch: DecodedBatch,
    faults: dict[int, str],
    handle: int,
    target: NodeTarget,
    variant: ua.Variant | None,
    status: int,
    ts: datetime,
    source: str,
    bad: bool = False,
) -> None:
    value = variant.Value if variant is not None else None
    type_name = variant.VariantType.name if variant is not None else "Null"
    status_text = status_name(status)
    what = f"node {target.node_id} ({target.record} of {target.asset_id}"
    what += f"/{target.signal})" if target.signal else ")"
    if bad:
        code, message = "bad_status", f"{what} reported {status_text}; a {target.record} needs a usable value"
    elif value is None:
        code, message = "no_value", f"{what} sent no value (status {status_text})"
    else:
        wanted = {
            "sample": "a number or a boolean",
            "state": "a string or an integer",
            "counter": "a whole number",
        }[target.record]
        code, message = "wrong_type", f"{what} sent a {type_name} value; a {target.record} needs {wanted}"
    if faults.get(handle) == code:
        count, _ = batch.repeated.get(code, (0, ""))
        batch.repeated[code] = (count + 1, message)
        return
    faults[handle] = code
    raw: dict[str, Any] = {
        "source": source,
        "node_id": target.node_id,
        "asset_id": target.asset_id,
        "record": target.record,
        "type": type_name,
        "status": status_text,
        "ts": ts.isoformat(),
    }
    if target.signal:
        raw["signal"] = target.signal
    if value is not None:
        text = value if isinstance(value, str) else repr(value)
        raw["value"] = text[:MAX_KEPT_PAYLOAD_BYTES]
        if len(text) > MAX_KEPT_PAYLOAD_BYTES:
            raw["truncated"] = True
    batch.rejects.setdefault(target.kind, []).append(Reject(code, message, raw))
