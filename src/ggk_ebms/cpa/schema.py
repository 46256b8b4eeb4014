"""Schema validation of CPAs: our own CPPA 2.0 schema, or the official XSD when configured.

The built-in schema (``ggk_ebms/schemas/cpa-digikoppeling.xsd``) is our own description of the
CPPA 2.0 agreement as Digikoppeling uses it; setting ``cpa_schema`` names the OASIS
``cpp-cpa-2_0.xsd`` instead. Either way loading must not reach out (docs/rules.md "XSD loader reading
files"): every schema document is read through the hardened parser, every ``xs:import`` and
``xs:include`` must name a file inside the schema's own folder, and the whole set is checked before
libxml2 compiles it, so a schema cannot pull in a URL, a DTD or a file elsewhere on disk. Each
schema is compiled once per process.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

from lxml import etree

from ggk_ebms.errors import ConfigError, XmlError
from ggk_ebms.xml import parse

BUILTIN_SCHEMA: Final = Path(__file__).resolve().parent.parent / "schemas" / "cpa-digikoppeling.xsd"
_XS: Final = "http://www.w3.org/2001/XMLSchema"
_MAX_SCHEMA_BYTES: Final = 2 * 1024 * 1024


@dataclass(frozen=True)
class SchemaProblem:
    """One schema violation: where (a path of local names) and libxml2's message."""

    location: str
    line: int
    message: str


def load_schema(path: Path | None = None) -> etree.XMLSchema:
    """The compiled schema at ``path`` (default: the built-in one); compiled once per path."""
    return _compile((path or BUILTIN_SCHEMA).resolve())


@functools.lru_cache(maxsize=4)
def _compile(path: Path) -> etree.XMLSchema:
    folder = path.parent
    root = _checked_closure(path, folder)
    try:
        return etree.XMLSchema(root.getroottree())
    except etree.XMLSchemaParseError as exc:
        raise ConfigError(f"CPA schema {path} does not compile: {str(exc)[:300]}") from None


def _read_schema_document(path: Path) -> etree._Element:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"CPA schema file {path} cannot be read: {exc.strerror}") from None
    try:
        root = parse(data, max_bytes=_MAX_SCHEMA_BYTES, what=f"schema {path.name}")
    except XmlError as exc:
        raise ConfigError(str(exc)) from None
    root.getroottree().docinfo.URL = path.as_uri()
    return root


def _checked_closure(path: Path, folder: Path) -> etree._Element:
    """Read ``path`` and every schema it imports; refuse any location outside ``folder``."""
    seen: dict[Path, etree._Element] = {}
    pending = [path]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        root = _read_schema_document(current)
        seen[current] = root
        for directive in root.iter(f"{{{_XS}}}import", f"{{{_XS}}}include", f"{{{_XS}}}redefine"):
            location = directive.get("schemaLocation")
            if location is None:
                continue  # a namespace-only import loads nothing
            pending.append(_inside(current, location, folder))
    return seen[path]


def _inside(referrer: Path, location: str, folder: Path) -> Path:
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location):
        raise ConfigError(
            f"schema {referrer.name} imports {location!r}: only files in {folder} are loaded, never URLs"
        )
    target = (referrer.parent / location).resolve()
    if not target.is_relative_to(folder):
        raise ConfigError(f"schema {referrer.name} imports {location!r}, which is outside {folder}")
    if not target.is_file():
        raise ConfigError(f"schema {referrer.name} imports {location!r}, which does not exist in {folder}")
    return target


def schema_problems(root: etree._Element, schema: etree.XMLSchema) -> list[SchemaProblem]:
    """Every violation of ``schema`` by the document of ``root``; empty when it is valid."""
    if schema.validate(root.getroottree()):
        return []
    return [
        SchemaProblem(location=_plain_path(entry.path), line=entry.line, message=_message(entry.message))
        for entry in cast("Iterable[etree._LogEntry]", schema.error_log)
    ]


def _plain_path(path: str | None) -> str:
    """``/tns:CollaborationProtocolAgreement/tns:PartyInfo[2]`` -> without prefixes."""
    if not path:
        return "/"
    return re.sub(r"(?<=/)[A-Za-z_][\w.-]*:", "", path)


def _message(text: str) -> str:
    # libxml2 writes names in Clark notation; the CPPA namespace adds only noise for a reader.
    return text.replace("{http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd}", "")[:400]
