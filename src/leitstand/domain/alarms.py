"""Alarms as ISA-18.2 describes them: states, priorities, suppression, and the journal of each alarm."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Priority(StrEnum):
    """Alarm priorities, highest first; ISA-18.2 suggests few of the highest (about 5 % urgent)."""

    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}  # 0 is the most urgent


class AlarmState(StrEnum):
    """The ISA-18.2 alarm states (the state diagram of ANSI/ISA-18.2-2016)."""

    NORMAL = "normal"  # NORM: condition clear, nothing to acknowledge
    UNACKNOWLEDGED = "unacknowledged"  # UNACK: active, not yet acknowledged
    ACKNOWLEDGED = "acknowledged"  # ACKED: active and acknowledged
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"  # RTNUN: cleared before anyone acknowledged it
    SHELVED = "shelved"  # SHLVD: an operator silenced it until an expiry
    OUT_OF_SERVICE = "out_of_service"  # OOSRV: taken out of service by maintenance


class Suppression(StrEnum):
    """Why an activation was recorded but not annunciated to the operator."""

    CHATTERING = "chattering"
    FLOOD = "flood"
    CONSEQUENTIAL = "consequential"
    SHELVED = "shelved"
    OUT_OF_SERVICE = "out_of_service"


@dataclass(slots=True)
class Alarm:
    """One alarm: a rule on one asset, with its current ISA-18.2 state. `id` is 0 until stored."""

    tenant: str
    rule_id: str
    asset_id: str
    asset_path: str
    area: str  # the operator's area of responsibility (by default the site)
    priority: Priority
    id: int = 0
    state: AlarmState = AlarmState.NORMAL
    active: bool = False  # the process condition, whatever the state shows
    message: str = ""
    value: float | None = None
    explanation: dict[str, Any] = field(default_factory=dict)
    activated_at: datetime | None = None
    cleared_at: datetime | None = None
    last_detection_at: datetime | None = None  # newest detection applied: older ones are replays
    activations: int = 0
    suppressed: Suppression | None = None  # why the latest activation was not annunciated
    group_id: int | None = None  # the first-out alarm this one is a consequence of
    shelved_until: datetime | None = None
    updated_at: datetime | None = None

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "asset_id": self.asset_id,
            "asset_path": self.asset_path,
            "area": self.area,
            "priority": self.priority.value,
            "state": self.state.value,
            "active": self.active,
            "message": self.message,
            "value": self.value,
            "explanation": self.explanation,
            "activated_at": _iso(self.activated_at),
            "cleared_at": _iso(self.cleared_at),
            "activations": self.activations,
            "suppressed": self.suppressed.value if self.suppressed else None,
            "group_id": self.group_id,
            "shelved_until": _iso(self.shelved_until),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class AlarmEntry:
    """One line of an alarm's journal: what happened (activated, cleared, acknowledged, shelved, ...),
    when in the process (`at`), when it was recorded, by whom, and why."""

    alarm_id: int
    action: str
    at: datetime
    recorded_at: datetime
    by: str | None = None
    comment: str | None = None
    state: AlarmState | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "at": self.at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "by": self.by,
            "comment": self.comment,
            "state": self.state.value if self.state else None,
            "detail": self.detail,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
