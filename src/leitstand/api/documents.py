"""Parsing uploaded YAML/JSON documents safely: no YAML aliases (no billion-laughs), clear errors."""

from __future__ import annotations

import orjson
import yaml

from leitstand.domain.errors import InputError


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases: an asset model never needs them, and a few kilobytes
    of nested aliases expand to gigabytes."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise InputError(f"YAML aliases are not accepted (line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def load_document(body: bytes | str, media_type: str) -> object:
    """Parse a JSON or YAML (`media_type` containing 'yaml') document, or raise InputError."""
    if "yaml" in media_type:
        try:
            return yaml.load(body, Loader=_NoAliasLoader)
        except yaml.YAMLError as exc:
            raise InputError(f"document is not valid YAML: {exc}") from exc
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"document is not valid JSON: {exc}") from exc
