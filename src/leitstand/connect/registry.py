"""The connections of one Leitstand process: parsed from the config file and from the API, started,
stopped, and reported with their health.

A connection is a settings document with a `protocol` (mqtt, sparkplug, opcua, modbus), a `name` unique
per tenant, and the tenant whose records it delivers. Those in the config file are the operator's and
cannot be changed through the API; those created through the API are stored in the metadata store and
started again at the next start. API-created connections may reach only hosts the operator allows
(`connection_allowed_hosts`), because a connection makes the server open network connections.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import ipaddress
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from leitstand.connect.base import AssetRegistrar, ConnectionConfig, Connector
from leitstand.domain.errors import Conflict, Forbidden, InputError, NotFound
from leitstand.ingest.sink import RecordTarget
from leitstand.store.interfaces import MetadataStore, StoredConnection

log = logging.getLogger(__name__)

# protocol → (its settings class, its connector class, whether the connector creates assets), as
# `module:name`: a protocol's libraries are imported when a connection uses it (asyncua alone takes
# over a second), not at every start of the process.
PROTOCOLS: dict[str, tuple[str, str, bool]] = {
    "mqtt": ("mqtt.config:MqttConfig", "mqtt.client:MqttConnector", True),
    "sparkplug": ("sparkplug.config:SparkplugConfig", "sparkplug.client:SparkplugConnector", True),
    "modbus": ("modbus.config:ModbusConfig", "modbus.client:ModbusConnector", False),
    "opcua": ("opcua.config:OpcUaConfig", "opcua.client:OpcUaConnector", False),
}


@functools.cache
def _load(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(f"leitstand.connect.{module}"), name)


def _connector(config: ConnectionConfig, target: RecordTarget, registrar: AssetRegistrar) -> Connector:
    _, connector, creates_assets = PROTOCOLS[config.protocol]
    cls = _load(connector)
    return cls(config, target, registrar) if creates_assets else cls(config, target)  # type: ignore[no-any-return]


_SECRETS = frozenset({"password"})


def parse_connection(doc: object, where: str = "connection") -> ConnectionConfig:
    """A connection's settings, validated, or InputError saying which field is wrong and why."""
    if not isinstance(doc, Mapping):
        raise InputError(f"{where} must be a mapping with 'protocol', 'name' and 'tenant'")
    protocol = doc.get("protocol")
    if protocol not in PROTOCOLS:
        raise InputError(
            f"{where}: 'protocol' must be one of {', '.join(sorted(PROTOCOLS))}, not {protocol!r}"
        )
    model: type[ConnectionConfig] = _load(PROTOCOLS[str(protocol)][0])
    try:
        return model.model_validate(dict(doc))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"{where} {doc.get('name', '')!r}: {problems}") from exc


def redacted(value: Any) -> Any:
    """A settings document without its secrets (passwords), for showing it."""
    if isinstance(value, Mapping):
        return {k: ("***" if k in _SECRETS and v else redacted(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether `host` matches one of `patterns`: an address range (`10.1.0.0/16`), or a host name
    pattern matched label by label (`*.plant.example` allows `mqtt.plant.example`, not
    `mqtt.evil.example.plant.example`, and `10.0.0.*` no host name)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for pattern in patterns:
        if "/" in pattern:
            try:
                if address is not None and address in ipaddress.ip_network(pattern, strict=False):
                    return True
            except ValueError:
                continue
            continue
        labels, wanted = host.lower().split("."), pattern.lower().split(".")
        if len(labels) == len(wanted) and all(
            fnmatch.fnmatchcase(label, want) for label, want in zip(labels, wanted, strict=True)
        ):
            return True
    return False


# Settings that name files on the server: only the operator's config file may set them.
_FILE_SETTINGS = ("ca_file", "cert_file", "key_file", "certificate", "private_key", "server_certificate")


def check_api_document(tenant: str, config: ConnectionConfig, allowed_hosts: Sequence[str]) -> None:
    """What a connection made through the API may not do, so it cannot reach into other tenants'
    data or the server: hosts the operator has not allowed, files on the server, another tenant's
    topics, Sparkplug groups, MQTT client ids or Sparkplug host ids."""
    host = target_host(config)
    if not host_allowed(host, allowed_hosts):
        raise Forbidden(
            f"connections created through the API may not reach {host!r}; the operator allows "
            "hosts in the setting connection_allowed_hosts"
        )
    named = [f for f in _FILE_SETTINGS if _find(config.model_dump(), f)]
    if named:
        raise Forbidden(
            f"{', '.join(named)}: files on the server are set in the operator's config file, not "
            "through the API"
        )
    broker = getattr(config, "broker", None)
    if broker is not None and broker.client_id and not broker.client_id.startswith(f"leitstand:{tenant}:"):
        raise Forbidden(f"an MQTT client id set through the API must begin with 'leitstand:{tenant}:'")
    topics = getattr(config, "topics", ())
    if any(not t.startswith(f"{tenant}/") for t in topics):
        raise Forbidden(f"topic filters must lie in your tenant's tree, '{tenant}/…'")
    if config.protocol == "sparkplug":
        groups, host_id = getattr(config, "groups", ()), getattr(config, "host_id", "")
        if not groups or any(not g.startswith(f"{tenant}:") for g in groups):
            raise Forbidden(f"list the Sparkplug groups to read, each '{tenant}:<site>'")
        if host_id and not host_id.startswith(f"leitstand-{tenant}"):
            raise Forbidden(f"a Sparkplug host id set through the API must begin with 'leitstand-{tenant}'")


def _find(value: Any, key: str) -> bool:
    """Whether `key` holds a value anywhere in a settings document."""
    if isinstance(value, Mapping):
        return any((k == key and v) or _find(v, key) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_find(v, key) for v in value)
    return False


def target_host(config: ConnectionConfig) -> str:
    """The host a connection opens network connections to."""
    broker = getattr(config, "broker", None)
    if broker is not None:
        return str(broker.host)
    endpoint = getattr(config, "endpoint", None)
    if endpoint is not None:
        return urlparse(str(endpoint)).hostname or ""
    return str(getattr(config, "host", ""))


@dataclass
class _Running:
    config: ConnectionConfig
    connector: Connector | None
    source: str  # "config" | "api"
    created_at: datetime | None = None
    created_by: str | None = None
    error: str | None = None  # why it could not be started


class Connections:
    """Builds, starts and stops the process's connections; thread-safe."""

    def __init__(
        self,
        target: RecordTarget,
        registrar: AssetRegistrar,
        metadata: MetadataStore,
        file_docs: Sequence[Mapping[str, Any]] = (),
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self._target = target
        self._registrar = registrar
        self._metadata = metadata
        self._allowed_hosts = list(allowed_hosts)
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], _Running] = {}
        self._started = False
        # The config file's connections are checked now, so a mistake stops the start with its reason.
        self._file = [parse_connection(d, f"connections[{i}]") for i, d in enumerate(file_docs)]
        keys = [c.key for c in self._file]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise InputError(f"connections: {', '.join(duplicates)} defined more than once")

    def start(self) -> None:
        """Start every connection; calling it again while started does nothing."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for config in self._file:
                self._running[(config.tenant, config.name)] = _Running(config, None, "config")
            for stored in self._metadata.connections():
                key = (stored.tenant, stored.name)
                if key in self._running:
                    log.warning("connection %s/%s is in the config file and the store; the file wins", *key)
                    continue
                try:
                    config = parse_connection(stored.doc, "stored connection")
                except InputError as exc:  # e.g. written by an older version: keep the others running
                    log.error("%s; it is not started", exc)
                    continue
                self._running[key] = _Running(config, None, "api", stored.created_at, stored.created_by)
            for entry in self._running.values():
                if entry.source == "api":
                    try:  # the operator may have narrowed what the API may do since
                        check_api_document(entry.config.tenant, entry.config, self._allowed_hosts)
                    except Forbidden as exc:
                        entry.error = str(exc)
                        log.error("connection %s not started: %s", entry.config.key, exc)
                        continue
                self._launch(entry)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            entries = list(self._running.values())
            self._running.clear()
            self._started = False
        for entry in entries:
            if entry.connector is not None:
                entry.connector.stop(timeout)

    def _launch(self, entry: _Running) -> None:
        """Start a connection; one that cannot start (a missing certificate file, say) is reported
        as failed and keeps the others running."""
        if not entry.config.enabled:
            return
        try:
            connector = _connector(entry.config, self._target, self._registrar)
            connector.start()
        except Exception as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
            log.error("connection %s cannot start: %s", entry.config.key, entry.error)
            return
        entry.connector, entry.error = connector, None

    # the API's view --------------------------------------------------------------------------------

    def views(self, tenant: str) -> list[dict[str, Any]]:
        with self._lock:
            entries = [e for (t, _), e in sorted(self._running.items()) if t == tenant]
        return [_view(e) for e in entries]

    def view(self, tenant: str, name: str) -> dict[str, Any]:
        with self._lock:
            entry = self._running.get((tenant, name))
        if entry is None:
            raise NotFound(f"no connection named {name!r}")
        return _view(entry, details=True)

    def create(self, tenant: str, doc: Mapping[str, Any], by: str) -> dict[str, Any]:
        """Validate, store and start a connection for `tenant` (the document's tenant must be it)."""
        doc = {**doc, "tenant": doc.get("tenant", tenant)}
        if doc["tenant"] != tenant:
            raise Forbidden("a connection can deliver records only to your own tenant")
        config = parse_connection(doc)
        check_api_document(tenant, config, self._allowed_hosts)
        now = datetime.now(UTC)
        with self._lock:
            if (tenant, config.name) in self._running:
                raise Conflict(f"a connection named {config.name!r} exists")
            entry = _Running(config, None, "api", now, by)
            if self._started:
                self._launch(entry)
                if entry.error is not None:
                    raise InputError(f"connection {config.name!r} cannot start: {entry.error}")
            stored = StoredConnection(
                tenant, config.name, config.protocol, config.model_dump(mode="json"), now, by
            )
            try:
                self._metadata.save_connection(stored)
            except Exception:
                if entry.connector is not None:
                    entry.connector.stop()
                raise
            self._running[(tenant, config.name)] = entry
        return _view(entry, details=True)

    def delete(self, tenant: str, name: str) -> None:
        with self._lock:
            entry = self._running.get((tenant, name))
            if entry is None:
                raise NotFound(f"no connection named {name!r}")
            if entry.source == "config":
                raise Conflict(f"connection {name!r} is defined in the config file; change it there")
            del self._running[(tenant, name)]
            self._metadata.delete_connection(tenant, name)
        if entry.connector is not None:
            entry.connector.stop()


def _view(entry: _Running, details: bool = False) -> dict[str, Any]:
    config = entry.config
    out: dict[str, Any] = {
        "name": config.name,
        "protocol": config.protocol,
        "source": entry.source,
        "enabled": config.enabled,
        "description": config.description,
        "health": entry.connector.health.snapshot()
        if entry.connector is not None
        else {"state": "failed", "detail": entry.error}
        if entry.error is not None
        else {"state": "disabled"},
    }
    if details:
        out["config"] = redacted(config.model_dump(mode="json"))
        out["created_at"] = entry.created_at.isoformat() if entry.created_at else None
        out["created_by"] = entry.created_by
        nodes = getattr(entry.connector, "nodes", None)
        if callable(nodes):
            out["nodes"] = nodes()
    return out
