"""The demo's detection rules: what a plant engineer would set up first on the simulated machines.

Every simulated machine reports temperature, motor current and vibration; levels differ by machine type,
so the anomaly rules learn each machine's own normal (while it runs) instead of fixed limits. The fault
injection (sim/faults.py) is what these rules are measured against (bench/watch_eval.py).
"""

from __future__ import annotations

from typing import Any

RUNNING = ["RUNNING"]


def demo_rules(enterprise: str) -> list[dict[str, Any]]:
    """Rule documents for every machine under `enterprise`."""
    everywhere = {"under": [enterprise]}
    return [
        {
            "id": "bearing-wear",
            "name": "Vibration rising (bearing wear)",
            "kind": "anomaly",
            "targets": everywhere,
            "signal": "vibration",
            "method": "ewma",
            "ewma_lambda": 0.05,  # averages about 40 samples: single spikes pass
            "transform": "log",  # vibration severity varies by factors
            "threshold": 5,  # a 5-sigma EWMA: a baseline learned from a few hundred samples is not exact
            "side": "high",
            "while_state": RUNNING,
            "baseline_samples": 480,
            "priority": "high",
        },
        {
            "id": "temperature-drift",
            "name": "Temperature sensor drifting",
            "kind": "anomaly",
            "targets": everywhere,
            "signal": "temperature",
            "method": "robust_z",
            "side": "high",
            "while_state": RUNNING,
            "baseline_samples": 480,
            "on_delay_s": 600,
            "priority": "medium",
        },
        *(
            {
                "id": f"stuck-{signal.replace('_', '-')}",
                "name": f"{signal.replace('_', ' ').capitalize()} sensor stuck",
                "kind": "flatline",
                "targets": everywhere,
                "signal": signal,
                "min_duration_s": 900,
                "priority": "medium",
                **({"while_state": RUNNING} if signal == "motor_current" else {}),
            }
            for signal in ("temperature", "vibration", "motor_current")
        ),
        {
            "id": "scrap-rising",
            "name": "Scrap rate high (tool wear)",
            "kind": "scrap_rate",
            # Presses make hundreds of parts an hour, so a rise in their scrap shows within the hour;
            # on a station making fifty, an hour's scrap ratio is mostly noise.
            "targets": {"machine_types": ["press"]},
            "window_s": 3600,
            "above": 0.05,
            "significance_z": 4,
            "baseline_units": 2000,
            "hysteresis": 0.02,
            "min_produced": 40,
            "on_delay_s": 300,
            "priority": "medium",
        },
        {
            "id": "down-long",
            "name": "Machine down for more than 30 minutes",
            "kind": "state_duration",
            "targets": everywhere,
            "states": ["DOWN"],
            "longer_than_s": 1800,
            "priority": "high",
        },
    ]
