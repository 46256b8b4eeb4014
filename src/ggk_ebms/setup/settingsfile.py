"""The commented settings file ``ggk-ebms init`` writes.

Each value carries the help text of its declaration in ggk_ebms/config.py above it, so the file
explains itself and stays in step with docs/configuration.md. Pure: values in, TOML text out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ggk_ebms.config import declared

# (heading, setting names) in the order the file shows them.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Wie wij zijn", ("party_ids", "served_gemeentecodes", "test_gemeentecodes")),
    ("Opslag", ("data_dir", "database_url", "cpa_dir", "outbox_dir", "routes_file")),
    ("Luisteren", ("host", "port", "path", "message_id_host")),
    (
        "Certificaten en sleutels (PKIoverheid)",
        (
            "tls_server_cert",
            "tls_server_key",
            "tls_client_cert",
            "tls_client_key",
            "tls_trust_store",
            "signing_key",
            "encryption_key",
            "key_passphrase_file",
        ),
    ),
    ("Logboek", ("log_format", "log_level")),
)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(values: Mapping[str, Any], *, organisation: str, oin: str, created: str, test_setup: bool) -> str:
    """The settings file text; ``values`` maps setting names to values (None: left out)."""
    helps = {f.name: str(f.metadata["help"]) for f in declared()}
    unknown = set(values) - set(helps)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    lines = [
        f"# ggk-ebms settings for {organisation} (OIN {oin})",
        f"# Written by `ggk-ebms init` on {created}. Every setting: docs/configuration.md.",
        "# Check after every change: ggk-ebms --config <this file> config check",
    ]
    if test_setup:
        lines.append("# TEST SET-UP: test certificates and/or a test OIN. Never use this file in production.")
    for heading, names in SECTIONS:
        shown = [n for n in names if n in values and values[n] is not None]
        if not shown:
            continue
        lines += ["", f"# --- {heading} " + "-" * max(3, 80 - len(heading) - 7)]
        for name in shown:
            lines += ["#"] + [f"# {line}" for line in textwrap.wrap(helps[name], 96)]
            lines.append(f"{name} = {_value(values[name])}")
    rest = [n for n in values if values[n] is not None and not any(n in names for _, names in SECTIONS)]
    if rest:
        lines += ["", "# --- Overig " + "-" * 69]
        for name in rest:
            lines += ["#"] + [f"# {line}" for line in textwrap.wrap(helps[name], 96)]
            lines.append(f"{name} = {_value(values[name])}")
    return "\n".join(lines) + "\n"
