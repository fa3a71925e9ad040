"""Modbus TCP: a poller that reads a device's registers by a register map declared as data.

Registers with the same unit, table and cadence are read together in as few requests as the protocol
allows; each poll cycle hands one columnar batch per record kind to ingest. See docs/connect/modbus.md.
"""
