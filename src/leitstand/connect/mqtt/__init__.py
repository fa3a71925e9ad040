"""MQTT Unified Namespace: an ISA-95 topic tree of JSON payloads (see decode.py and docs/connect/mqtt.md)."""
