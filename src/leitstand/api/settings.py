"""Settings, read once at start from defaults, an optional YAML file, then LEITSTAND_* environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from leitstand.domain.errors import InputError
from leitstand.watch.notify import NotificationsConfig


class Settings(BaseSettings):
    """Every setting, its default and meaning; docs/configuration.md lists them (a test checks)."""

    model_config = SettingsConfigDict(env_prefix="LEITSTAND_", extra="forbid")

    data_dir: Path = Field(Path("leitstand-data"), description="Where the DuckDB and SQLite files live.")
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server.")
    metadata_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata store; default: SQLite in data_dir."
    )
    duckdb_memory_limit: str | None = Field(None, description="DuckDB memory_limit, e.g. '4GB'.")
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB worker threads; default: all cores.")
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    max_json_request_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Largest accepted JSON ingest body (bulk data goes as Arrow/Parquet).",
    )
    max_request_records: int = Field(
        5_000_000, ge=1, description="Most records one ingest request may hold; more are refused with 413."
    )
    ingest_queue_records: int = Field(4_000_000, ge=1000, description="Records that may wait for the writer.")
    backpressure: Literal["reject", "block"] = Field(
        "reject", description="When the queue is full: answer 429 at once, or wait up to block_timeout_s."
    )
    block_timeout_s: float = Field(5.0, ge=0, description="How long 'block' back-pressure waits for room.")
    max_past_s: float = Field(7 * 86400, gt=0, description="Older records are quarantined (seconds).")
    max_future_s: float = Field(600, ge=0, description="Records further ahead are quarantined (seconds).")
    state_lookback_s: float = Field(
        7 * 86400,
        gt=0,
        description="How far before a window the KPI looks for the state it opened in; also the longest a "
        "state holds without a next one.",
    )
    minor_stop_threshold_s: float = Field(
        300,
        gt=0,
        description="A delay shorter than this is a minor stop (small-stop loss), longer ones other delays.",
    )
    rollup_interval_s: float = Field(
        15.0,
        ge=0,
        description="How often the OEE roll-up catches up with new records in the background; 0 turns "
        "the roll-up off (every KPI is then computed from raw records).",
    )
    live_interval_s: float = Field(2.0, gt=0, description="Least time between two live updates to a client.")
    session_cookie_secure: bool = Field(False, description="Mark the session cookie Secure (behind HTTPS).")
    token_issuer: str = Field(
        "leitstand", min_length=1, description="The `iss` of the tokens this installation signs."
    )
    oidc_providers: list[dict[str, Any]] = Field(
        default_factory=list,
        description="OpenID Connect providers whose tokens are accepted (see docs/security.md).",
    )
    tenant_requests_per_s: float = Field(
        1000, gt=0, description="API requests per second per tenant (all its users and gateways)."
    )
    tenant_request_burst: float = Field(2000, ge=1, description="Requests a tenant may send in a burst.")
    tenant_ingest_records_per_s: float = Field(
        2_000_000, gt=0, description="Ingest quota: records per second per tenant."
    )
    tenant_ingest_burst_records: float = Field(
        20_000_000, ge=1, description="Records a tenant may ingest in a burst above its quota."
    )
    login_attempts_per_min: float = Field(
        10, gt=0, description="Login attempts per minute per user name and per client address."
    )
    connections: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Plant connections (MQTT, Sparkplug B, OPC UA, Modbus TCP); see docs/connect/.",
    )
    connection_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts that connections created through the API may reach: name patterns matched "
        "label by label (*.plant.example) or address ranges (10.20.0.0/16); empty: none.",
    )
    watch_rules: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="Detection rules per tenant id (thresholds, rates, stale data, state durations, scrap "
        "rate, anomalies); see docs/watch/rules.md. Rules made through the API are added to these.",
    )
    notifications: NotificationsConfig = Field(
        default_factory=NotificationsConfig,
        description="Where alarm changes go: signed `webhooks` and an `mqtt` republisher; see "
        "docs/watch/notifications.md.",
    )
    alarm_area_level: Literal["site", "area", "line"] = Field(
        "site",
        description="The level of the asset model an operator is responsible for (flood cap per area).",
    )
    alarm_flood_cap: int = Field(
        10,
        ge=1,
        description="Most alarms annunciated per operator area in any 10 minutes (urgent ones always are).",
    )
    alarm_chatter_count: int = Field(
        3, ge=2, description="Activations within `alarm_chatter_window_s` that make an alarm chattering."
    )
    alarm_chatter_window_s: float = Field(60, gt=0, description="Window for chattering alarms (seconds).")
    alarm_consequential_window_s: float = Field(
        300, ge=0, description="An alarm on an asset with an alarm from this recent is grouped under it (s)."
    )
    max_query_days: float = Field(400, gt=0, description="Longest window a KPI query may span (days).")
    log_level: str = Field("INFO", description="Python log level.")

    @property
    def metadata_database_url(self) -> str:
        return self.metadata_url or f"sqlite:///{self.data_dir / 'metadata.sqlite'}"

    @property
    def events_path(self) -> Path:
        return self.data_dir / "events.duckdb"


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Defaults, then the YAML file, then environment, then explicit overrides (e.g. CLI options)."""
    from_file: dict[str, object] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read config file {config_file}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError(f"config file {config_file} must hold a mapping of settings")
        from_file = loaded or {}
    try:
        env_only = Settings()
        merged = {**from_file, **{k: v for k, v in env_only.model_dump(exclude_unset=True).items()}}
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise InputError(f"invalid settings: {exc}") from exc
