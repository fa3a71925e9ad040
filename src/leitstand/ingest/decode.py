"""Turn request bodies into Arrow tables of one record kind: JSON (per-record checks), Arrow IPC, Parquet.

Binary formats are the bulk path and decode without touching rows in Python. JSON is the small-batch
path: each record is checked on its own, so one bad record is dead-lettered and the rest are kept.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from leitstand.domain.errors import InputError, UnsupportedMediaType
from leitstand.domain.records import RecordSpec
from leitstand.ingest.sink import RecordError

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
JSON = "application/json"
CONTENT_TYPES = (JSON, ARROW_STREAM, ARROW_FILE, PARQUET, "application/x-parquet")


@dataclass(frozen=True, slots=True)
class Decoded:
    """Records as an Arrow table, the position of each row in the request, and records that failed."""

    table: pa.Table
    positions: pa.Array | None  # request index of each table row; None when rows map 1:1
    errors: list[RecordError]
    raw_rejects: dict[int, Any]  # request index → record as sent, for the dead-letter store
    received: int


def decode_body(body: bytes, content_type: str, spec: RecordSpec) -> Decoded:
    """Decode a request body of `content_type` into records of `spec`, or raise a specific InputError."""
    media = content_type.split(";")[0].strip().lower()
    if media == JSON:
        return decode_json(body, spec)
    try:
        if media == ARROW_STREAM:
            table = pa.ipc.open_stream(pa.BufferReader(body)).read_all()
        elif media == ARROW_FILE:
            table = pa.ipc.open_file(pa.BufferReader(body)).read_all()
        elif media in (PARQUET, "application/x-parquet"):
            table = pq.read_table(io.BytesIO(body))
        else:
            raise UnsupportedMediaType(
                f"content type {media or '(none)'!r} is not supported; send one of {', '.join(CONTENT_TYPES)}"
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"body is not a valid {media} document: {exc}") from exc
    return Decoded(conform(table, spec), None, [], {}, table.num_rows)


def conform(table: pa.Table, spec: RecordSpec) -> pa.Table:
    """Cast a whole table to the spec's schema: required columns must exist, unknown ones are an error."""
    unknown = [c for c in table.column_names if c not in spec.schema.names]
    if unknown:
        raise InputError(
            f"unknown column(s) {', '.join(map(repr, unknown))} for {spec.kind.value}; "
            f"expected {', '.join(spec.columns)}"
        )
    missing = [c for c in spec.required if c not in table.column_names]
    if missing:
        raise InputError(f"required column(s) {', '.join(map(repr, missing))} missing for {spec.kind.value}")
    columns = []
    for field in spec.schema:
        if field.name not in table.column_names:
            default = _DEFAULTS.get(field.name)
            columns.append(
                pa.nulls(table.num_rows, field.type)
                if default is None
                else pa.repeat(pa.scalar(default, field.type), table.num_rows)
            )
            continue
        column = table.column(field.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if field.name == "ts":
            column = _ts_column(column)
        try:
            column = column.cast(field.type)
            if field.name in _DEFAULTS and column.null_count:
                column = pc.fill_null(column, pa.scalar(_DEFAULTS[field.name], field.type))
            columns.append(column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"column {field.name!r} has type {column.type}, which does not convert to {field.type}: {exc}"
            ) from exc
    return pa.Table.from_arrays(columns, schema=spec.schema).combine_chunks()


# Optional fields a source may leave out, and what they mean when it does.
_DEFAULTS: dict[str, object] = {"quality": "GOOD", "scrap": 0}


def _ts_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise InputError("column 'ts' has no time zone; send timestamps in UTC (timestamp with tz='UTC')")
        return column
    if pa.types.is_integer(kind):  # epoch milliseconds, the common IoT convention
        return column.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    raise InputError(f"column 'ts' must be a UTC timestamp or integer epoch milliseconds, not {kind}")


# JSON ------------------------------------------------------------------------------------------------


class _RecordInvalid(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


_NUMERIC = {"value": "float", "produced": "int", "scrap": "int"}


def decode_json(body: bytes, spec: RecordSpec) -> Decoded:
    """Decode `[{...}, ...]` or `{"records": [...]}`; a malformed record is rejected on its own."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body is not valid JSON: {exc}") from exc
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise InputError('JSON body must be a list of records or {"records": [...]}')
    names = spec.schema.names
    columns: dict[str, list[Any]] = {n: [] for n in names}
    positions: list[int] = []
    errors: list[RecordError] = []
    raw: dict[int, Any] = {}
    for index, record in enumerate(records):
        try:
            row = _json_row(record, spec)
        except _RecordInvalid as exc:
            errors.append(RecordError(index, exc.code, str(exc)))
            raw[index] = record
            continue
        for n in names:
            columns[n].append(row.get(n))
        positions.append(index)
    table = pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in spec.schema], schema=spec.schema)
    return Decoded(conform(table, spec), pa.array(positions, pa.int64()), errors, raw, len(records))


def _json_row(record: object, spec: RecordSpec) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _RecordInvalid("record must be a JSON object", "invalid_record")
    if "timestamp_ms" in record and "ts" not in record:
        record = {**record, "ts": record["timestamp_ms"]}
        del record["timestamp_ms"]
    unknown = [k for k in record if k not in spec.schema.names]
    if unknown:
        raise _RecordInvalid(f"unknown field(s) {', '.join(map(repr, unknown))}", "unknown_field")
    row: dict[str, Any] = {}
    for name in spec.schema.names:
        value = record.get(name)
        if value is None:
            if name in spec.required:
                raise _RecordInvalid(f"field {name!r} is required", "missing_field")
            continue
        if name == "ts":
            row[name] = _json_ts(value)
        elif name in _NUMERIC:
            row[name] = _json_number(name, value, _NUMERIC[name])
        elif not isinstance(value, str):
            raise _RecordInvalid(f"field {name!r} must be a string, not {type(value).__name__}", "wrong_type")
        else:
            row[name] = value
    return row


def _json_number(name: str, value: object, kind: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
            raise _RecordInvalid(
                f"field {name!r} is {value}; only finite numbers are stored", "non_finite_value"
            )
        raise _RecordInvalid(f"field {name!r} must be a number, not {type(value).__name__}", "wrong_type")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise _RecordInvalid(f"field {name!r} must be a whole number, not {value}", "wrong_type")
        return int(value)
    if not math.isfinite(value):
        raise _RecordInvalid(f"field {name!r} is not finite", "non_finite_value")
    return float(value)


def _json_ts(value: object) -> datetime:
    if isinstance(value, bool):
        raise _RecordInvalid(
            "field 'ts' must be an ISO 8601 string with offset or epoch milliseconds", "wrong_type"
        )
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > 1e15:
            raise _RecordInvalid(
                f"field 'ts' epoch milliseconds {value} is out of range", "invalid_timestamp"
            )
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, str):
        raise _RecordInvalid(
            "field 'ts' must be an ISO 8601 string with offset or epoch milliseconds", "wrong_type"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _RecordInvalid(
            f"field 'ts' {value!r} is not an ISO 8601 timestamp", "invalid_timestamp"
        ) from exc
    if parsed.tzinfo is None:
        raise _RecordInvalid(
            f"field 'ts' {value!r} has no UTC offset; add 'Z' or '+01:00'", "invalid_timestamp"
        )
    return parsed.astimezone(UTC)
