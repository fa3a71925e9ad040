"""Register words and bits → values → Arrow tables in the record schemas. No I/O.

Modbus registers are 16-bit words. A 32- or 64-bit value spans 2 or 4 consecutive registers, and
devices disagree on two orders: `word_order` says whether the most significant register comes first
(big) or last (little), `byte_order` whether each register holds its high byte first (big, as the
protocol specifies) or its low byte first (little). The float32 123.456 (bytes 42 F6 E9 79) arrives as

    big/big       [0x42F6, 0xE979]   "ABCD"
    big/little    [0xE979, 0x42F6]   "CDAB" (word_order little)
    little/big    [0xF642, 0x79E9]   "BADC" (byte_order little)
    little/little [0x79E9, 0xF642]   "DCBA"

Values of one encoding are decoded together: the words are gathered into an (n, width) matrix,
reordered and reinterpreted in one numpy pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from leitstand.connect.modbus.config import WORDS, Order, ValueType
from leitstand.domain.records import COUNTS, SAMPLES, STATES, TS_TYPE, Quality

# Each type as big-endian bytes, and the dtype its values are handed on in (exact for every integer).
_WIRE: dict[str, str] = {
    "int16": ">i2",
    "uint16": ">u2",
    "int32": ">i4",
    "uint32": ">u4",
    "int64": ">i8",
    "uint64": ">u8",
    "float32": ">f4",
    "float64": ">f8",
}
_OUT: dict[str, type[np.generic]] = {
    "int16": np.int64,
    "uint16": np.int64,
    "int32": np.int64,
    "uint32": np.int64,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float64,
    "float64": np.float64,
}


def decode_words(
    words: Sequence[int] | np.ndarray, type_: ValueType, byte_order: Order = "big", word_order: Order = "big"
) -> np.ndarray:
    """The values held in `words`: one row of the type's width per value (or the rows flattened), each
    row in the order the registers were read (lowest address first). bool is a register ≠ 0."""
    width = WORDS[type_]
    rows: np.ndarray = np.asarray(words, dtype=np.uint16).reshape(-1, width)
    if type_ == "bool":
        return np.asarray(rows[:, 0] != 0, dtype=bool)
    if word_order == "little":
        rows = rows[:, ::-1]
    if byte_order == "little":
        rows = rows.byteswap()
    wire = np.ascontiguousarray(rows, dtype=">u2")
    values: np.ndarray = wire.view(_WIRE[type_]).reshape(-1).astype(_OUT[type_])
    return values


def encode_value(
    value: float | int | bool, type_: ValueType, byte_order: Order = "big", word_order: Order = "big"
) -> list[int]:
    """The registers that hold `value` (the inverse of decode_words): for tests and documentation."""
    if type_ == "bool":
        return [1 if value else 0]
    raw: np.ndarray = np.array([value], dtype=_WIRE[type_]).view(">u2").astype(np.uint16)
    if byte_order == "little":
        raw = raw.byteswap()
    if word_order == "little":
        raw = raw[::-1]
    return [int(w) for w in raw]


def gather(response: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """The (n, width) words of values starting at `offsets` in a response."""
    return response[offsets[:, None] + np.arange(width)]


class ReadLayout:
    """Where the values of some registers lie in the answer to one read, grouped by encoding, so that a
    response is decoded in one vectorised pass per encoding rather than one call per value."""

    def __init__(self, fields: Sequence[tuple[int, ValueType, Order, Order]], bits: bool = False) -> None:
        """`fields`: each value's (offset in the response, type, byte_order, word_order)."""
        self.size = len(fields)
        self.bits = bits
        groups: dict[tuple[ValueType, Order, Order], list[tuple[int, int]]] = {}
        for position, (offset, type_, byte_order, word_order) in enumerate(fields):
            groups.setdefault((type_, byte_order, word_order), []).append((position, offset))
        self._parts = [
            (
                encoding,
                np.array([p for p, _ in members], dtype=np.intp),
                np.array([o for _, o in members], dtype=np.intp),
            )
            for encoding, members in groups.items()
        ]
        self._offsets = np.array([f[0] for f in fields], dtype=np.intp)
        self._widths = np.array([1 if bits else WORDS[f[1]] for f in fields], dtype=np.intp)

    def _decode(self, response: Sequence[int] | Sequence[bool]) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.bits:
            flags = np.asarray(response, dtype=bool)
            return [(np.arange(self.size), flags[self._offsets])]
        words = np.asarray(response, dtype=np.uint16)
        out = []
        for (type_, byte_order, word_order), positions, offsets in self._parts:
            rows = gather(words, offsets, WORDS[type_])
            out.append((positions, decode_words(rows, type_, byte_order, word_order)))
        return out

    def floats(self, response: Sequence[int] | Sequence[bool]) -> np.ndarray:
        """Every value as float64, in field order."""
        values = np.empty(self.size, dtype=np.float64)
        for positions, part in self._decode(response):
            values[positions] = part
        return values

    def values(self, response: Sequence[int] | Sequence[bool]) -> list[int | float | bool]:
        """Every value as an exact Python number, in field order (for states and counters)."""
        values: list[int | float | bool] = [0] * self.size
        for positions, part in self._decode(response):
            for position, value in zip(positions.tolist(), part.tolist(), strict=True):
                values[position] = value
        return values

    def raw(self, response: Sequence[int] | Sequence[bool], position: int) -> list[int]:
        """The words (or bit) a value was decoded from, for a dead-letter entry."""
        start = int(self._offsets[position])
        return [int(v) for v in response[start : start + int(self._widths[position])]]


def apply_scale(raw: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Engineering values: raw × scale + offset (float64; overflow gives inf, which is dead-lettered)."""
    with np.errstate(over="ignore", invalid="ignore"):
        values: np.ndarray = raw.astype(np.float64) * scale + offset
    return values


def _ts(ts_us: np.ndarray | Sequence[int]) -> pa.Array:
    return pa.array(np.asarray(ts_us, dtype=np.int64), pa.int64()).cast(TS_TYPE)


def samples_table(
    asset_ids: Sequence[str] | np.ndarray,
    signals: Sequence[str] | np.ndarray,
    ts_us: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
) -> pa.Table:
    """Samples in SAMPLES.schema (tenant null: ingest fills in the connection's), quality GOOD."""
    n = len(values)
    return pa.Table.from_arrays(
        [
            pa.nulls(n, pa.string()),
            pa.array(asset_ids, pa.string()),
            pa.array(signals, pa.string()),
            _ts(ts_us),
            pa.array(np.asarray(values, dtype=np.float64), pa.float64()),
            pa.repeat(pa.scalar(Quality.GOOD.value, pa.string()), n),
        ],
        schema=SAMPLES.schema,
    )


def states_table(asset_ids: Sequence[str], ts_us: Sequence[int], states: Sequence[str]) -> pa.Table:
    """States in STATES.schema, without a reason."""
    n = len(states)
    return pa.Table.from_arrays(
        [
            pa.nulls(n, pa.string()),
            pa.array(asset_ids, pa.string()),
            _ts(ts_us),
            pa.array(states, pa.string()),
            pa.nulls(n, pa.string()),
        ],
        schema=STATES.schema,
    )


def counts_table(asset_ids: Sequence[str], ts_us: Sequence[int], produced: Sequence[int]) -> pa.Table:
    """Counts in COUNTS.schema: units produced since the previous reading, no scrap or rework."""
    n = len(produced)
    zeros = pa.array(np.zeros(n, dtype=np.int64), pa.int64())
    return pa.Table.from_arrays(
        [
            pa.nulls(n, pa.string()),
            pa.array(asset_ids, pa.string()),
            _ts(ts_us),
            pa.nulls(n, pa.string()),
            pa.array(produced, pa.int64()),
            zeros,
            zeros,
        ],
        schema=COUNTS.schema,
    )
