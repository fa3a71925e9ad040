"""Plant connectivity: one folder per protocol (mqtt, sparkplug, opcua, modbus), same file roles in each."""
