"""Settings of a Sparkplug B host application connection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from leitstand.connect.base import ConnectionConfig
from leitstand.connect.mqtt.config import BrokerConfig


class SparkplugConfig(ConnectionConfig):
    """Leitstand as a Sparkplug B 3.0 primary host application (see docs/connect/sparkplug.md)."""

    protocol: Literal["sparkplug"] = "sparkplug"
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    host_id: str = Field(
        "",
        pattern=r"^[^/+#]{0,64}$",
        description="The host application id: STATE is published on spBv1.0/STATE/<host_id>. Default: "
        "leitstand-<tenant>, so that tenants sharing a broker do not share a STATE topic.",
    )
    groups: tuple[str, ...] = Field(
        (),
        description="Sparkplug group ids to subscribe to; default: every group. Only groups named "
        "'<tenant>:<site>' are taken; others are dead-lettered.",
    )
    reorder_timeout_ms: int = Field(
        2000, ge=0, le=60_000, description="How long a message after a seq gap waits for the missing ones."
    )
    rebirth_interval_ms: int = Field(
        5000, ge=100, description="Least time between two Rebirth requests to the same edge node."
    )
    state_metrics: tuple[str, ...] = Field(
        (), description="Metric names whose values are machine states (e.g. a PackML state name)."
    )
    counter_metrics: tuple[str, ...] = Field(
        (), description="Metric names that are running parts counters; stored as produced increments."
    )
    unknown_assets: Literal["dead_letter", "create"] = Field(
        "dead_letter",
        description="Records of unknown edge nodes, devices or metrics: dead-lettered, or created as "
        "<site>/<site>-edge/<edge node>/<device> (line and machine) with their signals.",
    )
    max_payload_bytes: int = Field(1024 * 1024, ge=64, le=64 * 1024 * 1024)
    flush_interval_ms: int = Field(100, ge=1, le=10_000)
    batch_messages: int = Field(2000, ge=1)

    @property
    def host(self) -> str:
        return self.host_id or f"leitstand-{self.tenant}"

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        for g in groups:
            if not g or any(c in g for c in "/+#"):
                raise ValueError(f"group id {g!r} must be non-empty without '/', '+' or '#'")
        return groups
