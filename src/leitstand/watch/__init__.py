"""Early fault detection: rules, statistical process control, anomaly detection, ISA-18.2 alarms and
notifications."""
