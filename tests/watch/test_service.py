"""The watch service keeps the detectors and the alarm book in step: across restarts, rule changes and
failing batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leitstand.domain.alarms import AlarmState
from leitstand.domain.assets import Asset
from leitstand.domain.records import RecordKind
from leitstand.domain.time_model import StateMapping
from leitstand.store.sql.alarms import SqlAlarmStore
from leitstand.watch.service import WatchService

from .conftest import plant, samples

HOT = {"id": "hot", "kind": "threshold", "targets": {"assets": ["m0"]}, "signal": "temperature", "above": 80}


class Models:
    def __init__(self) -> None:
        self.model = plant()

    def assets(self, tenant: str) -> list[Asset]:
        if tenant != "acme":
            raise LookupError(f"no model for {tenant}")
        return self.model

    def state_mapping(self, tenant: str) -> StateMapping:
        return StateMapping()


def run(service: WatchService, *tables: object) -> None:
    for table in tables:
        service.stored("acme", RecordKind.SAMPLES, table)  # type: ignore[arg-type]
    assert service.drain(10)


@pytest.fixture
def started(store: SqlAlarmStore) -> Iterator[list[WatchService]]:
    services: list[WatchService] = []
    yield services
    for s in services:
        s.stop()


def service(
    store: SqlAlarmStore, started: list[WatchService], rules: list[dict] | None = None
) -> WatchService:
    s = WatchService(store, Models(), {"acme": rules if rules is not None else [HOT]})
    s.start()
    started.append(s)
    return s


def test_after_a_restart_an_active_alarm_clears_when_the_condition_goes_and_does_not_sound_again(
    store: SqlAlarmStore, started: list[WatchService]
) -> None:
    first = service(store, started)
    run(first, samples("m0", "temperature", [90, 90]))
    [alarm] = first.book("acme").alarms()
    first.book("acme").acknowledge(alarm.id, "olga")
    first.stop()
    again = service(store, started)  # the detectors' memory is gone; the alarm book is not
    run(again, samples("m0", "temperature", [91, 92], start_min=2))
    assert again.book("acme").alarm(alarm.id).state == AlarmState.ACKNOWLEDGED  # not raised again
    run(again, samples("m0", "temperature", [70], start_min=4))
    cleared = again.book("acme").alarm(alarm.id)
    assert (cleared.state, cleared.active, cleared.activations) == (AlarmState.NORMAL, False, 1)


def test_the_alarms_of_a_removed_rule_end_with_the_reason(
    store: SqlAlarmStore, started: list[WatchService]
) -> None:
    s = service(store, started, rules=[])
    s.add_rule("acme", HOT, "engineer")
    run(s, samples("m0", "temperature", [90]))
    [alarm] = s.book("acme").alarms()
    s.delete_rule("acme", "hot")
    ended = s.book("acme").alarm(alarm.id)
    assert (ended.active, ended.state) == (False, AlarmState.RETURNED_UNACKNOWLEDGED)
    assert "the rule was removed" in (s.book("acme").journal(alarm.id)[-1].comment or "")


def test_a_batch_that_cannot_be_evaluated_does_not_take_others_with_it(
    store: SqlAlarmStore, started: list[WatchService]
) -> None:
    s = service(store, started)
    s.stored("ghost", RecordKind.SAMPLES, samples("m0", "temperature", [90]))  # no model: fails
    run(s, samples("m0", "temperature", [90]))
    assert [a.rule_id for a in s.book("acme").alarms()] == ["hot"]
