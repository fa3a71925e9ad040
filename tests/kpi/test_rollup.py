"""The OEE roll-up equals a recomputation from raw records: after a build, after late, duplicate and
out-of-order records, after records before its coverage, and after a change of the asset model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.assets import parse_asset_model
from leitstand.domain.records import STATES, RecordKind
from leitstand.domain.time_model import OeeTimes
from leitstand.kpi.oee import OeeService
from leitstand.kpi.rollup import PieceRollup
from leitstand.kpi.shifts import machine_shifts
from leitstand.kpi.trend import trend
from leitstand.sim.enterprise import enterprise_model
from leitstand.sim.feed import Simulator
from leitstand.store.asset_cache import AssetCache
from leitstand.store.interfaces import PIECE_COLUMNS, WriteBatch
from tests.kpi.test_oee import counts_batch, states_batch, write_states

TENANT = "nordwerk"
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, dict, datetime, datetime]]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * HOUR
    start = end - timedelta(hours=40)
    rt = Runtime.build(load_settings(data_dir=tmp_path_factory.mktemp("rollup"), rollup_interval_s=3600))
    rt.rollup = None  # no background keeper: each test drives the roll-up itself
    rt.start()
    rt.identity.create_tenant(TENANT, "Nordwerk")
    doc = enterprise_model(plants=2, seed=5)
    rt.metadata.import_asset_model(TENANT, parse_asset_model(doc))
    Simulator(doc, seed=5).backfill(rt.pipeline, TENANT, start, end)
    yield rt, doc, start, end
    rt.stop()


def services(rt: Runtime) -> tuple[OeeService, OeeService, PieceRollup]:
    """An OEE service with the roll-up, and one that computes everything from raw records."""
    settings = rt.settings
    options = {
        "state_lookback": timedelta(seconds=settings.state_lookback_s),
        "minor_stop_threshold": timedelta(seconds=settings.minor_stop_threshold_s),
    }
    rolled = OeeService(rt.events, rt.asset_cache, **options)
    return rolled, OeeService(rt.events, rt.asset_cache, **options), PieceRollup(rolled)


def close(got: object, want: object) -> bool:
    """Equal, with floats equal up to summation order."""
    if isinstance(want, float) and isinstance(got, int | float):
        return got == pytest.approx(want, rel=1e-9, abs=1e-6)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(close(a, b) for a, b in zip(got, want, strict=True))
    return got == want


def stored_pieces(rt: Runtime, lo: datetime, hi: datetime) -> list[dict]:
    table = rt.events.query(
        f"SELECT {PIECE_COLUMNS} FROM oee_pieces WHERE tenant = $t AND piece_start >= $lo "
        "AND piece_start < $hi ORDER BY asset_id, piece_start",
        {"t": TENANT, "lo": lo, "hi": hi},
    )
    return table.to_pylist()


def assert_rollup_is_raw(rt: Runtime, raw: OeeService) -> tuple[datetime, datetime]:
    """Every stored piece equals the piece computed from raw records now; returns the coverage."""
    coverage = rt.events.rollup_coverage(TENANT)
    assert coverage is not None
    origin, watermark, _ = coverage
    assert watermark > origin
    expected = sorted(
        raw.raw_pieces(TENANT, origin, watermark).to_pylist(), key=lambda r: (r["asset_id"], r["piece_start"])
    )
    stored = stored_pieces(rt, origin, watermark)
    assert len(stored) == len(expected) > 0
    for got, want in zip(stored, expected, strict=True):
        assert close(got, want), (got, want)
    # the sums per machine and shift are the sums of those pieces
    sums = ", ".join(f"sum({c}) AS {c}" for c in PIECE_COLUMNS.split(", ")[4:])
    key = "asset_id, shift, shift_date"
    shifts = rt.events.query(
        f"SELECT {key}, min(piece_start) AS first_start, max(piece_start) AS last_start, {sums} "
        f"FROM expected GROUP BY {key} ORDER BY {key}",
        tables={"expected": raw.raw_pieces(TENANT, origin, watermark)},
    ).to_pylist()
    kept = rt.events.query(
        f"SELECT * EXCLUDE (tenant) FROM oee_shifts WHERE tenant = $t ORDER BY {key}", {"t": TENANT}
    ).to_pylist()
    assert len(kept) == len(shifts)
    for got, want in zip(kept, shifts, strict=True):
        assert close(got, want), (got, want)
    return origin, watermark


def assert_same_answers(rolled: OeeService, raw: OeeService, start: datetime, end: datetime) -> None:
    """OEE of windows with ragged edges, and hourly and per-shift trends, are the same both ways."""
    for lo, hi in [
        (start + timedelta(minutes=17), end - timedelta(minutes=43)),
        (start + 5 * HOUR, start + 29 * HOUR),
        (start + 6 * HOUR + timedelta(seconds=1), start + 7 * HOUR),
    ]:
        got, want = rolled.compute(TENANT, lo, hi).rows, raw.compute(TENANT, lo, hi).rows
        assert [r["id"] for r in got] == [r["id"] for r in want]
        for a, b in zip(got, want, strict=True):
            assert close(a["inputs"], b["inputs"]), (a["id"], a["inputs"], b["inputs"])
    site = next(a.id for a in raw.assets(TENANT) if a.level.value == "site")
    for bucket in ("hour", "shift"):
        got_trend = trend(rolled, TENANT, start + 3 * HOUR, start + 27 * HOUR, bucket, within=site)
        want_trend = trend(raw, TENANT, start + 3 * HOUR, start + 27 * HOUR, bucket, within=site)
        assert got_trend.labels == want_trend.labels
        assert close(got_trend.series, want_trend.series)


def test_the_rollup_answers_what_raw_records_answer(plant) -> None:
    rt, _doc, start, end = plant
    rolled, raw, rollup = services(rt)
    stats = rollup.catch_up(TENANT)
    assert stats.rebuilt
    assert stats.extended_hours >= 40
    origin, watermark = assert_rollup_is_raw(rt, raw)
    assert origin <= start
    assert watermark >= end
    with rolled.pieces(TENANT, start + timedelta(minutes=17), end) as (_, raw_part, covered):
        assert covered == (start + HOUR, end)  # the ragged first hour comes from raw records
        assert raw_part.num_rows > 0
    assert_same_answers(rolled, raw, start, end)


def states(rows: list[tuple[str, datetime, str]]) -> WriteBatch:
    return states_batch(rows, tenant=TENANT)


def counts(rows: list[tuple[str, datetime, int, int]]) -> WriteBatch:
    return counts_batch(rows, tenant=TENANT)


def test_late_duplicate_and_early_records_are_rolled_up_as_a_recomputation_would(plant) -> None:
    rt, _doc, start, end = plant
    rolled, raw, rollup = services(rt)
    rollup.catch_up(TENANT)
    machines = rt.machine_ids(TENANT)
    before = raw.compute(TENANT, start, end).rows
    middle = start + 20 * HOUR + timedelta(minutes=7, seconds=13)
    # late: a breakdown in the middle of the covered hours, written out of order (the end first),
    # a short delay (a minor stop that changes the span before it), and counts at an hour's edge
    rt.events.write([states([(machines[0], middle + timedelta(minutes=50), "EXECUTE")])])
    rt.events.write(
        [
            states(
                [
                    (machines[0], middle, "STOPPED"),
                    (machines[1], middle + timedelta(seconds=30), "HELD"),
                    (machines[1], middle + timedelta(minutes=2), "EXECUTE"),
                ]
            ),
            counts([(machines[2], start + 21 * HOUR, 40, 3), (machines[2], middle, 5, 0)]),
        ]
    )
    # a delay just before an hour (kept by the roll-up), then a state just after the hour that makes
    # it a minor stop: the hour before changes although no record of the second write lies in it
    pieces = raw.raw_pieces(TENANT, start + 10 * HOUR, end - 4 * HOUR)
    full = pieces.filter(pc.equal(pieces["pot_s"], 3600.0)).select(["asset_id", "piece_start"])
    quiet = rt.events.query(  # two planned hours of a machine, with no record within minutes of the edge
        "SELECT a.asset_id, b.piece_start AS edge FROM planned_hours a JOIN planned_hours b "
        "ON a.asset_id = b.asset_id AND b.piece_start = a.piece_start + INTERVAL 1 HOUR "
        "WHERE NOT EXISTS (SELECT 1 FROM states s WHERE s.tenant = $t AND s.asset_id = a.asset_id "
        "AND s.ts BETWEEN b.piece_start - INTERVAL 3 MINUTE AND b.piece_start + INTERVAL 7 MINUTE) "
        "ORDER BY edge, asset_id LIMIT 1",
        {"t": TENANT},
        {"planned_hours": full},
    ).to_pylist()[0]
    machine, edge = quiet["asset_id"], quiet["edge"]
    rt.events.write([states([(machine, edge - timedelta(minutes=2), "HELD")])])
    rollup.refresh(TENANT)
    minor_before = raw.raw_pieces(TENANT, edge - HOUR, edge, [machine])["minor_stop_s"][0].as_py()
    rt.events.write([states([(machine, edge + timedelta(minutes=1), "EXECUTE")])])
    minor_after = raw.raw_pieces(TENANT, edge - HOUR, edge, [machine])["minor_stop_s"][0].as_py()
    assert minor_after == pytest.approx(minor_before + 120)
    # duplicates of records already stored change nothing, but are marked like any write
    existing = rt.events.query(
        "SELECT * FROM states WHERE tenant = $t AND asset_id = $a ORDER BY ts LIMIT 20",
        {"t": TENANT, "a": machines[3]},
    )
    assert rt.events.write([WriteBatch(RecordKind.STATES, existing.cast(STATES.schema))]) == [0]
    # early: records from before anything the roll-up covers
    early = start - timedelta(hours=5, minutes=30)
    rt.events.write(
        [
            states([(machines[4], early, "EXECUTE"), (machines[4], early + timedelta(minutes=3), "STARVED")]),
            counts([(machines[4], early + timedelta(minutes=2), 9, 1)]),
        ]
    )
    marks = rt.events.rollup_dirty(TENANT).num_rows
    assert marks >= 4

    stats = rollup.refresh(TENANT)
    assert stats.marks == marks
    assert stats.recomputed >= 1
    assert rt.events.rollup_dirty(TENANT).num_rows == 0
    origin, _ = assert_rollup_is_raw(rt, raw)
    assert origin == early.replace(minute=0)  # grew back to the early records
    after = raw.compute(TENANT, start, end).rows
    assert after != before  # the late records did change the answer the roll-up now gives
    assert_same_answers(rolled, raw, start - 6 * HOUR, end)


def test_a_changed_calendar_rebuilds_the_rollup(plant) -> None:
    rt, doc, start, end = plant
    rolled, raw, rollup = services(rt)
    rollup.catch_up(TENANT)
    old = rt.events.rollup_coverage(TENANT)
    assert old is not None
    changed = {**doc, "sites": [dict(site) for site in doc["sites"]]}
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    changed["sites"][0]["calendar"] = {
        "shifts": [{"name": "early", "start": "05:30", "end": "13:30", "days": weekdays}]
    }
    rt.metadata.import_asset_model(TENANT, parse_asset_model(changed))
    assert rollup.fingerprint(TENANT) != old[2]
    stats = rollup.catch_up(TENANT)
    assert stats.rebuilt
    assert_rollup_is_raw(rt, raw)
    assert_same_answers(rolled, raw, start, end)


def test_hours_that_still_depend_on_the_present_are_not_kept(plant) -> None:
    rt, _doc, _start, _end = plant
    _rolled, _raw, rollup = services(rt)
    rollup.catch_up(TENANT)
    coverage = rt.events.rollup_coverage(TENANT)
    assert coverage is not None
    now = datetime.now(UTC)
    # an open delay could still turn out to be a minor stop or not until the threshold has passed
    assert coverage[1] <= now - timedelta(seconds=rt.settings.minor_stop_threshold_s)
    assert coverage[1] >= (now - timedelta(seconds=rt.settings.minor_stop_threshold_s)).replace(
        minute=0, second=0, microsecond=0
    )


def test_shift_reports_are_the_same_from_the_rollup_and_from_raw_records(plant) -> None:
    rt, _doc, start, end = plant
    rolled, raw, rollup = services(rt)
    rollup.catch_up(TENANT)
    # a window with ragged edges, and one up to now (shifts cut by the roll-up's newest hour)
    for lo, hi in [(start + timedelta(hours=3, minutes=20), datetime.now(UTC))]:
        got = machine_shifts(rolled, TENANT, lo, hi, limit=10**6)[0].to_pylist()
        want = machine_shifts(raw, TENANT, lo, hi, limit=10**6)[0].to_pylist()
        assert len(got) == len(want) > 0
        assert len({(r["asset_id"], r["shift"], r["shift_date"]) for r in got}) == len(got)  # one row each
        for a, b in zip(got, want, strict=True):
            assert close(a, b), (a, b)
    lo, hi = start + timedelta(hours=3, minutes=20), end - timedelta(minutes=10)
    got = machine_shifts(rolled, TENANT, lo, hi, limit=10**6)[0].to_pylist()
    assert close(got, machine_shifts(raw, TENANT, lo, hi, limit=10**6)[0].to_pylist())
    # the whole window: the shifts add up to the window's OEE inputs, machine by machine
    machines = {r["id"]: r["inputs"] for r in raw.compute(TENANT, lo, hi, level="machine").rows}
    for machine, inputs in machines.items():
        mine = [r for r in got if r["asset_id"] == machine]
        assert sum(r["production_s"] for r in mine) == pytest.approx(inputs["production_s"])
        assert sum(r["good"] for r in mine) == inputs["good"]
    # and each row's ratios are OeeTimes' ratios
    for row in got[:200]:
        times = OeeTimes(**{f.name: row[f.name] for f in fields(OeeTimes) if f.name in row})
        assert close(
            [row["oee"], row["availability"], row["performance"], row["quality"]],
            [times.oee, times.availability, times.performance, times.quality],
        )


def test_the_shift_report_endpoint(client: TestClient, admin: dict) -> None:
    answer = client.get("/api/v1/kpi/shifts?hours=48&limit=5", headers=admin).json()
    assert answer["total"] > 5
    assert answer["truncated"] is True
    assert len(answer["rows"]) == 5
    row = answer["rows"][0]
    assert {"id", "name", "shift", "shift_date", "first_start", "oee", "inputs"} <= row.keys()
    assert row["inputs"]["pbt_s"] == row["inputs"]["pot_s"] - row["inputs"]["planned_down_s"]
    starts = [r["first_start"] for r in answer["rows"]]
    assert starts == sorted(starts)  # oldest shifts first
    assert client.get("/api/v1/kpi/shifts?limit=0", headers=admin).status_code == 422


def small_model(shifts: list[dict]) -> dict:
    return {
        "enterprise": {"id": "acme", "name": "ACME"},
        "sites": [
            {
                "id": "s1",
                "timezone": "UTC",
                "calendar": {"shifts": shifts},
                "areas": [
                    {"id": "a1", "lines": [{"id": "l1", "machines": [{"id": "m1", "ideal_cycle_s": 1.0}]}]}
                ],
            }
        ],
    }


EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.mark.parametrize(
    ("shifts", "hours"),
    [
        # b begins during a's break: it holds the break, a keeps its time after the break
        (
            [
                {
                    "name": "a",
                    "start": "06:00",
                    "end": "14:00",
                    "days": EVERY_DAY,
                    "breaks": [{"start": "10:00", "minutes": 30}],
                },
                {"name": "b", "start": "10:00", "end": "18:00", "days": EVERY_DAY},
            ],
            {"a": 7.5, "b": 4.5},
        ),
        # a shift inside another that began first gets nothing
        (
            [
                {"name": "day", "start": "06:00", "end": "22:00", "days": EVERY_DAY},
                {"name": "mid", "start": "12:00", "end": "14:00", "days": EVERY_DAY},
            ],
            {"day": 16.0},
        ),
    ],
)
def test_overlapping_shifts_own_the_same_time_however_the_window_is_cut(
    kpi_stores, shifts: list[dict], hours: dict[str, float]
) -> None:
    day = datetime(2026, 11, 18, tzinfo=UTC)
    now = day + timedelta(days=2)
    events, rolled, metadata = kpi_stores(small_model(shifts), clock=lambda: now)
    raw = OeeService(events, AssetCache(metadata), clock=lambda: now)
    # the first record, and so the roll-up's origin, in the middle of the overlap
    write_states(events, [("m1", day + timedelta(hours=11, minutes=5), "RUNNING")])
    PieceRollup(rolled).catch_up("acme")
    for service in (rolled, raw):
        for lo in (day, day + timedelta(hours=11), day + timedelta(hours=13, minutes=20)):
            table, _ = machine_shifts(service, "acme", lo, day + timedelta(days=1), limit=100)
            planned = {
                r["shift"]: r["pot_s"] / 3600 for r in table.to_pylist() if r["shift_date"] == day.date()
            }
            whole = {name: h for name, h in hours.items()}
            if lo == day:
                assert planned == whole
            else:  # a later start cuts each shift's own time, never hands it to the other
                assert set(planned) <= set(whole)
                assert sum(planned.values()) == pytest.approx(
                    sum(whole.values()) - (lo - day - timedelta(hours=6)) / HOUR
                )


def test_a_query_reads_the_rollup_as_one_snapshot_whatever_lands_meanwhile(plant) -> None:
    rt, _doc, start, end = plant
    rolled, _raw, rollup = services(rt)
    rollup.catch_up(TENANT)
    count = f"SELECT count(*) AS n FROM oee_pieces WHERE tenant = '{TENANT}'"
    with rolled.pieces(TENANT, start, end) as (reader, _, covered):
        assert covered is not None
        before = reader.query(count)["n"][0].as_py()
        # a rebuild starts meanwhile (another model): it drops the tenant's pieces at once
        origin = covered[0]
        empty = pa.table({"piece_start": pa.array([], pa.timestamp("us", tz="UTC"))})
        rt.events.replace_pieces(TENANT, origin, origin, empty, (origin, origin, "another model"))
        assert rt.events.query(count)["n"][0].as_py() == 0
        assert reader.query(count)["n"][0].as_py() == before > 0  # the query still sees its snapshot
    stats = rollup.catch_up(TENANT)  # the fingerprint is not ours: built again
    assert stats.rebuilt


def test_moving_a_machine_to_another_line_keeps_the_rollup(kpi_stores) -> None:
    model = small_model([{"name": "a", "start": "06:00", "end": "14:00", "days": EVERY_DAY}])
    model["sites"][0]["areas"][0]["lines"].append(
        {"id": "l2", "machines": [{"id": "m2", "ideal_cycle_s": 2.0}]}
    )
    _events, oee, metadata = kpi_stores(model)
    rollup = PieceRollup(oee)
    before = rollup.fingerprint("acme")
    lines = model["sites"][0]["areas"][0]["lines"]
    lines[1]["machines"].append(lines[0]["machines"].pop())  # m1 joins m2 on l2
    metadata.import_asset_model("acme", parse_asset_model(model))
    assert rollup.fingerprint("acme") == before  # hierarchy is joined at query time
    lines[1]["machines"][0]["ideal_cycle_s"] = 2.5
    metadata.import_asset_model("acme", parse_asset_model(model))
    assert rollup.fingerprint("acme") != before  # ideal times are in the pieces
