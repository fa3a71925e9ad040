"""OEE to the ISO 22400 time model: worked examples with known answers, roll-ups, window additivity."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leitstand.domain.records import COUNTS, STATES, RecordKind
from leitstand.kpi.oee import OeeService
from leitstand.store.duckdb import DuckDBEventStore
from leitstand.store.interfaces import WriteBatch

DAY = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday
SHIFT_START = DAY + timedelta(hours=6)
SHIFT_END = DAY + timedelta(hours=14)

# The classic textbook shift: 480 min with two 15-min breaks and a 30-min meal, 47 min down,
# ideal cycle 1.0 s, 19,271 parts of which 423 rejected → A 88.81 %, P 86.11 %, Q 97.80 %, OEE 74.79 %.
MODEL = {
    "enterprise": {"id": "acme", "name": "ACME"},
    "sites": [
        {
            "id": "s1",
            "timezone": "UTC",
            "calendar": {
                "shifts": [
                    {
                        "name": "day",
                        "start": "06:00",
                        "end": "14:00",
                        "days": ["wed"],
                        "breaks": [
                            {"start": "08:00", "minutes": 15},
                            {"start": "10:00", "minutes": 30},
                            {"start": "12:00", "minutes": 15},
                        ],
                    }
                ]
            },
            "areas": [
                {
                    "id": "a1",
                    "lines": [
                        {
                            "id": "l1",
                            "machines": [
                                {"id": "m1", "ideal_cycle_s": 1.0},
                                {"id": "m2", "ideal_cycle_s": 2.0},
                            ],
                        }
                    ],
                }
            ],
        }
    ],
}

# A second site without a calendar (planned around the clock) and a machine without any ideal cycle time.
MODEL["sites"].append(
    {
        "id": "s2",
        "timezone": "Asia/Shanghai",
        "areas": [{"id": "a2", "lines": [{"id": "l2", "machines": [{"id": "m9"}]}]}],
    }
)


@pytest.fixture
def stores(kpi_stores) -> tuple[DuckDBEventStore, OeeService]:
    events, oee, _ = kpi_stores(MODEL)
    return events, oee


def states_batch(
    rows: list[tuple[str, datetime, str]] | list[tuple[str, datetime, str, str | None]],
    tenant: str = "acme",
) -> WriteBatch:
    """State records (machine, ts, state[, reason])."""
    table = pa.table(
        {
            "tenant": [tenant] * len(rows),
            "asset_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], STATES.schema.field("ts").type),
            "state": [r[2] for r in rows],
            "reason": pa.array([r[3] if len(r) > 3 else None for r in rows], pa.string()),
        },
        schema=STATES.schema,
    )
    return WriteBatch(RecordKind.STATES, table)


def counts_batch(
    rows: list[tuple[str, datetime, int, int]],
    product: str | None = None,
    rework: list[int] | None = None,
    tenant: str = "acme",
) -> WriteBatch:
    """Count records (machine, ts, produced, scrap), of one product, with rework or none."""
    table = pa.table(
        {
            "tenant": [tenant] * len(rows),
            "asset_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], COUNTS.schema.field("ts").type),
            "product_id": pa.array([product] * len(rows), pa.string()),
            "produced": pa.array([r[2] for r in rows], pa.int64()),
            "scrap": pa.array([r[3] for r in rows], pa.int64()),
            "rework": pa.array(rework or [0] * len(rows), pa.int64()),
        },
        schema=COUNTS.schema,
    )
    return WriteBatch(RecordKind.COUNTS, table)


def write_states(
    events: DuckDBEventStore,
    rows: list[tuple[str, datetime, str]] | list[tuple[str, datetime, str, str | None]],
) -> None:
    events.write([states_batch(rows)])


def write_counts(
    events: DuckDBEventStore,
    rows: list[tuple[str, datetime, int, int]],
    product: str | None = None,
    rework: list[int] | None = None,
) -> None:
    events.write([counts_batch(rows, product, rework)])


def at(minutes: float) -> datetime:
    return SHIFT_START + timedelta(minutes=minutes)


def row(rows: list[dict], level: str, asset_id: str) -> dict:
    return next(r for r in rows if r["level"] == level and r["id"] == asset_id)


def classic_shift(events: DuckDBEventStore) -> None:
    write_states(
        events,
        [("m1", at(0), "RUNNING"), ("m1", at(30), "DOWN"), ("m1", at(77), "RUNNING"), ("m1", at(480), "OFF")],
    )
    write_counts(events, [("m1", at(479), 19_271, 423)])


def test_the_classic_480_minute_shift_gives_the_textbook_figures(stores) -> None:
    events, oee = stores
    classic_shift(events)
    m1 = row(oee.compute("acme", DAY, DAY + timedelta(days=1)).rows, "machine", "m1")
    assert m1["inputs"]["pot_s"] == 420 * 60
    assert m1["inputs"]["pbt_s"] == 420 * 60
    assert m1["inputs"]["production_s"] == 373 * 60
    assert m1["inputs"]["down_s"] == 47 * 60
    assert m1["availability"] == pytest.approx(373 / 420)
    assert m1["performance"] == pytest.approx(19_271 / (373 * 60))
    assert m1["quality"] == pytest.approx(18_848 / 19_271)
    assert m1["oee"] == pytest.approx(0.7479, abs=5e-5)
    assert m1["oee"] == pytest.approx(m1["availability"] * m1["performance"] * m1["quality"])


def test_time_outside_the_shift_and_in_breaks_is_not_planned(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", DAY, "RUNNING")])  # running all day long
    m1 = row(oee.compute("acme", DAY, DAY + timedelta(days=1)).rows, "machine", "m1")
    assert m1["inputs"]["production_s"] == 420 * 60
    assert m1["availability"] == 1.0


def test_planned_maintenance_leaves_planned_busy_time(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", at(0), "PLANNED_MAINTENANCE"), ("m1", at(60), "RUNNING")])
    m1 = row(oee.compute("acme", DAY, DAY + timedelta(days=1)).rows, "machine", "m1")
    assert m1["inputs"]["planned_down_s"] == 60 * 60
    assert m1["inputs"]["pbt_s"] == 360 * 60
    assert m1["availability"] == 1.0


def test_time_without_a_known_state_and_unmapped_states_are_shown_as_unknown(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", at(60), "RUNNING"), ("m1", at(120), "WEIRD_PLC_CODE_7")])
    m1 = row(oee.compute("acme", at(0), at(180)).rows, "machine", "m1")
    # 60 min before the first state, and 45 min in the unmapped state (the break at 08:00 is not planned)
    assert m1["inputs"]["unknown_s"] == 105 * 60
    assert m1["inputs"]["unmapped_state_s"] == 45 * 60
    assert m1["availability"] == pytest.approx(60 / 165)


def test_the_state_before_the_window_carries_into_it(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", at(0), "DOWN")])
    m1 = row(oee.compute("acme", at(60), at(90)).rows, "machine", "m1")
    assert m1["inputs"]["down_s"] == 30 * 60


def test_a_product_without_its_own_cycle_time_uses_the_machines_default(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", at(0), "RUNNING")])
    write_counts(events, [("m1", at(10), 100, 0)], product="unknown-product")
    m1 = row(oee.compute("acme", at(0), at(60)).rows, "machine", "m1")
    assert m1["inputs"]["ideal_s"] == 100.0  # machine default of 1.0 s applies
    assert m1["inputs"]["units_without_ideal_cycle"] == 0


def test_units_without_any_ideal_cycle_time_are_counted_visibly_and_earn_no_ideal_time(stores) -> None:
    events, oee = stores
    write_states(events, [("m9", at(0), "RUNNING")])
    write_counts(events, [("m9", at(10), 70, 5)])
    m9 = row(oee.compute("acme", at(0), at(60)).rows, "machine", "m9")
    assert m9["inputs"]["units_without_ideal_cycle"] == 70
    assert (m9["inputs"]["produced"], m9["inputs"]["ideal_s"], m9["performance"]) == (70, 0, 0)


def test_rework_is_neither_good_nor_scrap_and_costs_quality(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", at(0), "RUNNING")])
    write_counts(events, [("m1", at(10), 100, 5), ("m1", at(20), 100, 5)], rework=[10, 0])
    m1 = row(oee.compute("acme", at(0), at(60)).rows, "machine", "m1")
    inputs, kpis = m1["inputs"], m1["kpis"]
    assert (inputs["produced"], inputs["good"], inputs["scrap"], inputs["rework"]) == (200, 180, 10, 10)
    assert kpis["quality_ratio"] == kpis["first_pass_yield"] == pytest.approx(0.9)
    assert kpis["scrap_ratio"] == pytest.approx(0.05)
    assert kpis["rework_ratio"] == pytest.approx(0.05)
    assert m1["quality"] == pytest.approx(0.9)  # ideal-time weighted, one cycle time: GQ / PQ
    assert m1["losses"]["quality_loss_s"] == pytest.approx(20.0)  # 10 scrapped + 10 reworked units × 1 s


def test_a_window_reaching_into_the_future_ends_now(kpi_stores) -> None:
    now = at(60)
    events, oee, _ = kpi_stores(MODEL, clock=lambda: now)
    write_states(events, [("m1", at(0), "RUNNING")])
    answer = oee.compute("acme", at(0), at(480))
    m1 = row(answer.rows, "machine", "m1")
    assert answer.end == now
    assert m1["inputs"]["pot_s"] == m1["inputs"]["production_s"] == 60 * 60


def test_overlapping_shifts_count_planned_time_and_units_once(kpi_stores) -> None:
    model = {
        **MODEL,
        "sites": [
            {
                **MODEL["sites"][0],
                "calendar": {
                    "shifts": [
                        {"start": "06:00", "end": "14:00", "days": ["wed"]},
                        {"start": "13:00", "end": "22:00", "days": ["wed"]},
                    ]
                },
            }
        ],
    }
    events, oee, _ = kpi_stores(model)
    write_states(events, [("m1", at(0), "RUNNING")])
    write_counts(events, [("m1", at(7.5 * 60), 100, 0)])  # 13:30, inside both shifts
    m1 = row(oee.compute("acme", DAY, DAY + timedelta(days=1)).rows, "machine", "m1")
    assert m1["inputs"]["pot_s"] == m1["inputs"]["production_s"] == 16 * 3600
    assert m1["inputs"]["produced"] == 100


def test_a_window_with_no_planned_time_has_no_ratios(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", DAY, "RUNNING")])
    m1 = row(oee.compute("acme", DAY, DAY + timedelta(hours=5)).rows, "machine", "m1")
    assert (m1["inputs"]["pbt_s"], m1["oee"], m1["availability"]) == (0, None, None)


def test_the_line_rolls_up_times_and_quantities_and_never_averages_ratios(stores) -> None:
    events, oee = stores
    classic_shift(events)
    # m2 is in planned maintenance for the first 4 hours, so its planned busy time is much shorter
    write_states(
        events, [("m2", at(0), "PLANNED_MAINTENANCE"), ("m2", at(240), "RUNNING"), ("m2", at(300), "DOWN")]
    )
    write_counts(events, [("m2", at(290), 1_500, 0)])
    rows = oee.compute("acme", DAY, DAY + timedelta(days=1)).rows
    m1, m2, line = row(rows, "machine", "m1"), row(rows, "machine", "m2"), row(rows, "line", "l1")
    pbt = m1["inputs"]["pbt_s"] + m2["inputs"]["pbt_s"]
    assert m2["inputs"]["pbt_s"] < m1["inputs"]["pbt_s"]
    assert line["oee"] == pytest.approx((m1["inputs"]["good_ideal_s"] + m2["inputs"]["good_ideal_s"]) / pbt)
    assert line["availability"] == pytest.approx(
        (m1["inputs"]["production_s"] + m2["inputs"]["production_s"]) / pbt
    )
    assert abs(line["oee"] - (m1["oee"] + m2["oee"]) / 2) > 0.05  # the mean of ratios would be wrong
    assert row(rows, "area", "a1")["oee"] == row(rows, "site", "s1")["oee"] == line["oee"]
    assert line["machines"] == 2
    m9 = row(rows, "machine", "m9")  # another site, planned all day, never ran
    enterprise = row(rows, "enterprise", "acme")
    assert enterprise["inputs"]["pbt_s"] == pbt + m9["inputs"]["pbt_s"]
    assert enterprise["oee"] == pytest.approx(line["inputs"]["good_ideal_s"] / enterprise["inputs"]["pbt_s"])


state_names = st.sampled_from(["RUNNING", "DOWN", "IDLE", "SETUP", "MICROSTOP", "PLANNED_MAINTENANCE", "XYZ"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.lists(
        st.tuples(st.integers(0, 599), state_names), min_size=1, max_size=30, unique_by=lambda c: c[0]
    ),
    counts=st.lists(
        st.tuples(st.integers(1, 600), st.integers(0, 50)), max_size=20, unique_by=lambda c: c[0]
    ),
    split=st.integers(1, 599),
)
def test_a_window_split_in_two_adds_up_to_the_whole(stores, changes, counts, split) -> None:
    events, oee = stores
    events.query("SELECT 1")
    events._con.execute("DELETE FROM states; DELETE FROM counts")
    write_states(events, [("m1", at(m), s) for m, s in changes])
    if counts:
        write_counts(events, [("m1", at(m), n, n // 10) for m, n in counts])
    whole = row(oee.compute("acme", at(0), at(600)).rows, "machine", "m1")["inputs"]
    first = row(oee.compute("acme", at(0), at(split)).rows, "machine", "m1")["inputs"]
    second = row(oee.compute("acme", at(split), at(600)).rows, "machine", "m1")["inputs"]
    for key, value in whole.items():
        assert first[key] + second[key] == pytest.approx(value, abs=1e-6), key
    times = ("production_s", "setup_s", "delay_s", "down_s", "planned_down_s", "unknown_s")
    assert sum(whole[k] for k in times) == pytest.approx(whole["pot_s"])
    losses = row(oee.compute("acme", at(0), at(600)).rows, "machine", "m1")["losses"]
    assert losses["planned_busy_s"] - sum(
        losses[k] for k in ("breakdowns_s", "setup_s", "minor_stops_s", "other_delays_s", "unknown_s")
    ) == pytest.approx(losses["production_s"], abs=1e-6)
    assert losses["production_s"] - losses["speed_loss_s"] - losses["quality_loss_s"] == pytest.approx(
        losses["fully_productive_s"], abs=1e-6
    )


def test_the_classic_shift_gives_the_full_iso_22400_set(stores) -> None:
    events, oee = stores
    classic_shift(events)
    m1 = row(oee.compute("acme", DAY, DAY + timedelta(days=1)).rows, "machine", "m1")
    kpis, losses = m1["kpis"], m1["losses"]
    assert m1["inputs"]["failures"] == 1
    assert kpis["mtbf_s"] == 373 * 60
    assert kpis["mttr_s"] == 47 * 60
    assert kpis["quality_ratio"] == pytest.approx(18_848 / 19_271)
    assert kpis["nee"] == kpis["oee"]  # no setup in this shift
    assert kpis["teep"] == pytest.approx(18_848 / 86_400)
    assert kpis["utilization"] == pytest.approx(420 / 1440)
    assert kpis["throughput_per_h"] == pytest.approx(19_271 / (373 / 60))
    assert kpis["technical_efficiency"] == pytest.approx(373 / 420)
    assert losses["breakdowns_s"] == 47 * 60
    assert losses["speed_loss_s"] == pytest.approx(373 * 60 - 19_271)
    assert losses["quality_loss_s"] == pytest.approx(423)
    assert losses["fully_productive_s"] == pytest.approx(18_848)


def test_short_delays_are_minor_stops_and_long_ones_other_delays(stores) -> None:
    events, oee = stores
    write_states(
        events,
        [
            ("m1", at(0), "RUNNING"),
            ("m1", at(10), "IDLE"),
            ("m1", at(12), "RUNNING"),
            ("m1", at(20), "STARVED"),
            ("m1", at(35), "RUNNING"),
            ("m1", at(60), "OFF"),
        ],
    )
    m1 = row(oee.compute("acme", at(0), at(60)).rows, "machine", "m1")
    assert m1["inputs"]["delay_s"] == 17 * 60
    assert m1["losses"]["minor_stops_s"] == 2 * 60
    assert m1["losses"]["other_delays_s"] == 15 * 60
    assert m1["inputs"]["failures"] == 0


def test_one_breakdown_through_a_switch_off_is_one_failure(stores) -> None:
    events, oee = stores
    write_states(
        events,
        [
            ("m1", at(0), "RUNNING"),
            ("m1", at(30), "DOWN"),
            ("m1", at(40), "OFF"),
            ("m1", at(50), "DOWN"),
            ("m1", at(60), "RUNNING"),
            ("m1", at(90), "DOWN"),
            ("m1", at(95), "RUNNING"),
        ],
    )
    m1 = row(oee.compute("acme", at(0), at(120)).rows, "machine", "m1")
    assert m1["inputs"]["failures"] == 2
    assert m1["kpis"]["mttr_s"] == pytest.approx((30 + 5) * 60 / 2)
    later = row(oee.compute("acme", at(35), at(120)).rows, "machine", "m1")
    assert later["inputs"]["failures"] == 1  # the breakdown that began before the window is not counted


def test_the_downtime_pareto_ranks_lost_planned_time_by_state_and_reason(stores) -> None:
    events, oee = stores
    rows = [
        ("m1", at(0), "RUNNING", None),
        ("m1", at(30), "DOWN", "TOOL_BREAK"),
        ("m1", at(77), "RUNNING", None),
        ("m1", at(100), "DOWN", "TOOL_BREAK"),
        ("m1", at(110), "RUNNING", None),
        ("m2", at(0), "SETUP", "CHANGEOVER"),
        ("m2", at(20), "RUNNING", None),
        ("m2", at(50), "IDLE", "NO_MATERIAL"),
        ("m2", at(53), "RUNNING", None),
    ]
    write_states(events, rows)
    pareto = oee.downtime("acme", at(0), at(120)).rows
    assert [(r["state"], r["reason"], r["duration_s"], r["stops"], r["machines"]) for r in pareto] == [
        ("DOWN", "TOOL_BREAK", 57 * 60, 2, 1),
        ("SETUP", "CHANGEOVER", 20 * 60, 1, 1),
        ("IDLE", "NO_MATERIAL", 3 * 60, 1, 1),
    ]
    only_m2 = oee.downtime("acme", at(0), at(120), within="m2", top=1).rows
    assert [(r["state"], r["duration_s"]) for r in only_m2] == [("SETUP", 20 * 60)]


def test_a_window_given_in_another_offset_gives_the_same_answer_as_in_utc(stores) -> None:
    from datetime import timezone

    events, oee = stores
    # a count just before UTC midnight, on a site planned around the clock (s2)
    midnight = datetime(2026, 11, 19, tzinfo=UTC)
    write_states(events, [("m9", midnight - timedelta(hours=2), "RUNNING")])
    write_counts(events, [("m9", midnight - timedelta(minutes=30), 40, 0)])
    plus_two = timezone(timedelta(hours=2))
    utc = row(
        oee.compute("acme", midnight - timedelta(hours=1), midnight + timedelta(hours=1)).rows,
        "machine",
        "m9",
    )
    local = row(
        oee.compute(
            "acme", datetime(2026, 11, 19, 1, tzinfo=plus_two), datetime(2026, 11, 19, 3, tzinfo=plus_two)
        ).rows,
        "machine",
        "m9",
    )
    assert local["inputs"] == utc["inputs"]
    assert local["inputs"]["produced"] == 40


def test_pareto_shares_are_of_all_lost_time_even_when_only_the_top_rows_are_returned(stores) -> None:
    events, oee = stores
    write_states(events, [("m1", at(0), "DOWN"), ("m1", at(30), "IDLE"), ("m1", at(40), "RUNNING")])
    rows = oee.downtime("acme", at(0), at(60), top=1).rows
    assert [r["state"] for r in rows] == ["DOWN"]
    assert rows[0]["total_lost_s"] == 40 * 60


def test_a_state_after_a_silence_longer_than_the_lookback_begins_a_new_episode(kpi_stores) -> None:
    """A state holds at most the lookback (7 days); after that the time is unknown, so the next down
    state is a new failure in every window — the long one and the days it splits into alike."""
    events, oee, _ = kpi_stores(MODEL, clock=lambda: DAY + timedelta(days=30))
    t0 = DAY + timedelta(hours=1)
    write_states(
        events,
        [
            ("m9", t0, "DOWN"),
            ("m9", t0 + timedelta(days=8), "DOWN"),
            ("m9", t0 + timedelta(days=9), "RUNNING"),
        ],
    )

    def failures(lo: datetime, hi: datetime) -> int:
        return row(oee.compute("acme", lo, hi).rows, "machine", "m9")["inputs"]["failures"]

    whole = failures(t0 - timedelta(hours=1), t0 + timedelta(days=10))
    days = [t0 - timedelta(hours=1) + timedelta(days=d) for d in range(11)]
    assert whole == 2
    assert sum(failures(a, b) for a, b in itertools.pairwise(days)) == whole
    m9 = row(oee.compute("acme", t0, t0 + timedelta(days=9)).rows, "machine", "m9")["inputs"]
    assert m9["down_s"] == 7 * 86400 + 86400  # 7 days held, then a day of the second stop
    assert m9["unknown_s"] == 86400  # the eighth day: nothing known


def test_the_longest_stops_rank_by_the_planned_time_they_took(stores) -> None:
    events, oee = stores
    rows = [
        ("m1", at(0), "RUNNING", None),
        ("m1", at(30), "DOWN", "TOOL_BREAK"),
        ("m1", at(77), "RUNNING", None),
        ("m1", at(110), "DOWN", "JAM"),  # into the 08:00 break: 20 min long, 10 of them planned
        ("m1", at(130), "RUNNING", None),
        ("m2", at(0), "SETUP", "CHANGEOVER"),
        ("m2", at(20), "RUNNING", None),
        ("m2", at(200), "IDLE", "NO_MATERIAL"),  # still going on
    ]
    write_states(events, rows)
    stops = oee.stops("acme", at(0), at(240)).rows
    assert [(r["asset_id"], r["reason"], r["lost_in_window_s"], r["ongoing"]) for r in stops] == [
        ("m1", "TOOL_BREAK", 47 * 60, False),
        ("m2", "NO_MATERIAL", 40 * 60, True),
        ("m2", "CHANGEOVER", 20 * 60, False),
        ("m1", "JAM", 10 * 60, False),
    ]
    jam = stops[3]
    assert (jam["started"], jam["ended"], jam["duration_s"]) == (at(110), at(130), 20 * 60)
    assert [r["reason"] for r in oee.stops("acme", at(0), at(240), within="m1", top=1).rows] == ["TOOL_BREAK"]
