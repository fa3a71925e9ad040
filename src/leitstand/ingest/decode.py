"""Turn request bodies into Arrow tables of one record kind: JSON (per-record checks), Arrow IPC, Parquet.

Binary formats are the bulk path and decode without touching rows in Python. A compressed body can
expand to far more records than its size suggests, so the record count is limited: Parquet is refused
from its metadata before anything is read, Arrow IPC batch by batch as soon as the limit is passed. Only
a few bodies are decoded at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from leitstand.domain.errors import InputError, UnsupportedMediaType
from leitstand.domain.records import RecordSpec
from leitstand.ingest.conform import Decoded, conform, too_many_records
from leitstand.ingest.decode_json import decode_json

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
JSON = "application/json"
CONTENT_TYPES = (JSON, ARROW_STREAM, ARROW_FILE, PARQUET, "application/x-parquet")


def decode_body(body: bytes, content_type: str, spec: RecordSpec, max_records: int) -> Decoded:
    """Decode a request body of `content_type` into records of `spec`, or raise a specific InputError
    (PayloadTooLarge for more than `max_records` records)."""
    media = content_type.split(";")[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"content type {media or '(none)'!r} is not supported; send one of {', '.join(CONTENT_TYPES)}"
        )
    if media == JSON:
        return decode_json(body, spec, max_records)
    table = _read_binary(body, media, max_records)
    return Decoded(conform(table, spec), None, [], {}, table.num_rows)


def _read_binary(body: bytes, media: str, max_records: int) -> pa.Table:
    try:
        if media == ARROW_STREAM:
            stream = pa.ipc.open_stream(pa.BufferReader(body))
            return _read_batches(stream, stream.schema, max_records)
        if media == ARROW_FILE:
            file = pa.ipc.open_file(pa.BufferReader(body))
            batches = (file.get_batch(i) for i in range(file.num_record_batches))
            return _read_batches(batches, file.schema, max_records)
        parquet = pq.ParquetFile(pa.BufferReader(body))
        # The reader decodes as many rows as each row group declares, so their sum is what would be
        # materialised (the file-level total is a separate field and need not agree).
        metadata = parquet.metadata
        if sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) > max_records:
            raise too_many_records(max_records)
        return parquet.read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"body is not a valid {media} document: {exc}") from exc


def _read_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema, max_records: int) -> pa.Table:
    """The batches as one table, refused as soon as they add up to more than `max_records` rows."""
    kept: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        if rows > max_records:
            raise too_many_records(max_records)
        kept.append(batch)
    return pa.Table.from_batches(kept, schema=schema)
