"""An OPC UA connection's settings: the server, how to secure the session, and which node becomes which
record. Everything here is checked when the connection is configured, not when it first connects."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from asyncua import ua
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leitstand.connect.base import ID, ConnectionConfig

RecordType = Literal["sample", "state", "counter"]
MAX_NODES = 100_000


def parse_node_id(text: str) -> ua.NodeId:
    """A node id in OPC UA's string form (`ns=2;s=Press1.Temperature`, `i=2258`, `nsu=urn:x;s=a.b`);
    ValueError with the reason when it does not parse."""
    try:
        node_id = ua.NodeId.from_string(text.strip())
    except Exception as exc:
        raise ValueError(
            f"{text!r} is not an OPC UA node id; write it as ns=<index>;s=<name> (or i=, g=, b=), "
            f"or nsu=<namespace uri>;s=<name>"
        ) from exc
    if node_id.NodeIdType in (ua.NodeIdType.String, ua.NodeIdType.ByteString) and not node_id.Identifier:
        raise ValueError(f"{text!r} is not an OPC UA node id: the identifier is empty")
    return node_id


class Deadband(BaseModel):
    """Report a value only when it moved more than this from the last reported one: `absolute` in the
    value's unit, `percent` of the variable's EURange (the server must know the range)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["absolute", "percent"]
    value: float = Field(ge=0)

    @model_validator(mode="after")
    def _percent_range(self) -> Deadband:
        if self.type == "percent" and self.value > 100:
            raise ValueError("a percent deadband is at most 100")
        return self


class NodeMapping(BaseModel):
    """One OPC UA variable and the record its values become."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str = Field(description="The variable's node id, e.g. ns=2;s=Press1.Temperature.")
    asset_id: str = Field(pattern=ID, description="The machine the values belong to (asset model id).")
    signal: str | None = Field(None, pattern=ID, description="The signal name; samples only.")
    record: RecordType = Field(
        description="sample (a measured value), state (a machine state code) or counter"
    )
    sampling_interval_ms: float = Field(1000, ge=0, le=86_400_000)
    deadband: Deadband | None = None

    @field_validator("node_id")
    @classmethod
    def _node_id_parses(cls, value: str) -> str:
        parse_node_id(value)
        return value.strip()

    @model_validator(mode="after")
    def _fits_record(self) -> NodeMapping:
        if self.record == "sample" and self.signal is None:
            raise ValueError(f"node {self.node_id}: a sample node needs `signal` (the asset's signal name)")
        if self.record != "sample" and self.signal is not None:
            raise ValueError(f"node {self.node_id}: `signal` applies to sample nodes only, not {self.record}")
        if self.record != "sample" and self.deadband is not None:
            raise ValueError(f"node {self.node_id}: a deadband applies to numeric sample nodes only")
        return self

    @property
    def parsed_node_id(self) -> ua.NodeId:
        return parse_node_id(self.node_id)


class OpcUaConfig(ConnectionConfig):
    """A client session to one OPC UA server, subscribed to the mapped nodes."""

    protocol: Literal["opcua"] = "opcua"
    endpoint: str = Field(description="The server's endpoint URL, opc.tcp://host:port[/path].")
    security_policy: Literal["None", "Basic256Sha256"] = "Basic256Sha256"
    security_mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    allow_insecure: bool = Field(
        False, description="Permit security_policy None (no signing, no encryption): for a lab only."
    )
    certificate: Path | None = Field(None, description="This client's application certificate (DER or PEM).")
    private_key: Path | None = Field(None, description="The certificate's private key (PEM or DER).")
    server_certificate: Path | None = Field(
        None, description="The server's certificate; when given, only a server holding its key is accepted."
    )
    username: str | None = Field(None, min_length=1, max_length=256)
    # Plain text, as the registry stores the dumped settings; it shows them with the password as ***.
    password: str | None = Field(None, min_length=1, max_length=256)
    publishing_interval_ms: float = Field(1000, ge=10, le=3_600_000)
    nodes: list[NodeMapping] = Field(default_factory=list, max_length=MAX_NODES)
    browse_root: str | None = Field(None, description="Where `browse` starts; the Objects folder if unset.")
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    watchdog_interval_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How often the server is probed (and how long it may take to answer); a dead server is "
        "noticed within about twice this.",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_opc_tcp(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme != "opc.tcp" or not parsed.hostname:
            raise ValueError(f"{value!r} is not an OPC UA endpoint; expected opc.tcp://host:port[/path]")
        try:
            parsed.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"{value!r} has an invalid port") from exc
        if parsed.username or parsed.password:
            raise ValueError("put credentials in `username` and `password`, not in the endpoint URL")
        return value

    @field_validator("browse_root")
    @classmethod
    def _browse_root_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_node_id(value)
            return value.strip()
        return value

    @model_validator(mode="after")
    def _secure_and_consistent(self) -> OpcUaConfig:
        if self.security_policy == "None":
            if not self.allow_insecure:
                raise ValueError(
                    "security_policy None sends values and credentials unsigned and unencrypted; use "
                    "Basic256Sha256 with a client certificate, or set allow_insecure: true (lab only)"
                )
        elif self.certificate is None or self.private_key is None:
            raise ValueError(
                f"security_policy {self.security_policy} needs this client's `certificate` and `private_key`"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("give both `username` and `password`, or neither (anonymous)")
        self._no_duplicate_targets()
        return self

    def _no_duplicate_targets(self) -> None:
        targets = Counter(
            (n.record, n.asset_id, n.signal if n.record == "sample" else None) for n in self.nodes
        )
        twice = [t for t, count in targets.items() if count > 1]
        if twice:
            record, asset, signal = twice[0]
            what = f"signal {signal!r} of asset {asset!r}" if signal else f"the {record} of asset {asset!r}"
            raise ValueError(f"two nodes feed {what}; map each record to one node")
