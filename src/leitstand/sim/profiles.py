"""How each kind of machine behaves: loss rates, fault codes and signal levels, declared as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MachineProfile:
    """Behaviour parameters of one machine type; rates are per hour of running time unless named otherwise."""

    fault_reasons: tuple[str, ...]  # DOWN reason codes, most frequent first
    microstop_reasons: tuple[str, ...]
    mtbf_h: float  # mean running hours between breakdowns
    repair_median_min: float
    microstop_every_min: float  # mean running minutes between microstops
    microstop_median_s: float
    starve_block_every_h: float
    setup_min: tuple[float, float]  # changeover duration range
    ambient_c: float
    temp_run_c: float
    temp_tau_min: float  # thermal time constant
    current_run_a: float
    vibration_run_mm_s: float


PROFILES: dict[str, MachineProfile] = {
    "press": MachineProfile(
        fault_reasons=(
            "TOOL_BREAK",
            "FEEDER_JAM",
            "HYDRAULIC_LEAK",
            "DIE_CUSHION_FAULT",
            "LUBRICATION_FAULT",
        ),
        microstop_reasons=("MISFEED", "DOUBLE_BLANK", "PART_EJECT_RETRY"),
        mtbf_h=6.0,
        repair_median_min=18.0,
        microstop_every_min=8.0,
        microstop_median_s=25.0,
        starve_block_every_h=1.75,
        setup_min=(12.0, 25.0),
        ambient_c=24.0,
        temp_run_c=52.0,
        temp_tau_min=35.0,
        current_run_a=185.0,
        vibration_run_mm_s=7.0,
    ),
    "welding_cell": MachineProfile(
        fault_reasons=(
            "WELD_GUN_FAULT",
            "ROBOT_FAULT",
            "TIP_DRESSER_FAULT",
            "FIXTURE_CLAMP_FAULT",
            "SAFETY_STOP",
        ),
        microstop_reasons=("WELD_RETRY", "CLAMP_RETRY", "TIP_CHANGE"),
        mtbf_h=7.0,
        repair_median_min=15.0,
        microstop_every_min=11.0,
        microstop_median_s=35.0,
        starve_block_every_h=1.4,
        setup_min=(10.0, 20.0),
        ambient_c=23.0,
        temp_run_c=58.0,
        temp_tau_min=20.0,
        current_run_a=14.0,
        vibration_run_mm_s=1.8,
    ),
    "robot_cell": MachineProfile(
        fault_reasons=("ROBOT_FAULT", "GRIPPER_FAULT", "VISION_FAULT", "CONVEYOR_JAM", "SAFETY_STOP"),
        microstop_reasons=("GRIP_RETRY", "LIGHT_CURTAIN", "VISION_RETRY"),
        mtbf_h=8.0,
        repair_median_min=14.0,
        microstop_every_min=12.0,
        microstop_median_s=30.0,
        starve_block_every_h=1.4,
        setup_min=(8.0, 18.0),
        ambient_c=23.0,
        temp_run_c=42.0,
        temp_tau_min=20.0,
        current_run_a=11.0,
        vibration_run_mm_s=1.4,
    ),
    "paint_booth": MachineProfile(
        fault_reasons=("ATOMIZER_FAULT", "ROBOT_FAULT", "AIR_SUPPLY_FAULT", "CONVEYOR_JAM"),
        microstop_reasons=("COLOR_CHANGE_FLUSH", "CONVEYOR_HOLD"),
        mtbf_h=9.0,
        repair_median_min=20.0,
        microstop_every_min=15.0,
        microstop_median_s=40.0,
        starve_block_every_h=1.25,
        setup_min=(8.0, 15.0),
        ambient_c=22.0,
        temp_run_c=28.0,
        temp_tau_min=30.0,
        current_run_a=36.0,
        vibration_run_mm_s=2.2,
    ),
    "paint_oven": MachineProfile(
        fault_reasons=("BURNER_FAULT", "CONVEYOR_JAM", "TEMPERATURE_DEVIATION", "EXHAUST_FAN_FAULT"),
        microstop_reasons=("CONVEYOR_HOLD",),
        mtbf_h=12.0,
        repair_median_min=30.0,
        microstop_every_min=25.0,
        microstop_median_s=40.0,
        starve_block_every_h=1.25,
        setup_min=(5.0, 10.0),
        ambient_c=30.0,
        temp_run_c=170.0,
        temp_tau_min=60.0,
        current_run_a=26.0,
        vibration_run_mm_s=2.6,
    ),
    "assembly_station": MachineProfile(
        fault_reasons=("NUTRUNNER_FAULT", "CONVEYOR_JAM", "SCANNER_FAULT", "LIFT_FAULT", "SAFETY_STOP"),
        microstop_reasons=("ANDON_PULL", "OPERATOR_HOLD", "SCAN_RETRY"),
        mtbf_h=8.0,
        repair_median_min=12.0,
        microstop_every_min=9.0,
        microstop_median_s=45.0,
        starve_block_every_h=1.0,
        setup_min=(6.0, 12.0),
        ambient_c=23.0,
        temp_run_c=34.0,
        temp_tau_min=25.0,
        current_run_a=9.0,
        vibration_run_mm_s=1.1,
    ),
}

GENERIC_PROFILE = MachineProfile(
    fault_reasons=("MACHINE_FAULT", "CONVEYOR_JAM", "SENSOR_FAULT"),
    microstop_reasons=("MINOR_STOP",),
    mtbf_h=10.0,
    repair_median_min=12.0,
    microstop_every_min=10.0,
    microstop_median_s=30.0,
    starve_block_every_h=1.4,
    setup_min=(8.0, 20.0),
    ambient_c=23.0,
    temp_run_c=45.0,
    temp_tau_min=25.0,
    current_run_a=20.0,
    vibration_run_mm_s=2.0,
)


def profile_for(machine_type: str) -> MachineProfile:
    """The profile of a machine type; unknown types behave like a generic machine."""
    return PROFILES.get(machine_type, GENERIC_PROFILE)
