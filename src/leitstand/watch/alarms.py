"""The alarm book of a tenant: detections become ISA-18.2 alarms, and operators act on them.

An alarm is one rule on one asset. Detections move it through the ISA-18.2 states (normal, unacknowledged,
acknowledged, returned unacknowledged); operators acknowledge, shelve until an expiry, take it out of
service and comment, and every change lands in the alarm's journal with who and why.

What reaches an operator is kept to what they can act on:
- a detection at or before the alarm's newest one is a replay and changes nothing;
- an alarm that activates `chatter_count` times within `chatter_window_s` is chattering: it stays visible
  but its further activations are not annunciated again until it has been quiet for the window;
- an alarm on an asset that already has an annunciated, active alarm from the last
  `consequential_window_s` is grouped under that first-out alarm and not annunciated on its own;
- at most `flood_cap` alarms are annunciated per operator area in any 10 minutes (urgent ones always
  are); the rest are recorded as suppressed by the flood;
- shelved and out-of-service alarms record their activations without annunciating them.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from leitstand.domain.alarms import Alarm, AlarmEntry, AlarmState, Priority, Suppression
from leitstand.domain.assets import Asset, AssetLevel
from leitstand.domain.errors import Conflict, InputError, NotFound
from leitstand.store.interfaces import AlarmStore
from leitstand.watch.model import AlarmNotice, Detection

FLOOD_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class AlarmPolicy:
    """How alarms are kept few and actionable (the defaults follow ISA-18.2's guidance)."""

    area_level: AssetLevel = AssetLevel.SITE  # one operator per site, area or line
    flood_cap: int = 10  # annunciated alarms per operator area in any 10 minutes
    chatter_count: int = 3
    chatter_window_s: float = 60.0
    consequential_window_s: float = 300.0
    max_shelve_s: float = 7 * 86400.0

    def __post_init__(self) -> None:
        if self.flood_cap < 1 or self.chatter_count < 2:
            raise InputError("flood_cap must be at least 1 and chatter_count at least 2")


_ACKNOWLEDGEABLE = {
    AlarmState.UNACKNOWLEDGED: AlarmState.ACKNOWLEDGED,
    AlarmState.RETURNED_UNACKNOWLEDGED: AlarmState.NORMAL,
}


class AlarmBook:
    """One tenant's alarms: applies detections and operator actions, journals them, returns notices."""

    def __init__(
        self,
        tenant: str,
        store: AlarmStore,
        assets: Sequence[Asset],
        priorities: Mapping[str, Priority],
        policy: AlarmPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tenant = tenant
        self.policy = policy or AlarmPolicy()
        self._store = store
        self._clock = clock
        self._lock = threading.RLock()
        self._priorities = dict(priorities)
        self._assets = {a.id: a for a in assets}
        self._alarms: dict[tuple[str, str], Alarm] = {
            (a.rule_id, a.asset_id): a for a in store.alarms(tenant)
        }
        self._by_id = {a.id: a for a in self._alarms.values()}
        self._by_asset: dict[str, list[Alarm]] = {}
        for alarm in self._alarms.values():
            self._by_asset.setdefault(alarm.asset_id, []).append(alarm)
        self._annunciated: dict[str, deque[datetime]] = defaultdict(deque)  # per area
        # per alarm (rule and asset: a new alarm has no id yet), for chattering
        self._activations: dict[tuple[str, str], deque[datetime]] = defaultdict(deque)
        self.flood_suppressed = 0
        self._unnamed_groups: list[tuple[Alarm, Alarm]] = []

    def set_rules(self, priorities: Mapping[str, Priority], assets: Sequence[Asset]) -> None:
        with self._lock:
            self._priorities = dict(priorities)
            self._assets = {a.id: a for a in assets}

    # reading ---------------------------------------------------------------------------------------------

    def alarms(self, states: Iterable[AlarmState] | None = None, area: str | None = None) -> list[Alarm]:
        """Alarms (copies), most urgent and newest first."""
        wanted = set(states) if states is not None else None
        with self._lock:
            found = [
                replace(a)
                for a in self._alarms.values()
                if (wanted is None or a.state in wanted) and (area is None or a.area == area)
            ]
        order = list(Priority)
        found.sort(key=lambda a: (order.index(a.priority), -(a.activated_at or _EPOCH).timestamp()))
        return found

    def alarm(self, alarm_id: int) -> Alarm:
        with self._lock:
            alarm = self._by_id.get(alarm_id)
            if alarm is None:
                raise NotFound(f"no alarm {alarm_id}")
            return replace(alarm)

    def journal(self, alarm_id: int, limit: int = 200) -> list[AlarmEntry]:
        self.alarm(alarm_id)
        return self._store.entries(self.tenant, alarm_id, limit)

    # detections ------------------------------------------------------------------------------------------

    def apply(self, detections: Sequence[Detection]) -> list[AlarmNotice]:
        """Apply detections in time order; persist what changed in one transaction; return the notices."""
        notices: list[AlarmNotice] = []
        changed: dict[tuple[str, str], tuple[Alarm, list[AlarmEntry]]] = {}
        now = self._clock()
        with self._lock:
            for d in sorted(detections, key=lambda d: d.at):
                alarm = self._alarm_for(d)
                if alarm.last_detection_at is not None and d.at <= alarm.last_detection_at:
                    continue  # seen already: a replay of the same data
                if not d.active and not alarm.active:
                    alarm.last_detection_at = d.at  # nothing to clear (an alarm ended by a removed rule)
                    continue
                entries = changed.setdefault((d.rule_id, d.asset_id), (alarm, []))[1]
                notice = self._activate(alarm, d, now) if d.active else self._clear(alarm, d)
                alarm.last_detection_at = d.at
                alarm.updated_at = now
                entries.append(
                    AlarmEntry(
                        alarm.id,
                        "activated" if d.active else "cleared",
                        d.at,
                        now,
                        state=alarm.state,
                        detail={
                            "value": d.value,
                            "message": d.message,
                            "explanation": d.explanation,
                            "suppressed": alarm.suppressed.value if d.active and alarm.suppressed else None,
                        },
                    )
                )
                if notice is not None:
                    notices.append(notice)
            self._save(list(changed.values()))
            named: list[tuple[Alarm, list[AlarmEntry]]] = []
            for alarm, first_out in self._unnamed_groups:
                alarm.group_id = first_out.id
                named.append((alarm, []))
            self._unnamed_groups.clear()
            self._save(named)
            # a new alarm's notice was made before it had its id
            return [replace(n, alarm_id=self._alarms[(n.rule_id, n.asset_id)].id) for n in notices]

    def _alarm_for(self, d: Detection) -> Alarm:
        alarm = self._alarms.get((d.rule_id, d.asset_id))
        if alarm is None:
            asset = self._assets.get(d.asset_id)
            alarm = Alarm(
                tenant=self.tenant,
                rule_id=d.rule_id,
                asset_id=d.asset_id,
                asset_path=asset.path if asset else d.asset_id,
                area=self._area(d.asset_id),
                priority=self._priorities.get(d.rule_id, Priority.MEDIUM),
            )
            self._alarms[(d.rule_id, d.asset_id)] = alarm
            self._by_asset.setdefault(d.asset_id, []).append(alarm)
        return alarm

    def _area(self, asset_id: str) -> str:
        """The operator area of an asset: its ancestor at the policy's level (or its site, or itself)."""
        asset = self._assets.get(asset_id)
        found = asset_id
        while asset is not None:
            if asset.level == self.policy.area_level:
                return asset.id
            if asset.level == AssetLevel.SITE:
                found = asset.id
            asset = self._assets.get(asset.parent_id) if asset.parent_id else None
        return found

    def _activate(self, alarm: Alarm, d: Detection, now: datetime) -> AlarmNotice | None:
        alarm.active = True
        alarm.activations += 1
        alarm.activated_at = d.at
        alarm.cleared_at = None
        alarm.message, alarm.value, alarm.explanation = d.message, d.value, d.explanation
        alarm.priority = self._priorities.get(alarm.rule_id, alarm.priority)
        alarm.group_id = None
        alarm.suppressed = self._suppression(alarm, d.at)
        if alarm.state in (AlarmState.NORMAL, AlarmState.RETURNED_UNACKNOWLEDGED, AlarmState.ACKNOWLEDGED):
            alarm.state = AlarmState.UNACKNOWLEDGED
        if alarm.suppressed is not None:
            if alarm.suppressed == Suppression.FLOOD:
                self.flood_suppressed += 1
            return None
        self._annunciated[alarm.area].append(d.at)
        return self._notice(alarm, "activated", d.at)

    def _suppression(self, alarm: Alarm, at: datetime) -> Suppression | None:
        if alarm.state == AlarmState.OUT_OF_SERVICE:
            return Suppression.OUT_OF_SERVICE
        if alarm.state == AlarmState.SHELVED:
            return Suppression.SHELVED
        recent = self._activations[(alarm.rule_id, alarm.asset_id)]
        recent.append(at)
        window = timedelta(seconds=self.policy.chatter_window_s)
        while recent and recent[0] <= at - window:
            recent.popleft()
        if len(recent) >= self.policy.chatter_count:
            return Suppression.CHATTERING
        first_out = self._first_out(alarm, at)
        if first_out is not None:
            alarm.group_id = first_out.id
            if not first_out.id:  # new in this batch: named once it is stored
                self._unnamed_groups.append((alarm, first_out))
            return Suppression.CONSEQUENTIAL
        annunciated = self._annunciated[alarm.area]
        while annunciated and annunciated[0] <= at - FLOOD_WINDOW:
            annunciated.popleft()
        if len(annunciated) >= self.policy.flood_cap and alarm.priority != Priority.URGENT:
            return Suppression.FLOOD
        return None

    def _first_out(self, alarm: Alarm, at: datetime) -> Alarm | None:
        """An annunciated active alarm on the same asset, activated within the consequential window."""
        window = timedelta(seconds=self.policy.consequential_window_s)
        candidates = [
            other
            for other in self._by_asset.get(alarm.asset_id, ())
            if other is not alarm
            and other.active
            and other.suppressed is None
            and other.activated_at is not None
            and at - window <= other.activated_at <= at
        ]
        return min(candidates, key=lambda a: a.activated_at or at, default=None)

    def _clear(self, alarm: Alarm, d: Detection) -> AlarmNotice | None:
        alarm.active = False
        alarm.cleared_at = d.at
        if alarm.state == AlarmState.UNACKNOWLEDGED:
            alarm.state = AlarmState.RETURNED_UNACKNOWLEDGED
        elif alarm.state == AlarmState.ACKNOWLEDGED:
            alarm.state = AlarmState.NORMAL
        if alarm.suppressed is not None or alarm.state in (AlarmState.SHELVED, AlarmState.OUT_OF_SERVICE):
            return None
        return self._notice(alarm, "cleared", d.at)

    def retire(self, rule_id: str, reason: str) -> list[AlarmNotice]:
        """Clear the active alarms of a rule that no longer runs (removed, or its machine left the model),
        so none stays active with nothing left to clear it."""
        now = self._clock()
        notices = []
        with self._lock:
            changes = []
            for alarm in [a for a in self._alarms.values() if a.rule_id == rule_id and a.active]:
                at = max(now, alarm.last_detection_at or now)
                notice = self._clear(alarm, Detection(rule_id, alarm.asset_id, at, False))
                alarm.last_detection_at, alarm.updated_at = at, now
                detail: dict[str, object] = {"reason": reason}
                changes.append(
                    (alarm, [AlarmEntry(alarm.id, "cleared", at, now, None, reason, alarm.state, detail)])
                )
                if notice is not None:
                    notices.append(notice)
            self._save(changes)
        return notices

    # operator actions ------------------------------------------------------------------------------------

    def acknowledge(self, alarm_id: int, by: str, comment: str | None = None) -> tuple[Alarm, AlarmNotice]:
        with self._lock:
            alarm = self._get(alarm_id)
            target = _ACKNOWLEDGEABLE.get(alarm.state)
            if target is None:
                raise Conflict(f"alarm {alarm_id} is {alarm.state.value}: there is nothing to acknowledge")
            alarm.state = target
            return self._act(alarm, "acknowledged", by, comment)

    def shelve(
        self, alarm_id: int, by: str, until: datetime, comment: str | None = None
    ) -> tuple[Alarm, AlarmNotice]:
        now = self._clock()
        if until.tzinfo is None:
            raise InputError("until needs a UTC offset")
        if not now < until <= now + timedelta(seconds=self.policy.max_shelve_s):
            raise InputError(
                f"until must lie in the future and at most {self.policy.max_shelve_s / 3600:g} h ahead"
            )
        with self._lock:
            alarm = self._get(alarm_id)
            if alarm.state == AlarmState.OUT_OF_SERVICE:
                raise Conflict(f"alarm {alarm_id} is out of service; return it to service first")
            alarm.state = AlarmState.SHELVED
            alarm.shelved_until = until
            return self._act(alarm, "shelved", by, comment, {"until": until.isoformat()})

    def unshelve(self, alarm_id: int, by: str, comment: str | None = None) -> tuple[Alarm, AlarmNotice]:
        with self._lock:
            alarm = self._get(alarm_id)
            if alarm.state != AlarmState.SHELVED:
                raise Conflict(f"alarm {alarm_id} is {alarm.state.value}, not shelved")
            return self._release(alarm, "unshelved", by, comment)

    def remove_from_service(
        self, alarm_id: int, by: str, comment: str | None = None
    ) -> tuple[Alarm, AlarmNotice]:
        if not comment:
            raise InputError("taking an alarm out of service needs a comment saying why")
        with self._lock:
            alarm = self._get(alarm_id)
            if alarm.state == AlarmState.OUT_OF_SERVICE:
                raise Conflict(f"alarm {alarm_id} is out of service already")
            alarm.state = AlarmState.OUT_OF_SERVICE
            alarm.shelved_until = None
            return self._act(alarm, "out_of_service", by, comment)

    def return_to_service(
        self, alarm_id: int, by: str, comment: str | None = None
    ) -> tuple[Alarm, AlarmNotice]:
        with self._lock:
            alarm = self._get(alarm_id)
            if alarm.state != AlarmState.OUT_OF_SERVICE:
                raise Conflict(f"alarm {alarm_id} is {alarm.state.value}, not out of service")
            return self._release(alarm, "in_service", by, comment)

    def comment(self, alarm_id: int, by: str, text: str) -> tuple[Alarm, AlarmNotice]:
        if not text.strip():
            raise InputError("a comment needs text")
        with self._lock:
            return self._act(self._get(alarm_id), "comment", by, text)

    def expire_shelves(self) -> list[AlarmNotice]:
        """Unshelve alarms whose shelving expired (ISA-18.2: shelving is always time-limited)."""
        now = self._clock()
        with self._lock:
            due = [
                a
                for a in self._alarms.values()
                if a.state == AlarmState.SHELVED and a.shelved_until is not None and a.shelved_until <= now
            ]
            return [self._release(a, "unshelved", None, "shelving expired")[1] for a in due]

    def _release(
        self, alarm: Alarm, action: str, by: str | None, comment: str | None
    ) -> tuple[Alarm, AlarmNotice]:
        """Back from shelved or out of service: an alarm whose condition is active is annunciated anew."""
        alarm.state = AlarmState.UNACKNOWLEDGED if alarm.active else AlarmState.NORMAL
        alarm.shelved_until = None
        alarm.suppressed = None
        return self._act(alarm, action, by, comment)

    def _act(
        self,
        alarm: Alarm,
        action: str,
        by: str | None,
        comment: str | None,
        detail: dict[str, object] | None = None,
    ) -> tuple[Alarm, AlarmNotice]:
        now = self._clock()
        alarm.updated_at = now
        entry = AlarmEntry(alarm.id, action, now, now, by, comment, alarm.state, dict(detail or {}))
        self._save([(alarm, [entry])])
        return replace(alarm), self._notice(alarm, action, now, by, comment)

    def _get(self, alarm_id: int) -> Alarm:
        alarm = self._by_id.get(alarm_id)
        if alarm is None:
            raise NotFound(f"no alarm {alarm_id}")
        return alarm

    def _save(self, changes: list[tuple[Alarm, list[AlarmEntry]]]) -> None:
        if not changes:
            return
        new = [a for a, _ in changes if not a.id]
        self._store.save_alarms(changes)
        for alarm in new:
            self._by_id[alarm.id] = alarm
        for alarm, entries in changes:  # entries were made before a new alarm had its id
            for i, e in enumerate(entries):
                if not e.alarm_id:
                    entries[i] = replace(e, alarm_id=alarm.id)

    def _notice(
        self, alarm: Alarm, action: str, at: datetime, by: str | None = None, comment: str | None = None
    ) -> AlarmNotice:
        return AlarmNotice(
            tenant=self.tenant,
            alarm_id=alarm.id,
            rule_id=alarm.rule_id,
            asset_id=alarm.asset_id,
            asset_path=alarm.asset_path,
            priority=alarm.priority,
            state=alarm.state,
            action=action,
            at=at,
            message=alarm.message,
            value=alarm.value,
            explanation=alarm.explanation,
            by=by,
            comment=comment,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
