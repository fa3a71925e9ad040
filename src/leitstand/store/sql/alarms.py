"""AlarmStore on SQLAlchemy: alarms, their journal and API-created detection rules, in the metadata
database (the schema is the metadata store's, upgraded by its Alembic migrations)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from leitstand.domain.alarms import Alarm, AlarmEntry, AlarmState, Priority, Suppression
from leitstand.domain.errors import Conflict, InputError
from leitstand.store.sql.tables import AlarmEntryRow, AlarmRow, TenantRow, WatchRuleRow

_ALARM_COLUMNS = (
    "rule_id", "asset_id", "asset_path", "area", "active", "message", "value", "explanation",
    "activated_at", "cleared_at", "last_detection_at", "activations", "group_id", "shelved_until",
    "updated_at",
)  # fmt: skip


class SqlAlarmStore:
    """Alarms and rules of every tenant; writes of one call are one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._lock = threading.Lock()

    # alarms ------------------------------------------------------------------------------------------

    def save_alarms(self, changes: Sequence[tuple[Alarm, Sequence[AlarmEntry]]]) -> None:
        """Insert or update each alarm (a new one gets its id) and append its journal entries."""
        with self._lock, self._session.begin() as s:
            ids = [alarm.id for alarm, _ in changes if alarm.id]
            stored = {r.id: r for r in s.scalars(select(AlarmRow).where(AlarmRow.id.in_(ids)))} if ids else {}
            rows = []
            for alarm, _ in changes:
                row = stored.get(alarm.id)
                if row is None:
                    row = AlarmRow(tenant_id=alarm.tenant)
                    s.add(row)
                for column in _ALARM_COLUMNS:
                    setattr(row, column, getattr(alarm, column))
                row.priority = alarm.priority.value
                row.state = alarm.state.value
                row.suppressed = alarm.suppressed.value if alarm.suppressed else None
                rows.append(row)
            s.flush()  # new alarms get their ids
            for (alarm, entries), row in zip(changes, rows, strict=True):
                alarm.id = row.id
                s.add_all(
                    AlarmEntryRow(
                        alarm_id=row.id,
                        action=e.action,
                        at=e.at,
                        recorded_at=e.recorded_at,
                        by=e.by,
                        comment=e.comment,
                        state=e.state.value if e.state else None,
                        detail=e.detail,
                    )
                    for e in entries
                )

    def alarms(self, tenant_id: str) -> list[Alarm]:
        with self._session() as s:
            rows = s.scalars(select(AlarmRow).where(AlarmRow.tenant_id == tenant_id).order_by(AlarmRow.id))
            return [_alarm(r) for r in rows]

    def entries(self, tenant_id: str, alarm_id: int, limit: int = 200) -> list[AlarmEntry]:
        """The newest `limit` journal entries of an alarm of the tenant, oldest first."""
        with self._session() as s:
            rows = s.scalars(
                select(AlarmEntryRow)
                .join(AlarmRow, AlarmRow.id == AlarmEntryRow.alarm_id)
                .where(AlarmRow.tenant_id == tenant_id, AlarmEntryRow.alarm_id == alarm_id)
                .order_by(AlarmEntryRow.id.desc())
                .limit(limit)
            ).all()
            return [_entry(r) for r in reversed(rows)]

    # rules -------------------------------------------------------------------------------------------

    def save_rule(self, tenant_id: str, doc: dict[str, object], by: str, at: datetime) -> None:
        rule_id = str(doc["id"])
        with self._lock, self._session.begin() as s:
            if s.get(TenantRow, tenant_id) is None:
                raise InputError(f"tenant {tenant_id!r} does not exist")
            if s.get(WatchRuleRow, (tenant_id, rule_id)) is not None:
                raise Conflict(f"tenant {tenant_id!r} has a rule {rule_id!r}")
            s.add(WatchRuleRow(tenant_id=tenant_id, rule_id=rule_id, doc=doc, created_at=at, created_by=by))

    def rules(self, tenant_id: str | None = None) -> list[tuple[str, dict[str, object]]]:
        """(tenant, rule document) of the stored rules, by tenant and id."""
        with self._session() as s:
            query = select(WatchRuleRow).order_by(WatchRuleRow.tenant_id, WatchRuleRow.rule_id)
            if tenant_id is not None:
                query = query.where(WatchRuleRow.tenant_id == tenant_id)
            return [(r.tenant_id, dict(r.doc)) for r in s.scalars(query)]

    def delete_rule(self, tenant_id: str, rule_id: str) -> bool:
        with self._lock, self._session.begin() as s:
            row = s.get(WatchRuleRow, (tenant_id, rule_id))
            if row is None:
                return False
            s.delete(row)
            return True


def _alarm(row: AlarmRow) -> Alarm:
    alarm = Alarm(
        tenant=row.tenant_id,
        rule_id=row.rule_id,
        asset_id=row.asset_id,
        asset_path=row.asset_path,
        area=row.area,
        priority=Priority(row.priority),
        id=row.id,
        state=AlarmState(row.state),
        suppressed=Suppression(row.suppressed) if row.suppressed else None,
    )
    for column in _ALARM_COLUMNS:
        setattr(alarm, column, getattr(row, column))
    alarm.explanation = dict(row.explanation)
    return alarm


def _entry(row: AlarmEntryRow) -> AlarmEntry:
    return AlarmEntry(
        alarm_id=row.alarm_id,
        action=row.action,
        at=row.at,
        recorded_at=row.recorded_at,
        by=row.by,
        comment=row.comment,
        state=AlarmState(row.state) if row.state else None,
        detail=dict(row.detail),
    )
