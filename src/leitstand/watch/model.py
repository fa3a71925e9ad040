"""The words of alarm management (ISA-18.2), shared by the detectors, the alarm store and notifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leitstand.domain.alarms import PRIORITY_RANK, AlarmState, Priority, Suppression

__all__ = ["PRIORITY_RANK", "AlarmNotice", "AlarmState", "Detection", "Priority", "Suppression"]


@dataclass(frozen=True, slots=True)
class Detection:
    """A detector's finding: the condition of `rule_id` on `asset_id` became active at `at` (or cleared,
    when `active` is False). `explanation` says why, in numbers: which signal, how far from normal."""

    rule_id: str
    asset_id: str
    at: datetime
    active: bool
    value: float | None = None
    message: str = ""
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlarmNotice:
    """What notifications carry: one change of one alarm, as the operator sees it."""

    tenant: str
    alarm_id: int
    rule_id: str
    asset_id: str
    asset_path: str
    priority: Priority
    state: AlarmState
    action: str  # activated, cleared, acknowledged, shelved, unshelved, out_of_service, in_service, comment
    at: datetime
    message: str
    value: float | None = None
    explanation: dict[str, Any] = field(default_factory=dict)
    by: str | None = None
    comment: str | None = None

    def document(self) -> dict[str, Any]:
        """The notice as a JSON-ready document (what a webhook receives and MQTT republishes)."""
        return {
            "tenant": self.tenant,
            "alarm_id": self.alarm_id,
            "rule_id": self.rule_id,
            "asset_id": self.asset_id,
            "asset_path": self.asset_path,
            "priority": self.priority.value,
            "state": self.state.value,
            "action": self.action,
            "at": self.at.isoformat(),
            "message": self.message,
            "value": self.value,
            "explanation": self.explanation,
            "by": self.by,
            "comment": self.comment,
        }
