"""Sparkplug B DATA payloads of one repeated shape, decoded as columns without protobuf objects.

An edge node sends the same metrics in the same order, message after message: the bytes differ only in
values (aliases, timestamps, numbers), while tags, lengths and the length of every varint stay put. The
layout of one such payload is learned once (`learn`, a plain scan of the protobuf wire format); after
that, payloads of the same length are stacked into a 2-D byte array, checked against the layout (every
tag and length byte, and the continuation bit of every varint byte, must match), and their values are
read for all messages and metrics at once with numpy (`read`). A payload that does not match, or a
layout with anything else (metric names, is_null, strings, arrays, properties), goes the way of
protobuf objects instead; the results are the same either way (tested against each other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
# The latest storable timestamp (9999-12-31, epoch ms); later ones are kept as BAD_TS and refused.
MAX_MS = 253_402_300_799_999
BAD_TS = MAX_MS + 1
# Metric fields the columnar path reads: alias, timestamp, datatype (ignored), and numeric values
_ALIAS, _TIMESTAMP, _DATATYPE = 2, 3, 4
_VALUE_FIELDS = {10: VARINT, 11: VARINT, 12: FIXED32, 13: FIXED64, 14: VARINT}


@dataclass(frozen=True)
class Layout:
    """Where everything lies in payloads of one shape."""

    length: int
    fixed: np.ndarray  # positions of tag and length bytes
    fixed_values: np.ndarray  # their bytes
    cont: np.ndarray  # positions of varint bytes
    cont_bits: np.ndarray  # their continuation bits (0x80 or 0)
    alias: np.ndarray  # per metric: (start, bytes) of the alias varint
    ts: np.ndarray  # per metric: (start, bytes) of the timestamp varint; bytes 0 when absent
    value: np.ndarray  # per metric: (start, bytes) of the value (varint, 4 or 8 bytes)
    value_wire: np.ndarray  # per metric: VARINT, FIXED32 or FIXED64
    value_field: np.ndarray  # per metric: the Metric field holding the value (10 int … 14 boolean)
    payload_ts: tuple[int, int]  # (start, bytes) of the payload's timestamp varint; bytes 0 if absent

    @property
    def metrics(self) -> int:
        return len(self.alias)


class _Scan:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fixed: list[int] = []
        self.cont: list[int] = []

    def varint(self, pos: int, structural: bool) -> tuple[int, int]:
        """(value, position after it); its bytes are noted as structure or as data."""
        value, shift, start = 0, 0, pos
        while True:
            if pos >= len(self.data) or shift > 63:
                raise ValueError("truncated or overlong varint")
            byte = self.data[pos]
            value |= (byte & 0x7F) << shift
            pos += 1
            shift += 7
            if not byte & 0x80:
                break
        (self.fixed if structural else self.cont).extend(range(start, pos))
        return value, pos


def learn(payload: bytes) -> Layout | None:
    """The layout of `payload`, or None when it holds anything the columnar path does not read."""
    scan = _Scan(payload)
    alias: list[tuple[int, int]] = []
    ts: list[tuple[int, int]] = []
    value: list[tuple[int, int]] = []
    wires: list[int] = []
    fields: list[int] = []
    payload_ts = (0, 0)
    pos = 0
    try:
        while pos < len(payload):
            tag, pos = scan.varint(pos, structural=True)
            field, wire = tag >> 3, tag & 7
            if field in (1, 3) and wire == VARINT:  # payload timestamp, seq
                start = pos
                _, pos = scan.varint(pos, structural=False)
                if field == 1:
                    payload_ts = (start, pos - start)
            elif field == 2 and wire == LEN:
                size, pos = scan.varint(pos, structural=True)
                end = pos + size
                metric = _metric(scan, pos, end)
                if metric is None:
                    return None
                alias.append(metric[0])
                ts.append(metric[1])
                value.append(metric[2])
                wires.append(_VALUE_FIELDS[metric[3]])
                fields.append(metric[3])
                pos = end
            else:
                return None
    except ValueError:
        return None
    if not alias or pos != len(payload):
        return None
    return Layout(
        len(payload),
        np.array(scan.fixed, np.int64),
        np.frombuffer(payload, np.uint8)[scan.fixed].copy(),
        np.array(scan.cont, np.int64),
        (np.frombuffer(payload, np.uint8)[scan.cont] & 0x80).copy(),
        np.array(alias, np.int64),
        np.array(ts, np.int64),
        np.array(value, np.int64),
        np.array(wires, np.int64),
        np.array(fields, np.int64),
        payload_ts,
    )


def _metric(
    scan: _Scan, pos: int, end: int
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int] | None:
    alias = ts = val = None
    value_field = -1
    while pos < end:
        tag, pos = scan.varint(pos, structural=True)
        field, wire = tag >> 3, tag & 7
        if field in (_ALIAS, _TIMESTAMP, _DATATYPE) and wire == VARINT:
            start = pos
            _, pos = scan.varint(pos, structural=False)
            if field == _ALIAS:
                alias = (start, pos - start)
            elif field == _TIMESTAMP:
                ts = (start, pos - start)
        elif _VALUE_FIELDS.get(field) == wire and val is None:
            if wire == VARINT:
                start = pos
                _, pos = scan.varint(pos, structural=False)
                val = (start, pos - start)
            else:
                size = 8 if wire == FIXED64 else 4
                if pos + size > end:
                    return None
                val = (pos, size)
                pos += size
            value_field = field
        else:
            return None  # a name, is_null, a string, an array, properties …: not for this path
    if pos != end or alias is None or val is None:
        return None
    return alias, ts or (0, 0), val, value_field


def _capped(ms: np.ndarray) -> np.ndarray:
    """uint64 epoch milliseconds as int64, those beyond the storable ones as BAD_TS."""
    capped: np.ndarray = np.minimum(ms, np.uint64(BAD_TS)).astype(np.int64)
    return capped


def _varints(rows: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Varints at (start, bytes) `spans` in every row: an (n rows × len(spans)) uint64 array."""
    width = int(spans[:, 1].max()) if len(spans) else 0
    out = np.zeros((rows.shape[0], len(spans)), np.uint64)
    for i in range(width):
        present = spans[:, 1] > i
        positions = spans[present, 0] + i
        chunk = (rows[:, positions] & 0x7F).astype(np.uint64) << np.uint64(7 * i)
        out[:, present] |= chunk
    return out


def read(layout: Layout, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which rows (payloads, stacked) match `layout`, and for those: `alias`, `ts` (epoch ms; the
    payload's timestamp where a metric has none, -1 where neither), `raw` (uint64 varint values) and
    `float` (fixed32 and fixed64 values as float64), each (matching rows × metrics)."""
    ok = (rows[:, layout.fixed] == layout.fixed_values).all(axis=1) & (
        (rows[:, layout.cont] & 0x80) == layout.cont_bits
    ).all(axis=1)
    rows = rows[ok]
    n, m = rows.shape[0], layout.metrics
    alias = _varints(rows, layout.alias)
    has_ts = layout.ts[:, 1] > 0
    ts = np.full((n, m), -1, np.int64)
    if layout.payload_ts[1]:
        ts[:] = _capped(_varints(rows, np.array([layout.payload_ts]))[:, :1])
    if has_ts.any():
        own = _capped(_varints(rows, layout.ts[has_ts]))
        ts[:, has_ts] = np.where(own > 0, own, ts[:, has_ts])  # a zero timestamp means "none"
    raw = np.zeros((n, m), np.uint64)
    floats = np.zeros((n, m), np.float64)
    varint = layout.value_wire == VARINT
    if varint.any():
        raw[:, varint] = _varints(rows, layout.value[varint])
    for wire, dtype in ((FIXED64, "<f8"), (FIXED32, "<f4")):
        chosen = layout.value_wire == wire
        if chosen.any():
            size = 8 if wire == FIXED64 else 4
            starts = layout.value[chosen, 0]
            gathered = rows[:, (starts[:, None] + np.arange(size)).ravel()]
            floats[:, chosen] = np.ascontiguousarray(gathered).view(dtype).reshape(n, -1).astype(np.float64)
    return ok, {"alias": alias, "ts": ts, "raw": raw, "float": floats}
