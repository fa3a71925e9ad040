"""A Modbus TCP connection's settings and its register map, validated when the configuration is loaded.

A register map is data: each entry names where a value lives (table, address, type, byte and word
order), what it becomes (a sample of a signal, a machine state, a production counter) and how often it
is read. Every mistake that can be found without the device is refused here, naming the register.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from leitstand.connect.base import ID, ConnectionConfig
from leitstand.ingest.validate import MAX_STATE_LENGTH

ValueType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool"]
Table = Literal["holding", "input", "coil", "discrete"]
RecordType = Literal["sample", "state", "counter"]
Order = Literal["big", "little"]

VALUE_TYPES: tuple[str, ...] = get_args(ValueType)
TABLES: tuple[str, ...] = get_args(Table)
# 16-bit words a value of each type occupies in a register table.
WORDS: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "int64": 4,
    "uint64": 4,
    "float32": 2,
    "float64": 4,
    "bool": 1,
}
INTEGER_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})
BIT_TABLES = frozenset({"coil", "discrete"})
MAX_ADDRESS = 65535
# What one request may read (Modbus application protocol 1.1b3, functions 1–4).
MAX_REGISTERS_PER_REQUEST = 125
MAX_BITS_PER_REQUEST = 2000


def _name(info: ValidationInfo) -> str:
    """The register's name for an error message (`name` is validated before the other fields)."""
    return repr(info.data.get("name", "?"))


class ModbusRegister(BaseModel):
    """One value in a device's register map and the record it becomes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ID, description="Unique in the connection; names the value in health and logs.")
    asset_id: str = Field(pattern=ID, description="The machine the value belongs to (the asset model's id).")
    signal: str | None = Field(None, pattern=ID, description="The asset's signal; required for samples.")
    record: RecordType = Field("sample", description="sample (a measurement), state or counter.")
    table: Table = Field("holding", description="holding, input (16-bit registers), coil or discrete (bits).")
    address: int = Field(description="Zero-based protocol address of the first register or bit.")
    type: ValueType = Field(
        "uint16", description="Value type; bool for coils and discrete inputs (their default)."
    )
    scale: float = Field(1.0, description="Samples: value = raw × scale + offset.")
    offset: float = 0.0
    byte_order: Order = Field("big", description="Order of the two bytes in each register.")
    word_order: Order = Field("big", description="Order of the registers of a 32/64-bit value.")
    unit: str = Field("", max_length=32, description="Engineering unit, for documentation.")
    cadence_ms: int | None = Field(None, description="How often it is read; the connection's by default.")
    unit_id: int | None = Field(
        None, ge=0, le=255, description="Modbus unit (device behind a gateway); the connection's by default."
    )
    states: dict[int, str] = Field(
        default_factory=dict,
        description="States: register value → state code; unmapped values pass as digits.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_type(cls, data: Any) -> Any:
        # Coils and discrete inputs are bits; registers hold a 16-bit unsigned word unless told otherwise.
        if isinstance(data, dict) and data.get("type") is None:
            data = {k: v for k, v in data.items() if k != "type"}
            data["type"] = "bool" if data.get("table") in BIT_TABLES else "uint16"
        return data

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any, info: ValidationInfo) -> Any:
        if value not in VALUE_TYPES:
            raise ValueError(
                f"register {_name(info)}: unknown type {value!r}; use one of {', '.join(VALUE_TYPES)}"
            )
        return value

    @field_validator("table", mode="before")
    @classmethod
    def _known_table(cls, value: Any, info: ValidationInfo) -> Any:
        if value not in TABLES:
            raise ValueError(
                f"register {_name(info)}: unknown table {value!r}; use one of {', '.join(TABLES)}"
            )
        return value

    @field_validator("address")
    @classmethod
    def _address_in_range(cls, value: int, info: ValidationInfo) -> int:
        if not 0 <= value <= MAX_ADDRESS:
            raise ValueError(f"register {_name(info)}: address {value} is outside 0..{MAX_ADDRESS}")
        return value

    @field_validator("cadence_ms")
    @classmethod
    def _cadence_positive(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(f"register {_name(info)}: cadence_ms must be greater than 0, not {value}")
        return value

    @field_validator("scale", "offset")
    @classmethod
    def _finite(cls, value: float, info: ValidationInfo) -> float:
        if not math.isfinite(value):
            raise ValueError(f"register {_name(info)}: {info.field_name} must be a finite number")
        if info.field_name == "scale" and value == 0:
            raise ValueError(f"register {_name(info)}: scale 0 would make every value 0")
        return value

    @field_validator("states")
    @classmethod
    def _state_codes(cls, value: dict[int, str], info: ValidationInfo) -> dict[int, str]:
        for raw, state in value.items():
            if not 0 < len(state) <= MAX_STATE_LENGTH:
                raise ValueError(
                    f"register {_name(info)}: state for value {raw} must have 1 to {MAX_STATE_LENGTH}"
                    f" characters, not {state!r}"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModbusRegister:
        where = f"register {self.name!r}"
        if self.table in BIT_TABLES and self.type != "bool":
            raise ValueError(
                f"{where}: a {self.table} is a single bit; its type must be bool, not {self.type}"
            )
        if self.record == "sample" and self.signal is None:
            raise ValueError(f"{where}: a sample needs the asset's `signal` it measures")
        if self.record != "sample":
            if self.signal is not None:
                raise ValueError(f"{where}: `signal` applies to samples only, not to a {self.record}")
            if self.scale != 1 or self.offset != 0:
                raise ValueError(f"{where}: scale and offset apply to samples only, not to a {self.record}")
        if self.record == "counter" and self.type not in INTEGER_TYPES:
            raise ValueError(f"{where}: a counter needs an integer type, not {self.type}")
        if self.record == "state" and self.type not in INTEGER_TYPES | {"bool"}:
            raise ValueError(f"{where}: a state needs an integer or bool type, not {self.type}")
        if self.states and self.record != "state":
            raise ValueError(f"{where}: `states` applies to records of kind state only")
        if self.last_address > MAX_ADDRESS:
            raise ValueError(
                f"{where}: a {self.type} at address {self.address} needs {self.width} registers and would"
                f" run past {MAX_ADDRESS}"
            )
        return self

    @property
    def width(self) -> int:
        """Addresses the value occupies: one bit, or its type's words."""
        return 1 if self.table in BIT_TABLES else WORDS[self.type]

    @property
    def last_address(self) -> int:
        return self.address + self.width - 1

    def describe(self) -> str:
        """`holding 100..101 float32` — for error messages."""
        span = str(self.address) if self.width == 1 else f"{self.address}..{self.last_address}"
        return f"{self.table} {span} {self.type}"


class ModbusConfig(ConnectionConfig):
    """A Modbus TCP device (or gateway) polled by a register map."""

    protocol: Literal["modbus"] = "modbus"
    host: str = Field(min_length=1, max_length=253, description="The device's or gateway's address.")
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255, description="Modbus unit identifier of the device.")
    timeout_s: float = Field(1.0, gt=0, le=60, description="How long to wait for a connection or an answer.")
    cadence_ms: int = Field(1000, description="Default read interval of the registers.")
    max_failures: int = Field(
        3, ge=1, le=100, description="Unanswered requests in a row after which the link counts as down."
    )
    reconnect_min_s: float = Field(0.5, gt=0, le=3600, description="First delay between reconnect attempts.")
    reconnect_max_s: float = Field(
        30.0, gt=0, le=3600, description="Longest delay between reconnect attempts."
    )
    max_gap: int = Field(
        8, ge=0, le=MAX_BITS_PER_REQUEST, description="Unmapped addresses a request may read across."
    )
    max_registers_per_request: int = Field(MAX_REGISTERS_PER_REQUEST, ge=1, le=MAX_REGISTERS_PER_REQUEST)
    max_bits_per_request: int = Field(MAX_BITS_PER_REQUEST, ge=1, le=MAX_BITS_PER_REQUEST)
    registers: tuple[ModbusRegister, ...] = Field(min_length=1)

    @field_validator("cadence_ms")
    @classmethod
    def _cadence_positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"cadence_ms must be greater than 0, not {value}")
        return value

    @model_validator(mode="after")
    def _consistent_map(self) -> ModbusConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        seen: dict[str, ModbusRegister] = {}
        # Two registers whose records share a key would write over each other (the second a duplicate).
        keys: dict[tuple[str, ...], ModbusRegister] = {}
        for reg in self.registers:
            if reg.name in seen:
                raise ValueError(f"register name {reg.name!r} is used twice")
            seen[reg.name] = reg
            key = (reg.record, reg.asset_id, reg.signal or "")
            if key in keys:
                what = f"signal {reg.signal!r}" if reg.record == "sample" else f"a {reg.record}"
                raise ValueError(
                    f"registers {keys[key].name!r} and {reg.name!r} both deliver {what} of asset"
                    f" {reg.asset_id!r}; each needs one register"
                )
            keys[key] = reg
        self._check_overlaps()
        return self

    def _check_overlaps(self) -> None:
        """Registers may share addresses only when they read them identically."""
        by_space: dict[tuple[int, str], list[ModbusRegister]] = defaultdict(list)
        for reg in self.registers:
            by_space[(self.unit_of(reg), reg.table)].append(reg)
        for regs in by_space.values():
            regs.sort(key=lambda r: r.address)
            open_regs: list[ModbusRegister] = []
            for reg in regs:
                open_regs = [o for o in open_regs if o.last_address >= reg.address]
                for other in open_regs:
                    same = (other.address, other.type, other.byte_order, other.word_order) == (
                        reg.address,
                        reg.type,
                        reg.byte_order,
                        reg.word_order,
                    )
                    if not same:
                        raise ValueError(
                            f"registers {other.name!r} ({other.describe()}, {other.byte_order}/"
                            f"{other.word_order}) and {reg.name!r} ({reg.describe()}, {reg.byte_order}/"
                            f"{reg.word_order}) overlap but disagree; shared addresses must be read with the"
                            " same address, type, byte_order and word_order"
                        )
                open_regs.append(reg)

    def unit_of(self, reg: ModbusRegister) -> int:
        return self.unit_id if reg.unit_id is None else reg.unit_id

    def cadence_of(self, reg: ModbusRegister) -> int:
        return self.cadence_ms if reg.cadence_ms is None else reg.cadence_ms
