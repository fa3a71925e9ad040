"""Sparkplug B 3.0 topics and metric values: datatypes (scalars and arrays) → numbers or text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from leitstand.connect.sparkplug import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
Payload = pb.Payload
Metric = pb.Payload.Metric


class DataType(IntEnum):
    """Sparkplug B 3.0 metric datatypes (specification, section 6.4.16)."""

    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


# Which field of the Metric's value oneof holds each scalar type
SCALAR_FIELD = {
    **dict.fromkeys((1, 2, 3, 5, 6, 7), "int_value"),
    **dict.fromkeys((4, 8, 13), "long_value"),
    9: "float_value",
    10: "double_value",
    11: "boolean_value",
    **dict.fromkeys((12, 14, 15), "string_value"),
}
TEXT_TYPES = frozenset((DataType.STRING, DataType.TEXT, DataType.UUID))
# Arrays are packed little-endian into bytes_value (specification 3.0, section 6.4.17)
ARRAY_DTYPE = {
    22: "<i1",
    23: "<i2",
    24: "<i4",
    25: "<i8",
    26: "<u1",
    27: "<u2",
    28: "<u4",
    29: "<u8",
    30: "<f4",
    31: "<f8",
    34: "<i8",  # DateTime: epoch milliseconds
}
_SIGNED_BITS: dict[int, int] = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_CONTROL = ("Node Control/", "Device Control/", "Properties/")


class ValueInvalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    group: str
    message_type: str  # NBIRTH, NDATA, NDEATH, DBIRTH, DDATA, DDEATH, NCMD, DCMD
    node: str
    device: str | None


def parse_topic(topic: str) -> SparkplugTopic | None:
    """`spBv1.0/<group>/<type>/<node>[/<device>]`, or None for anything else (e.g. STATE)."""
    levels = topic.split("/")
    if len(levels) not in (4, 5) or levels[0] != NAMESPACE:
        return None
    return SparkplugTopic(levels[1], levels[2], levels[3], levels[4] if len(levels) == 5 else None)


def is_control(name: str) -> bool:
    """Metrics that steer the edge node (rebirth, bdSeq, properties), not measurements."""
    return name == "bdSeq" or name.startswith(_CONTROL)


_NOT_ID = re.compile(r"[^A-Za-z0-9_.\-]+")


def signal_id(name: str) -> str:
    """A metric name as a signal id: folders ('Motor/Temperature') become dots, other characters that an
    id may not hold become '_' ('Motor.Temperature')."""
    signal = _NOT_ID.sub("_", name.strip().replace("/", ".")).strip("._-") or "metric"
    return signal[:64]


def signed_bits(datatype: int) -> int:
    """The width of a signed integer type (0 for every other type)."""
    return _SIGNED_BITS.get(datatype, 0)


def signed(value: int, bits: int) -> int:
    """An unsigned wire integer as the signed value it carries. Int8/16/32 travel as uint32, sign-extended
    to 32 bits by most edge nodes and as n-bit two's complement by some; Int64 as uint64."""
    if not bits or value < 1 << (bits - 1):
        return value
    wire = 64 if bits == 64 else 32
    if value >= 1 << (wire - 1):
        return value - (1 << wire)
    return value - (1 << bits) if value < 1 << bits else value


def array(metric: Metric, datatype: int) -> np.ndarray:
    """A numeric or boolean array metric's elements as float64."""
    raw = metric.bytes_value
    if datatype == DataType.BOOLEAN_ARRAY:
        if len(raw) < 4:
            raise ValueInvalid("invalid_array", "a boolean array needs its 4-byte element count")
        count = int.from_bytes(raw[:4], "little")
        bits = np.unpackbits(np.frombuffer(raw[4:], np.uint8), bitorder="big")
        if count > len(bits):
            raise ValueInvalid("invalid_array", f"boolean array says {count} elements, holds {len(bits)}")
        return bits[:count].astype(np.float64)
    dtype = ARRAY_DTYPE.get(datatype)
    if dtype is None:
        raise ValueInvalid("unsupported_datatype", f"datatype {_name(datatype)} is not a numeric array")
    size = np.dtype(dtype).itemsize
    if len(raw) % size:
        raise ValueInvalid("invalid_array", f"{_name(datatype)} of {len(raw)} bytes is not whole elements")
    return np.frombuffer(raw, dtype).astype(np.float64)


def is_array(datatype: int) -> bool:
    return 22 <= datatype <= 34


def _name(datatype: int) -> str:
    try:
        return DataType(datatype).name
    except ValueError:
        return str(datatype)
