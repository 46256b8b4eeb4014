"""Write a routes.toml document (the dict ``tomllib`` reads) back as TOML text.

``routes set/disable/enable`` change one route in the document of the table in force and store
the result as a new table, so the stored text stays the one description of the routes
(docs/stuf-routing.md) and ``parse_routes`` checks every change exactly as it checks an import.
Only what routes.toml uses is written: tables, arrays of tables, inline tables, strings,
booleans, numbers and lists of those.
"""

from __future__ import annotations

import json
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (same escapes), non-ASCII kept as is.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to routes.toml")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _table(values: dict[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in values.items()]


def dump_routes(document: dict[str, Any]) -> str:
    lines: list[str] = []
    for key, value in document.items():
        if isinstance(value, dict):
            lines += [f"[{_key(key)}]", *_table(value), ""]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines += [f"[[{_key(key)}]]", *_table(item), ""]
        else:
            lines.insert(0, f"{_key(key)} = {_value(value)}")
    return "\n".join(lines).rstrip() + "\n"
