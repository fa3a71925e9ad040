"""Decode JSON bodies, the small-batch path: each record is checked on its own, so one bad record is
dead-lettered with a specific code and the rest are kept.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from leitstand.domain.errors import InputError
from leitstand.domain.records import RecordSpec
from leitstand.ingest.conform import Decoded, conform, too_many_records
from leitstand.ingest.sink import RecordError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMERIC = {"value": "float", "produced": "int", "scrap": "int", "rework": "int"}


class RecordInvalid(Exception):
    """One record is malformed; `code` is the dead-letter reason."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def decode_json(body: bytes, spec: RecordSpec, max_records: int | None = None) -> Decoded:
    """Decode `[{...}, ...]` or `{"records": [...]}`; a malformed record is rejected on its own.
    More than `max_records` records refuse the whole body with PayloadTooLarge."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body is not valid JSON: {exc}") from exc
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise InputError('JSON body must be a list of records or {"records": [...]}')
    if max_records is not None and len(records) > max_records:
        raise too_many_records(max_records)
    names = spec.schema.names
    columns: dict[str, list[Any]] = {n: [] for n in names}
    positions: list[int] = []
    errors: list[RecordError] = []
    raw: dict[int, Any] = {}
    for index, record in enumerate(records):
        try:
            row = json_row(record, spec)
        except RecordInvalid as exc:
            errors.append(RecordError(index, exc.code, str(exc)))
            raw[index] = record
            continue
        for n in names:
            columns[n].append(row.get(n))
        positions.append(index)
    table = pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in spec.schema], schema=spec.schema)
    return Decoded(conform(table, spec), pa.array(positions, pa.int64()), errors, raw, len(records))


def json_row(record: object, spec: RecordSpec) -> dict[str, Any]:
    """One JSON record as a row of the spec's columns (`timestamp_ms` is taken for `ts`), or raise
    RecordInvalid with the reason."""
    if not isinstance(record, dict):
        raise RecordInvalid("record must be a JSON object", "invalid_record")
    if "timestamp_ms" in record and "ts" not in record:
        record = {**record, "ts": record["timestamp_ms"]}
        del record["timestamp_ms"]
    unknown = [k for k in record if k not in spec.schema.names]
    if unknown:
        raise RecordInvalid(f"unknown field(s) {', '.join(map(repr, unknown))}", "unknown_field")
    row: dict[str, Any] = {}
    for name in spec.schema.names:
        value = record.get(name)
        if value is None:
            if name in spec.required:
                raise RecordInvalid(f"field {name!r} is required", "missing_field")
            continue
        if name == "ts":
            row[name] = _json_ts(value)
        elif name in _NUMERIC:
            row[name] = _json_number(name, value, _NUMERIC[name])
        elif not isinstance(value, str):
            raise RecordInvalid(f"field {name!r} must be a string, not {type(value).__name__}", "wrong_type")
        else:
            row[name] = value
    return row


def _json_number(name: str, value: object, kind: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
            raise RecordInvalid(
                f"field {name!r} is {value}; only finite numbers are stored", "non_finite_value"
            )
        raise RecordInvalid(f"field {name!r} must be a number, not {type(value).__name__}", "wrong_type")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordInvalid(f"field {name!r} is not finite", "non_finite_value")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise RecordInvalid(f"field {name!r} must be a whole number, not {value}", "wrong_type")
        number = int(value)
        if not INT64_MIN <= number <= INT64_MAX:
            raise RecordInvalid(
                f"field {name!r} is {number}, outside the stored 64-bit integer range", "out_of_range"
            )
        return number
    try:
        return float(value)
    except OverflowError as exc:  # an integer too large for a double
        raise RecordInvalid(f"field {name!r} is too large to store as a number", "out_of_range") from exc


def _json_ts(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordInvalid(
            "field 'ts' must be an ISO 8601 string with offset or epoch milliseconds", "wrong_type"
        )
    if not isinstance(value, str):
        try:
            # timedelta keeps integer milliseconds exact, where dividing by 1000 as a float would not
            return _EPOCH + timedelta(milliseconds=value)
        except (ValueError, OverflowError) as exc:  # NaN, or beyond the year 9999
            raise _ts_out_of_range(value) from exc
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RecordInvalid(
            f"field 'ts' {value!r} is not an ISO 8601 timestamp", "invalid_timestamp"
        ) from exc
    if parsed.tzinfo is None:
        raise RecordInvalid(
            f"field 'ts' {value!r} has no UTC offset; add 'Z' or '+01:00'", "invalid_timestamp"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise _ts_out_of_range(value) from exc


def _ts_out_of_range(value: object) -> RecordInvalid:
    return RecordInvalid(
        f"field 'ts' {value!r} is outside the timestamps that can be stored (years 1 to 9999 UTC)",
        "invalid_timestamp",
    )
