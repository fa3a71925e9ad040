"""Settings of an MQTT connection: the broker, how to log in, and what to subscribe to."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leitstand.connect.base import ConnectionConfig


class TlsConfig(BaseModel):
    """TLS to the broker: the CA that signed its certificate, and a client certificate if it asks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(None, description="CA bundle; default: the system's trusted CAs.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), for mutual TLS.")
    key_file: Path | None = Field(None, description="The client certificate's private key (PEM).")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file go together")
        return self


class BrokerConfig(BaseModel):
    """Where the broker is and how to log in; shared by the UNS and the Sparkplug B connections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    mqtt_version: Literal["3.1.1", "5"] = "5"
    client_id: str = Field(
        "",
        max_length=23 * 4,
        description="Default: leitstand:<tenant>:<name>. Keep it stable: the broker keeps the QoS 1 "
        "session (unacknowledged messages) under it while Leitstand is away.",
    )
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=65535)
    session_expiry_s: int = Field(
        3600, ge=0, description="How long the broker keeps the session after a disconnect (MQTT 5)."
    )
    receive_maximum: int = Field(
        65535,
        ge=1,
        le=65535,
        description="QoS 1 messages the broker may send before we acknowledge (MQTT 5). With MQTT 3.1.1 "
        "the broker's own limit applies (mosquitto: max_inflight_messages, default 20).",
    )
    reconnect_min_s: int = Field(1, ge=1)
    reconnect_max_s: int = Field(30, ge=1)


class MqttConfig(ConnectionConfig):
    """An MQTT Unified Namespace subscription (see docs/connect/mqtt.md for the topic tree)."""

    protocol: Literal["mqtt"] = "mqtt"
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    topics: tuple[str, ...] = Field(
        (), description="Topic filters; default: the tenant's whole tree, '<tenant>/#'."
    )
    qos: Literal[0, 1] = Field(
        1,
        description="1: a message is acknowledged to the broker only once its records are committed.",
    )
    shared_group: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_\-]{1,64}$",
        description="Subscribe as '$share/<group>/<filter>' so several Leitstand processes split the load.",
    )
    unknown_assets: Literal["dead_letter", "create"] = Field(
        "dead_letter",
        description="What happens to records of assets or signals the asset model does not know: "
        "dead-lettered, or created from the topic path.",
    )
    max_payload_bytes: int = Field(65536, ge=64, le=16 * 1024 * 1024)
    flush_interval_ms: int = Field(100, ge=1, le=10_000, description="Longest a message waits for its batch.")
    batch_messages: int = Field(20_000, ge=1, description="A batch is flushed once it holds this many.")

    @model_validator(mode="after")
    def _filters(self) -> MqttConfig:
        for f in self.topics:
            _check_filter(f)
        return self

    @property
    def filters(self) -> tuple[str, ...]:
        return self.topics or (f"{self.tenant}/#",)


def _check_filter(topic_filter: str) -> None:
    """MQTT topic filter rules: '#' only last and alone in its level, '+' alone in its level."""
    if not topic_filter or len(topic_filter.encode()) > 65535:
        raise ValueError(f"topic filter {topic_filter!r} must be 1 to 65535 bytes")
    if topic_filter.startswith("$share/"):
        raise ValueError("give shared_group instead of a '$share/' filter")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"topic filter {topic_filter!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ValueError(f"topic filter {topic_filter!r}: '+' must be a whole level")
