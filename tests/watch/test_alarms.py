"""The ISA-18.2 alarm lifecycle, operator actions with their journal, and what is kept from operators."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from leitstand.domain.alarms import AlarmState, Priority, Suppression
from leitstand.domain.errors import Conflict, InputError
from leitstand.store.sql.alarms import SqlAlarmStore
from leitstand.watch.alarms import AlarmBook, AlarmPolicy
from leitstand.watch.model import Detection

from .conftest import at, plant

PRIORITIES = {"hot": Priority.HIGH, "vib": Priority.MEDIUM, "urgent": Priority.URGENT}


class Clock:
    def __init__(self) -> None:
        self.now = at(0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def book(store: SqlAlarmStore, clock: Clock, **policy: object) -> AlarmBook:
    return AlarmBook("acme", store, plant(6), PRIORITIES, AlarmPolicy(**policy), clock)  # type: ignore[arg-type]


def on(rule: str, asset: str, minute: float) -> Detection:
    return Detection(rule, asset, at(minute), True, 90.0, f"{rule} on {asset}", {"z": 5.0})


def off(rule: str, asset: str, minute: float) -> Detection:
    return Detection(rule, asset, at(minute), False)


def test_the_isa_18_2_states(store: SqlAlarmStore, clock: Clock) -> None:
    b = book(store, clock)
    [notice] = b.apply([on("hot", "m0", 1)])
    assert notice.action == "activated"
    assert notice.state == AlarmState.UNACKNOWLEDGED
    assert notice.priority == Priority.HIGH
    assert notice.asset_path == "acme/p1/l1/m0"
    alarm_id = notice.alarm_id
    assert b.alarm(alarm_id).area == "p1"  # the operator of the site
    alarm, _ = b.acknowledge(alarm_id, "olga", "looking")
    assert alarm.state == AlarmState.ACKNOWLEDGED
    b.apply([off("hot", "m0", 5)])
    assert b.alarm(alarm_id).state == AlarmState.NORMAL  # acknowledged, then cleared
    b.apply([on("hot", "m0", 9), off("hot", "m0", 12)])
    assert b.alarm(alarm_id).state == AlarmState.RETURNED_UNACKNOWLEDGED  # cleared before anyone looked
    b.acknowledge(alarm_id, "olga")
    assert b.alarm(alarm_id).state == AlarmState.NORMAL
    with pytest.raises(Conflict, match="nothing to acknowledge"):
        b.acknowledge(alarm_id, "olga")
    actions = [(e.action, e.state) for e in b.journal(alarm_id)]
    assert actions == [
        ("activated", AlarmState.UNACKNOWLEDGED),
        ("acknowledged", AlarmState.ACKNOWLEDGED),
        ("cleared", AlarmState.NORMAL),
        ("activated", AlarmState.UNACKNOWLEDGED),
        ("cleared", AlarmState.RETURNED_UNACKNOWLEDGED),
        ("acknowledged", AlarmState.NORMAL),
    ]
    assert b.journal(alarm_id)[1].by == "olga"
    assert b.journal(alarm_id)[1].comment == "looking"


def test_the_same_detections_again_change_nothing(store: SqlAlarmStore, clock: Clock) -> None:
    b = book(store, clock)
    detections = [on("hot", "m0", 1), off("hot", "m0", 3)]
    assert len(b.apply(detections)) == 2
    assert b.apply(detections) == []
    again = book(store, clock)  # after a restart, from what was stored
    assert again.apply(detections) == []
    [alarm] = again.alarms()
    assert alarm.activations == 1
    assert len(again.journal(alarm.id)) == 2


def test_shelving_expires_and_an_active_alarm_returns_unacknowledged(
    store: SqlAlarmStore, clock: Clock
) -> None:
    b = book(store, clock)
    alarm_id = b.apply([on("hot", "m0", 1)])[0].alarm_id
    with pytest.raises(InputError, match="in the future"):
        b.shelve(alarm_id, "olga", clock.now - timedelta(minutes=1))
    with pytest.raises(InputError, match="at most 168 h ahead"):
        b.shelve(alarm_id, "olga", clock.now + timedelta(days=8))
    b.shelve(alarm_id, "olga", clock.now + timedelta(hours=1), "sensor being replaced")
    assert b.apply([off("hot", "m0", 10), on("hot", "m0", 20)]) == []  # recorded, not annunciated
    assert b.alarm(alarm_id).state == AlarmState.SHELVED
    assert b.alarm(alarm_id).suppressed == Suppression.SHELVED
    clock.now += timedelta(minutes=59)
    assert b.expire_shelves() == []
    clock.now += timedelta(minutes=2)
    [notice] = b.expire_shelves()
    assert notice.action == "unshelved"
    assert notice.state == AlarmState.UNACKNOWLEDGED


def test_out_of_service_needs_a_reason_and_silences_until_returned(
    store: SqlAlarmStore, clock: Clock
) -> None:
    b = book(store, clock)
    alarm_id = b.apply([on("hot", "m0", 1), off("hot", "m0", 2)])[-1].alarm_id
    with pytest.raises(InputError, match="needs a comment"):
        b.remove_from_service(alarm_id, "max")
    b.remove_from_service(alarm_id, "max", "thermocouple replaced on Tuesday")
    assert b.apply([on("hot", "m0", 5)]) == []
    with pytest.raises(Conflict, match="return it to service first"):
        b.shelve(alarm_id, "olga", clock.now + timedelta(hours=1))
    alarm, notice = b.return_to_service(alarm_id, "max")
    assert alarm.state == AlarmState.UNACKNOWLEDGED
    assert notice.action == "in_service"
    b.comment(alarm_id, "olga", "seen it")
    assert b.journal(alarm_id)[-1].comment == "seen it"


def test_a_chattering_alarm_is_annunciated_once(store: SqlAlarmStore, clock: Clock) -> None:
    b = book(store, clock, chatter_count=3, chatter_window_s=60)
    detections = []
    for i in range(6):  # on and off every 10 s
        detections += [on("hot", "m0", i / 3), off("hot", "m0", i / 3 + 1 / 12)]
    notices = b.apply(detections)
    activated = [n for n in notices if n.action == "activated"]
    assert len(activated) == 2  # the third within a minute on is chattering
    [alarm] = b.alarms()
    assert alarm.activations == 6
    assert alarm.suppressed == Suppression.CHATTERING


def test_consequential_alarms_are_grouped_under_the_first_out(store: SqlAlarmStore, clock: Clock) -> None:
    b = book(store, clock)
    [first] = b.apply([on("hot", "m0", 1), on("vib", "m0", 2)])  # both new, in one go
    grouped = next(a for a in b.alarms() if a.rule_id == "vib")
    assert first.alarm_id > 0
    assert grouped.group_id == first.alarm_id
    assert book(store, clock).alarm(grouped.id).group_id == first.alarm_id  # so it was stored
    assert grouped.suppressed == Suppression.CONSEQUENTIAL
    assert grouped.state == AlarmState.UNACKNOWLEDGED  # still visible in the console
    assert len(b.apply([on("vib", "m1", 2)])) == 1  # another machine is not a consequence


def test_a_flood_is_capped_per_operator_area_but_urgent_alarms_get_through(
    store: SqlAlarmStore, clock: Clock
) -> None:
    b = book(store, clock, flood_cap=3)
    notices = b.apply([on("hot", f"m{i}", 1 + i / 10) for i in range(6)])
    assert len(notices) == 3
    assert b.flood_suppressed == 3
    assert len(b.apply([on("urgent", "m5", 2)])) == 1
    assert len(b.apply([on("vib", "m5", 4)])) == 0  # consequential to the urgent one on m5
    assert len(b.apply([on("vib", "m4", 12)])) == 1  # ten minutes on, the window has room again
