"""ISA-95 equipment hierarchy: enterprise › site › area › line › machine, with signals on assets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from leitstand.domain.calendar import parse_calendar
from leitstand.domain.errors import InputError
from leitstand.domain.time_model import StateMapping, parse_state_codes, parse_state_mapping

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class AssetLevel(StrEnum):
    """ISA-95 equipment levels, top down."""

    ENTERPRISE = "enterprise"
    SITE = "site"
    AREA = "area"
    LINE = "line"
    MACHINE = "machine"

    @property
    def depth(self) -> int:
        return _LEVEL_ORDER.index(self)

    @property
    def child(self) -> AssetLevel | None:
        depth = self.depth
        return _LEVEL_ORDER[depth + 1] if depth + 1 < len(_LEVEL_ORDER) else None


_LEVEL_ORDER = list(AssetLevel)


def check_id(value: object, what: str) -> str:
    """Return `value` if it is a valid stable id (topic- and URL-safe), else raise InputError."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InputError(
            f"{what} {value!r} is not a valid id: 1-64 characters of letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Signal:
    """A measured quantity on an asset, e.g. `temperature` in `degC`."""

    name: str
    unit: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Asset:
    """One node of the hierarchy. `id` is stable; `path` is the ISA-95 path of ids from the enterprise."""

    id: str
    level: AssetLevel
    name: str
    parent_id: str | None
    path: str
    machine_type: str = ""
    timezone: str = ""
    ideal_cycle_s: float | None = None
    signals: tuple[Signal, ...] = ()


@dataclass(frozen=True, slots=True)
class Product:
    """A product with its ideal cycle time (ISO 22400 PRI, seconds per unit) on each machine."""

    id: str
    name: str
    ideal_cycle_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AssetModel:
    """A whole imported model: the assets of one enterprise, the site calendars and the products."""

    assets: tuple[Asset, ...]
    calendars: dict[str, dict[str, object]]
    products: tuple[Product, ...]
    state_mapping: StateMapping = field(default_factory=StateMapping)

    def by_level(self, level: AssetLevel) -> Iterator[Asset]:
        return (a for a in self.assets if a.level is level)


def parse_asset_model(doc: object) -> AssetModel:
    """Turn a parsed YAML/JSON asset model into assets, calendars and products, or raise InputError.

    The format nests levels: `enterprise`, `sites[].areas[].lines[].machines[]`; see docs/data-model.md.
    """
    if not isinstance(doc, dict):
        raise InputError("asset model must be a mapping with 'enterprise' and 'sites'")
    enterprise = doc.get("enterprise")
    if not isinstance(enterprise, dict):
        raise InputError("asset model: 'enterprise' must be a mapping with 'id' and 'name'")
    assets: list[Asset] = []
    calendars: dict[str, dict[str, object]] = {}
    root = _node(enterprise, AssetLevel.ENTERPRISE, None, "", "enterprise")
    assets.append(root)
    sites = doc.get("sites", [])
    _walk(sites, AssetLevel.SITE, root, "sites", assets, calendars)
    seen: set[str] = set()
    for asset in assets:
        if asset.id in seen:
            raise InputError(f"asset model: id {asset.id!r} is used more than once")
        seen.add(asset.id)
    products = tuple(
        _product(p, i, seen) for i, p in enumerate(_as_list(doc.get("products", []), "products"))
    )
    return AssetModel(
        assets=tuple(assets),
        calendars=calendars,
        products=products,
        state_mapping=_state_mapping(doc, sites),
    )


def _state_mapping(doc: dict[str, object], sites: object) -> StateMapping:
    """The model's own state codes: `state_mapping` at the top, per machine type under
    `machine_types.<type>.state_mapping`, per site under `sites[].state_mapping`; and `waiting_states`,
    its own codes in which a machine waits for others (for the bottleneck analysis)."""
    enterprise = parse_state_mapping(doc.get("state_mapping", {}), "state_mapping")
    types_doc = doc.get("machine_types", {})
    if not isinstance(types_doc, dict):
        raise InputError("asset model: machine_types must be a mapping of type names to settings")
    machine_types = {}
    for name, settings in types_doc.items():
        if not isinstance(name, str) or not isinstance(settings, dict):
            raise InputError(f"asset model: machine_types.{name} must be a mapping")
        where = f"machine_types.{name}.state_mapping"
        machine_types[name] = parse_state_mapping(settings.get("state_mapping", {}), where)
    per_site = {}
    for i, site in enumerate(sites if isinstance(sites, list) else []):
        if isinstance(site, dict) and "state_mapping" in site:
            per_site[str(site.get("id"))] = parse_state_mapping(
                site["state_mapping"], f"sites[{i}].state_mapping"
            )
    waiting = parse_state_codes(doc.get("waiting_states", []), "waiting_states")
    return StateMapping(enterprise, machine_types, per_site, waiting)


_CHILD_KEYS = {AssetLevel.SITE: "areas", AssetLevel.AREA: "lines", AssetLevel.LINE: "machines"}


def _walk(
    items: object,
    level: AssetLevel,
    parent: Asset,
    where: str,
    out: list[Asset],
    calendars: dict[str, dict[str, object]],
) -> None:
    for i, item in enumerate(_as_list(items, where)):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"asset model: {here} must be a mapping")
        asset = _node(item, level, parent, parent.path, here)
        if level is AssetLevel.SITE:
            calendar = item.get("calendar")
            if calendar is not None:
                if not isinstance(calendar, dict):
                    raise InputError(f"asset model: {here}.calendar must be a mapping")
                try:
                    parse_calendar(calendar, asset.timezone)
                except InputError as exc:
                    raise InputError(f"asset model: {here}.{exc}") from exc
                calendars[asset.id] = calendar
            else:
                parse_calendar(None, asset.timezone)  # the time zone must exist even without a calendar
        out.append(asset)
        child_key = _CHILD_KEYS.get(level)
        child_level = level.child
        if child_key and child_level:
            _walk(item.get(child_key, []), child_level, asset, f"{here}.{child_key}", out, calendars)


def _node(item: dict[str, object], level: AssetLevel, parent: Asset | None, prefix: str, where: str) -> Asset:
    asset_id = check_id(item.get("id"), f"asset model: {where}.id")
    name = item.get("name", asset_id)
    if not isinstance(name, str):
        raise InputError(f"asset model: {where}.name must be a string")
    timezone = item.get("timezone", parent.timezone if parent else "UTC")
    if level is AssetLevel.SITE and not isinstance(item.get("timezone"), str):
        raise InputError(
            f"asset model: {where}.timezone is required for a site (an IANA name like Europe/Berlin)"
        )
    if not isinstance(timezone, str):
        raise InputError(f"asset model: {where}.timezone must be a string")
    ideal = item.get("ideal_cycle_s")
    if ideal is not None and (not isinstance(ideal, int | float) or isinstance(ideal, bool) or ideal <= 0):
        raise InputError(f"asset model: {where}.ideal_cycle_s must be a positive number of seconds")
    machine_type = item.get("type", "")
    if not isinstance(machine_type, str):
        raise InputError(f"asset model: {where}.type must be a string")
    signals = tuple(
        _signal(s, f"{where}.signals[{j}]") for j, s in enumerate(_as_list(item.get("signals", []), where))
    )
    return Asset(
        id=asset_id,
        level=level,
        name=name,
        parent_id=parent.id if parent else None,
        path=f"{prefix}/{asset_id}" if prefix else asset_id,
        machine_type=machine_type,
        timezone=timezone,
        ideal_cycle_s=float(ideal) if ideal is not None else None,
        signals=signals,
    )


def _signal(item: object, where: str) -> Signal:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise InputError(f"asset model: {where} must be a name or a mapping with 'name' and 'unit'")
    name = check_id(item.get("name"), f"asset model: {where}.name")
    unit = item.get("unit", "")
    description = item.get("description", "")
    if not isinstance(unit, str) or not isinstance(description, str):
        raise InputError(f"asset model: {where}.unit and .description must be strings")
    return Signal(name=name, unit=unit, description=description)


def _product(item: object, i: int, asset_ids: set[str]) -> Product:
    where = f"products[{i}]"
    if not isinstance(item, dict):
        raise InputError(f"asset model: {where} must be a mapping")
    product_id = check_id(item.get("id"), f"asset model: {where}.id")
    name = item.get("name", product_id)
    cycles = item.get("ideal_cycle_s", {})
    if not isinstance(name, str) or not isinstance(cycles, dict):
        raise InputError(f"asset model: {where} needs a string 'name' and a mapping 'ideal_cycle_s'")
    parsed: dict[str, float] = {}
    for machine_id, seconds in cycles.items():
        if machine_id not in asset_ids:
            raise InputError(f"asset model: {where}.ideal_cycle_s names unknown machine {machine_id!r}")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
            raise InputError(f"asset model: {where}.ideal_cycle_s[{machine_id!r}] must be a positive number")
        parsed[machine_id] = float(seconds)
    return Product(id=product_id, name=name, ideal_cycle_s=parsed)


def _as_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise InputError(f"asset model: {where} must be a list")
    return value


def descendants(assets: Iterable[Asset], root_id: str) -> set[str]:
    """Ids of `root_id` and everything below it."""
    children: dict[str | None, list[str]] = {}
    for a in assets:
        children.setdefault(a.parent_id, []).append(a.id)
    found, stack = set(), [root_id]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(children.get(current, []))
    return found
