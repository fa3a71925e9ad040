"""Vectorised validation: each check names its code, the first failing check wins, valid rows cost nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from leitstand.domain.records import SPECS, RecordKind
from leitstand.ingest.conform import conform
from leitstand.ingest.validate import AssetCatalog, IngestPolicy, first_failures, run_checks

NOW = datetime(2026, 11, 20, 6, tzinfo=UTC)
CATALOG = AssetCatalog(
    asset_ids=frozenset({"m1", "m2"}), signals=frozenset({("m1", "temperature"), ("m2", "speed")})
)
GOOD = {
    RecordKind.SAMPLES: {"asset_id": "m1", "signal": "temperature", "ts": NOW, "value": 1.0},
    RecordKind.STATES: {"asset_id": "m1", "ts": NOW, "state": "RUNNING"},
    RecordKind.COUNTS: {"asset_id": "m1", "ts": NOW, "produced": 10, "scrap": 1},
}


def table(kind: RecordKind, rows: list[dict[str, object]]) -> pa.Table:
    """Rows as a table of the kind's schema, with nulls where a row leaves a field out."""
    spec = SPECS[kind]
    return conform(pa.Table.from_pylist(rows, schema=spec.schema), spec)


def failures(kind: RecordKind, rows: list[dict[str, object]]) -> list[str | None]:
    """The code of the first failing check of each row (None: the row is valid)."""
    checks = run_checks(kind, table(kind, rows), "acme", CATALOG, IngestPolicy(), NOW)
    which, _ = first_failures(checks, len(rows))
    return [checks[i].code if i >= 0 else None for i in which]


@pytest.mark.parametrize(
    ("kind", "change", "code"),
    [
        *[(kind, {name: None}, "missing_field") for kind in RecordKind for name in SPECS[kind].required],
        (RecordKind.SAMPLES, {"tenant": "rival"}, "tenant_mismatch"),
        (RecordKind.STATES, {"asset_id": "m9"}, "unknown_asset"),
        (RecordKind.SAMPLES, {"signal": "pressure"}, "unknown_signal"),
        (RecordKind.SAMPLES, {"asset_id": "m2"}, "unknown_signal"),  # declared, but on another asset
        (RecordKind.SAMPLES, {"value": float("nan")}, "non_finite_value"),
        (RecordKind.SAMPLES, {"value": float("-inf")}, "non_finite_value"),
        (RecordKind.SAMPLES, {"quality": "SUPERB"}, "invalid_quality"),
        (RecordKind.STATES, {"state": ""}, "invalid_state"),
        (RecordKind.STATES, {"state": "X" * 65}, "invalid_state"),
        (RecordKind.COUNTS, {"produced": -1, "scrap": 0}, "invalid_count"),
        (RecordKind.COUNTS, {"scrap": -1}, "invalid_count"),
        (RecordKind.COUNTS, {"produced": 3, "scrap": 4}, "invalid_count"),
        (RecordKind.COUNTS, {"rework": -1}, "invalid_count"),
        (RecordKind.COUNTS, {"produced": 5, "scrap": 3, "rework": 3}, "invalid_count"),
        (RecordKind.COUNTS, {"scrap": 2**62, "rework": 2**62}, "invalid_count"),  # no overflow
        (RecordKind.STATES, {"ts": NOW - timedelta(days=8)}, "too_old"),
        (RecordKind.COUNTS, {"ts": NOW + timedelta(hours=1)}, "in_future"),
    ],
)
def test_each_check_fails_only_the_record_that_breaks_it(
    kind: RecordKind, change: dict[str, object], code: str
) -> None:
    assert failures(kind, [GOOD[kind], {**GOOD[kind], **change}, GOOD[kind]]) == [None, code, None]


def test_every_required_field_of_every_kind_is_checked_for_null() -> None:
    for kind, spec in SPECS.items():
        rows = [{**GOOD[kind], name: None} for name in spec.required]
        assert failures(kind, rows) == ["missing_field"] * len(rows), kind


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"asset_id": "m9", "value": float("nan")}, "unknown_asset"),
        ({"value": None, "tenant": "rival"}, "missing_field"),
        ({"tenant": "rival", "asset_id": "m9"}, "tenant_mismatch"),
        ({"quality": "SUPERB", "ts": NOW - timedelta(days=8)}, "invalid_quality"),
        ({"signal": "pressure", "ts": NOW + timedelta(hours=1)}, "unknown_signal"),
    ],
)
def test_the_first_failing_check_wins(change: dict[str, object], code: str) -> None:
    assert failures(RecordKind.SAMPLES, [{**GOOD[RecordKind.SAMPLES], **change}]) == [code]


def test_a_missing_field_is_named_in_the_message() -> None:
    rows = [{**GOOD[RecordKind.STATES], "state": None}]
    checks = run_checks(
        RecordKind.STATES, table(RecordKind.STATES, rows), "acme", CATALOG, IngestPolicy(), NOW
    )
    assert [(c.code, c.message) for c in checks] == [("missing_field", "field 'state' is required")]


@pytest.mark.parametrize("kind", list(RecordKind))
def test_a_valid_batch_yields_no_checks(kind: RecordKind) -> None:
    rows = [{**GOOD[kind], "ts": NOW - timedelta(seconds=i)} for i in range(1000)]
    assert run_checks(kind, table(kind, rows), "acme", CATALOG, IngestPolicy(), NOW) == []


@pytest.mark.parametrize("unknown_pairs", [1, 8, 9, 200])
def test_unknown_signals_are_found_however_many_distinct_pairs_there_are(unknown_pairs: int) -> None:
    good = GOOD[RecordKind.SAMPLES]
    rows = [
        {**good, "signal": f"s{i % unknown_pairs}"}
        if i % 3 == 0
        else {**good, "asset_id": "m2", "signal": "speed"}
        for i in range(3000)
    ]
    rows.append({**good, "signal": None})
    expected = ["unknown_signal" if i % 3 == 0 else None for i in range(3000)] + ["missing_field"]
    assert failures(RecordKind.SAMPLES, rows) == expected


def test_first_failures_marks_bad_rows_with_their_first_check() -> None:
    rows = [GOOD[RecordKind.COUNTS], {**GOOD[RecordKind.COUNTS], "produced": None, "scrap": 5}]
    checks = run_checks(
        RecordKind.COUNTS, table(RecordKind.COUNTS, rows), "acme", CATALOG, IngestPolicy(), NOW
    )
    which, bad = first_failures(checks, 2)
    assert bad.tolist() == [False, True]
    assert checks[which[1]].code == "missing_field"
    assert np.array_equal(which, [-1, 0])
