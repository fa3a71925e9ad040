"""The columnar contract a decoded request meets: an Arrow table in the record kind's exact schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from leitstand.domain.errors import InputError, PayloadTooLarge
from leitstand.domain.records import RecordSpec
from leitstand.ingest.sink import RecordError

# Optional fields a source may leave out, and what they mean when it does.
DEFAULTS: dict[str, object] = {"quality": "GOOD", "scrap": 0, "rework": 0}


@dataclass(frozen=True, slots=True)
class Decoded:
    """Records as an Arrow table, the position of each row in the request, and records that failed."""

    table: pa.Table
    positions: pa.Array | None  # request index of each table row; None when rows map 1:1
    errors: list[RecordError]
    raw_rejects: dict[int, Any]  # request index → record as sent, for the dead-letter store
    received: int


def too_many_records(limit: int) -> PayloadTooLarge:
    """The error for a body that holds more records than `max_request_records` allows."""
    return PayloadTooLarge(
        f"the body holds more than {limit} records, the limit (max_request_records); "
        "split it into smaller requests"
    )


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
            default = DEFAULTS.get(field.name)
            columns.append(
                pa.nulls(table.num_rows, field.type)
                if default is None
                else pa.repeat(pa.scalar(default, field.type), table.num_rows)
            )
            continue
        column = table.column(field.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        try:
            if field.name == "ts":
                column = _ts_column(column)
            column = column.cast(field.type)
            if field.name in DEFAULTS and column.null_count:
                column = pc.fill_null(column, pa.scalar(DEFAULTS[field.name], field.type))
            columns.append(column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"column {field.name!r} has type {column.type}, which does not convert to {field.type}: {exc}"
            ) from exc
    return pa.Table.from_arrays(columns, schema=spec.schema).combine_chunks()


def _ts_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise InputError("column 'ts' has no time zone; send timestamps in UTC (timestamp with tz='UTC')")
        return column
    if pa.types.is_integer(kind):  # epoch milliseconds, the common IoT convention
        return column.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    raise InputError(f"column 'ts' must be a UTC timestamp or integer epoch milliseconds, not {kind}")
