"""Decoding request bodies: JSON record by record, Arrow and Parquet whole, within the record limit."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leitstand.domain.errors import InputError, PayloadTooLarge, UnsupportedMediaType
from leitstand.domain.records import COUNTS, SAMPLES, STATES, TS_TYPE, RecordSpec
from leitstand.ingest.conform import Decoded
from leitstand.ingest.decode import decode_body
from leitstand.ingest.decode_json import decode_json

T = datetime(2026, 11, 20, 6, tzinfo=UTC)
EPOCH_MS = 1_795_154_400_000  # T in epoch milliseconds
JSON = "application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"
LIMIT = 1_000


def decode(records: object, spec: RecordSpec = SAMPLES) -> Decoded:
    return decode_body(json.dumps(records).encode(), JSON, spec, LIMIT)  # json: integers of any size


def rows(decoded: Decoded) -> list[dict[str, object]]:
    return decoded.table.to_pylist()


def errors(decoded: Decoded) -> list[tuple[int, str]]:
    return [(e.index, e.code) for e in decoded.errors]


def sample(**fields: object) -> dict[str, object]:
    return {"asset_id": "m1", "signal": "temperature", "ts": "2026-11-20T06:00:00Z", "value": 1.5, **fields}


def stored(**fields: object) -> dict[str, object]:
    """A decoded sample row: tenant unset, quality defaulted."""
    row = {
        "tenant": None,
        "asset_id": "m1",
        "signal": "temperature",
        "ts": T,
        "value": 1.5,
        "quality": "GOOD",
    }
    return {**row, **fields}


def body(table: pa.Table, media: str) -> bytes:
    sink = io.BytesIO()
    if media == PARQUET:
        pq.write_table(table, sink)
    else:
        new = pa.ipc.new_stream if media == ARROW_STREAM else pa.ipc.new_file
        with new(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=100)
    return sink.getvalue()


# JSON --------------------------------------------------------------------------------------------------


def test_json_takes_a_list_or_an_object_with_records() -> None:
    assert rows(decode([sample()])) == rows(decode({"records": [sample()]})) == [stored()]


@pytest.mark.parametrize("doc", [{"rows": []}, "records", 3])
def test_json_of_another_shape_is_refused_whole(doc: object) -> None:
    with pytest.raises(InputError, match="list of records"):
        decode(doc)


def test_malformed_json_is_refused_whole() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        decode_body(b"[{", JSON, SAMPLES, LIMIT)


@pytest.mark.parametrize(
    "ts",
    [
        EPOCH_MS,
        float(EPOCH_MS),
        "2026-11-20T06:00:00Z",
        "2026-11-20T07:00:00+01:00",
        "2026-11-20T06:00:00.000+00:00",
    ],
)
def test_json_ts_is_iso_8601_with_an_offset_or_epoch_milliseconds_and_becomes_utc(ts: object) -> None:
    assert rows(decode([sample(ts=ts)])) == [stored()]


def test_json_ts_may_be_called_timestamp_ms() -> None:
    record = sample()
    del record["ts"]
    assert rows(decode([{**record, "timestamp_ms": EPOCH_MS + 1}])) == [
        stored(ts=T + timedelta(milliseconds=1))
    ]


def test_json_epoch_milliseconds_are_exact() -> None:
    ms = 253_402_300_799_999  # the last millisecond of the year 9999; a float division would round it
    assert rows(decode([sample(ts=ms)]))[0]["ts"] == datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)


def test_optional_json_fields_get_their_defaults() -> None:
    counts = decode([{"asset_id": "m1", "ts": EPOCH_MS, "produced": 4}], COUNTS)
    states = decode([{"asset_id": "m1", "ts": EPOCH_MS, "state": "RUNNING"}], STATES)
    assert rows(decode([sample()]))[0]["quality"] == "GOOD"
    assert rows(counts) == [
        {
            "tenant": None,
            "asset_id": "m1",
            "ts": T,
            "product_id": None,
            "produced": 4,
            "scrap": 0,
            "rework": 0,
        }
    ]
    assert rows(states) == [{"tenant": None, "asset_id": "m1", "ts": T, "state": "RUNNING", "reason": None}]


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (sample(valeu=3), "unknown_field"),
        ([1, 2], "invalid_record"),
        ({"asset_id": "m1", "signal": "temperature", "ts": EPOCH_MS}, "missing_field"),
        (sample(value=None), "missing_field"),
        (sample(value="3.5"), "wrong_type"),
        (sample(value=True), "wrong_type"),
        (sample(asset_id=7), "wrong_type"),
        (sample(ts=True), "wrong_type"),
        (sample(ts=[2026]), "wrong_type"),
        (sample(value="NaN"), "non_finite_value"),
        (sample(value="-Infinity"), "non_finite_value"),
        (sample(ts="2026-11-20 06:00:00"), "invalid_timestamp"),  # no offset
        (sample(ts="2026-11-20"), "invalid_timestamp"),
        (sample(ts="yesterday"), "invalid_timestamp"),
        (sample(ts=1e15), "invalid_timestamp"),  # the year 33658
        (sample(ts=-1e15), "invalid_timestamp"),
        (sample(ts=2**63), "invalid_timestamp"),
        (sample(ts="9999-12-31T23:59:59-01:00"), "invalid_timestamp"),  # the year 10000 in UTC
        (sample(ts="0001-01-01T00:00:00+01:00"), "invalid_timestamp"),  # the year 0 in UTC
    ],
)
def test_a_bad_json_record_is_rejected_with_its_code_and_its_neighbours_are_kept(
    record: object, code: str
) -> None:
    decoded = decode([sample(value=1.0), record, sample(value=2.0)])
    assert errors(decoded) == [(1, code)]
    assert decoded.raw_rejects == {1: record}
    assert decoded.positions is not None
    assert decoded.positions.to_pylist() == [0, 2]
    assert [r["value"] for r in rows(decoded)] == [1.0, 2.0]
    assert decoded.received == 3


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"produced": 2**63}, "out_of_range"),
        ({"produced": 2**64 - 1}, "out_of_range"),
        ({"produced": -1e19}, "out_of_range"),
        ({"produced": 1.8e19}, "out_of_range"),
        ({"produced": 10, "scrap": 2**63}, "out_of_range"),
        ({"produced": 2.5}, "wrong_type"),
    ],
)
def test_a_json_count_outside_64_bit_integers_is_rejected_on_its_own(
    fields: dict[str, object], code: str
) -> None:
    good = {"asset_id": "m1", "ts": EPOCH_MS, "produced": 1}
    decoded = decode([good, {**good, **fields}], COUNTS)
    assert errors(decoded) == [(1, code)]
    assert [r["produced"] for r in rows(decoded)] == [1]


def test_the_largest_json_integers_are_stored_where_they_fit() -> None:
    counts = decode([{"asset_id": "m1", "ts": EPOCH_MS, "produced": 2**63 - 1}], COUNTS)
    samples = decode([sample(value=2**64 - 1)])
    assert rows(counts)[0]["produced"] == 2**63 - 1
    assert rows(samples)[0]["value"] == float(2**64 - 1)


def test_a_json_number_that_is_no_double_is_out_of_range() -> None:
    # orjson never yields such an integer, but the record checks must not depend on the parser
    from leitstand.ingest.decode_json import json_row

    with pytest.raises(Exception, match="too large") as caught:
        json_row(sample(value=10**400), SAMPLES)
    assert caught.value.code == "out_of_range"  # type: ignore[attr-defined]


# Arrow and Parquet -------------------------------------------------------------------------------------


def arrow_samples(n: int, **columns: pa.Array) -> pa.Table:
    base = {
        "asset_id": pa.array(["m1"] * n),
        "signal": pa.array(["temperature"] * n),
        "ts": pa.array([T + timedelta(seconds=i) for i in range(n)], TS_TYPE),
        "value": pa.array([float(i) for i in range(n)]),
    }
    return pa.table({**base, **columns})


@pytest.mark.parametrize("media", [ARROW_STREAM, ARROW_FILE, PARQUET])
def test_binary_bodies_decode_to_the_kinds_schema_with_defaults(media: str) -> None:
    decoded = decode_body(body(arrow_samples(250), media), media, SAMPLES, LIMIT)
    assert decoded.table.schema == SAMPLES.schema
    assert (decoded.received, decoded.positions, decoded.errors) == (250, None, [])
    assert rows(decoded)[7] == stored(ts=T + timedelta(seconds=7), value=7.0)


def test_dictionary_encoded_arrow_columns_decode_to_plain_strings() -> None:
    table = arrow_samples(3, asset_id=pa.array(["m1", "m2", "m1"]).dictionary_encode())
    decoded = decode_body(body(table, ARROW_STREAM), ARROW_STREAM, SAMPLES, LIMIT)
    assert decoded.table.schema == SAMPLES.schema
    assert decoded.table["asset_id"].to_pylist() == ["m1", "m2", "m1"]


def test_integer_ts_columns_are_epoch_milliseconds() -> None:
    table = arrow_samples(2, ts=pa.array([EPOCH_MS, EPOCH_MS + 1], pa.int64()))
    decoded = decode_body(body(table, PARQUET), PARQUET, SAMPLES, LIMIT)
    assert decoded.table["ts"].to_pylist() == [T, T + timedelta(milliseconds=1)]


@pytest.mark.parametrize(
    ("columns", "detail"),
    [
        ({"ts": pa.array([datetime(2026, 11, 20, 6)], pa.timestamp("us"))}, "no time zone"),
        ({"ts": pa.array(["2026-11-20T06:00:00Z"])}, "'ts'"),
        ({"ts": pa.array([2**62], pa.uint64())}, "'ts'"),  # epoch ms beyond what microseconds can hold
        ({"value": pa.array(["hot"])}, "'value'"),
        ({"valeu": pa.array([1.0])}, "unknown column(s) 'valeu'"),
    ],
)
def test_a_binary_body_with_a_bad_column_is_refused_whole_naming_it(columns: dict, detail: str) -> None:
    with pytest.raises(InputError) as refused:
        decode_body(body(arrow_samples(1, **columns), ARROW_STREAM), ARROW_STREAM, SAMPLES, LIMIT)
    assert detail in str(refused.value)


def test_a_binary_body_without_a_required_column_is_refused_whole() -> None:
    with pytest.raises(InputError, match="required column"):
        decode_body(body(arrow_samples(1).drop_columns(["value"]), PARQUET), PARQUET, SAMPLES, LIMIT)


@pytest.mark.parametrize("media", [ARROW_STREAM, ARROW_FILE, PARQUET])
def test_a_broken_binary_body_is_refused_whole(media: str) -> None:
    with pytest.raises(InputError, match="not a valid"):
        decode_body(body(arrow_samples(500), media)[:-40], media, SAMPLES, LIMIT)


def test_an_unsupported_content_type_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="'text/csv' is not supported"):
        decode_body(b"a,b", "text/csv; charset=utf-8", SAMPLES, LIMIT)


# Limits ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("media", [JSON, ARROW_STREAM, ARROW_FILE, PARQUET])
def test_a_body_with_more_records_than_the_limit_is_refused_naming_the_limit(media: str) -> None:
    table = arrow_samples(LIMIT + 1)
    content = orjson.dumps([sample()] * (LIMIT + 1)) if media == JSON else body(table, media)
    with pytest.raises(PayloadTooLarge, match=f"more than {LIMIT} records.*max_request_records"):
        decode_body(content, media, SAMPLES, LIMIT)


@pytest.mark.parametrize("media", [JSON, ARROW_STREAM, ARROW_FILE, PARQUET])
def test_a_body_with_exactly_the_limit_of_records_is_decoded(media: str) -> None:
    table = arrow_samples(LIMIT)
    content = orjson.dumps([sample()] * LIMIT) if media == JSON else body(table, media)
    assert decode_body(content, media, SAMPLES, LIMIT).received == LIMIT


def test_a_compressed_parquet_bomb_is_refused_from_its_metadata() -> None:
    n = 2_000_000
    one = {
        "asset_id": pa.scalar("m1"),
        "signal": pa.scalar("t"),
        "ts": pa.scalar(T, TS_TYPE),
        "value": pa.scalar(0.0),
    }
    bomb = pa.table({name: pa.repeat(value, n) for name, value in one.items()})
    sink = io.BytesIO()
    pq.write_table(bomb, sink, compression="zstd")
    assert len(sink.getvalue()) < 100_000
    with pytest.raises(PayloadTooLarge):
        decode_body(sink.getvalue(), PARQUET, SAMPLES, LIMIT)


# Round trip --------------------------------------------------------------------------------------------

_TEXT = st.text(max_size=12)
_TS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
_INT64 = st.integers(-(2**63), 2**63 - 1)
_RECORDS = {
    SAMPLES: st.fixed_dictionaries(
        {
            "asset_id": _TEXT,
            "signal": _TEXT,
            "ts": _TS,
            "value": st.floats(allow_nan=False, allow_infinity=False),
        },
        optional={"quality": st.sampled_from(["GOOD", "UNCERTAIN", "BAD"]), "tenant": _TEXT},
    ),
    STATES: st.fixed_dictionaries(
        {"asset_id": _TEXT, "ts": _TS, "state": _TEXT}, optional={"reason": _TEXT, "tenant": _TEXT}
    ),
    COUNTS: st.fixed_dictionaries(
        {"asset_id": _TEXT, "ts": _TS, "produced": _INT64},
        optional={"scrap": _INT64, "rework": _INT64, "product_id": _TEXT},
    ),
}
_BATCHES = st.sampled_from(list(_RECORDS)).flatmap(
    lambda spec: st.tuples(st.just(spec), st.lists(_RECORDS[spec], max_size=20))
)


@settings(deadline=None)  # the cores are shared; a slow example is not a failure
@given(batch=_BATCHES, epoch_ms=st.booleans())
def test_valid_json_records_decode_to_exactly_their_rows(
    batch: tuple[RecordSpec, list[dict]], epoch_ms: bool
) -> None:
    spec, records = batch

    def sent(record: dict) -> dict:
        ts = record["ts"]
        if epoch_ms:
            return {**record, "ts": (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)}
        return {**record, "ts": ts.isoformat()}

    def expected(record: dict) -> dict:
        ts = record["ts"]
        if epoch_ms:  # milliseconds carry no microseconds
            ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
        defaults = {"quality": "GOOD", "scrap": 0, "rework": 0}
        return {name: defaults.get(name) for name in spec.columns} | record | {"ts": ts}

    decoded = decode_json(orjson.dumps([sent(r) for r in records]), spec)
    assert decoded.errors == []
    assert rows(decoded) == [expected(r) for r in records]
