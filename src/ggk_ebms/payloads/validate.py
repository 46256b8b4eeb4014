"""Validate an iWmo/iJw/iEb payload against its official XSD, with errors fit to log.

The XSDs come from a folder laid out as ``<std>_<R>_<r>/xsd/<MSG>.xsd`` (an unpacked iStandaarden
release; setting ``payload_schemas``). Each schema is compiled once, on first use, with a parser
that never touches the network and a resolver that only serves files inside that folder, so an
``xs:import`` cannot reach out (docs/rules.md, "Known hazards": a schema loader that reads files).

lxml's XSD errors quote the offending value (a BSN, a name, a date of birth): every quoted value is
replaced by ``'…'`` and only element names, types, facets and patterns are kept (iStandaarden privacy
elements, docs/rules.md), so the
texts can go in logs and in a Fo01 ``omschrijving``/``details``.

Without a schema folder (or without the XSD of that message) only structural checks run: root
``Bericht``, a ``Header``, and a BerichtCode that fits the catalogue.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Final

from lxml import etree

from ggk_ebms.errors import ConfigError, XmlError
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue
from ggk_ebms.payloads.detect import MAX_PAYLOAD_BYTES, PayloadInfo
from ggk_ebms.xml import local_name, parse

_QUOTED: Final = re.compile(r"'([^']*)'")
# A quoted token right after one of these words names a schema thing, not a document value.
_NAMES_A_SCHEMA_THING: Final = re.compile(r"(?:Element|element|attribute|type|facet|pattern)\s$")
_CLARK: Final = re.compile(r"\{[^}'\s]*[:/][^}'\s]*\}")  # {namespace-uri}, not a {9} quantifier
MAX_ERRORS: Final = 50


def scrub_schema_error(message: str) -> str:
    """Remove document values from an lxml XSD error, keeping names
    and the rule (iStandaarden privacy elements, docs/rules.md)."""

    def replace(match: re.Match[str]) -> str:
        preceding = message[max(0, match.start() - 12) : match.start()]
        if _NAMES_A_SCHEMA_THING.search(preceding):
            return "'" + _CLARK.sub("", match.group(1)) + "'"
        return "'…'"

    return _CLARK.sub("", _QUOTED.sub(replace, message))


class _FolderResolver(etree.Resolver):
    """Serve ``xs:import``/``xs:include`` only from files inside ``root``; refuse everything else."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.refused: list[str] = []

    def resolve(self, system_url: str, public_id: str, context: object) -> object:  # type: ignore[override]
        path = Path(system_url.removeprefix("file://")).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            # Raising here only makes libxml2 report a failed load; keep our reason for the error.
            self.refused.append(system_url)
            raise ConfigError(f"schema import {system_url!r} is outside the schema folder {self.root}")
        return self.resolve_filename(str(path), context)  # type: ignore[attr-defined]


class PayloadSchemas:
    """The XSDs of one or more iStandaarden releases, compiled lazily and cached."""

    def __init__(self, root: Path, catalogue: Catalogue = DEFAULT_CATALOGUE) -> None:
        self.root = root.resolve()
        self.catalogue = catalogue
        self._schemas: dict[Path, etree.XMLSchema] = {}
        self._lock = threading.Lock()

    def schema_path(self, info: PayloadInfo) -> Path:
        # Folder and file names come from the namespace regex (letters and digits only): no traversal.
        return self.root / info.schema_folder / "xsd" / f"{info.berichttype}.xsd"

    def has_schema(self, info: PayloadInfo) -> bool:
        return self.schema_path(info).is_file()

    def schema(self, info: PayloadInfo) -> etree.XMLSchema | None:
        """The compiled schema for ``info``, or None when the folder has no XSD for it."""
        path = self.schema_path(info)
        with self._lock:
            cached = self._schemas.get(path)
            if cached is not None:
                return cached
            if not path.is_file():
                return None
            schema = self._compile(path)
            self._schemas[path] = schema
            return schema

    def _compile(self, path: Path) -> etree.XMLSchema:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, collect_ids=False
        )
        resolver = _FolderResolver(self.root)
        parser.resolvers.add(resolver)
        try:
            document = etree.parse(str(path), parser)
            return etree.XMLSchema(document)
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError, OSError, ConfigError) as exc:
            if resolver.refused:
                refused = resolver.refused[0]
                raise ConfigError(
                    f"payload schema {path} imports {refused}, outside the schema folder"
                ) from None
            raise ConfigError(
                f"payload schema {path} cannot be used: {str(exc).splitlines()[0][:200]}"
            ) from None

    def check(self, schema: etree.XMLSchema, root: etree._Element) -> list[str]:
        """Scrubbed errors of ``root`` against ``schema``; the error log is per schema, so lock."""
        with self._lock:
            if schema.validate(root):
                return []
            entries = [(entry.line, entry.path, entry.message) for entry in schema.error_log]  # type: ignore[attr-defined]
        return [f"line {line}: {path}: {scrub_schema_error(message)}" for line, path, message in entries]

    def validate(self, payload: bytes, info: PayloadInfo) -> list[str]:
        return validate(payload, info, self)


def validate(
    payload: bytes,
    info: PayloadInfo,
    schemas: PayloadSchemas | None = None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> list[str]:
    """Error messages, free of personal data; empty when the
    payload is valid (docs/stuf-routing.md inbound check 13)."""
    try:
        root = parse(payload, max_bytes=MAX_PAYLOAD_BYTES, what="payload")
    except XmlError as exc:
        return [str(exc)]
    return validate_tree(root, info, schemas, catalogue)


def validate_tree(
    root: etree._Element,
    info: PayloadInfo,
    schemas: PayloadSchemas | None = None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> list[str]:
    """``validate`` on a payload parsed already (the whole tree: an XSD reads every element), so
    the receiver parses it once for detection and validation."""
    schema = schemas.schema(info) if schemas is not None else None
    if schema is None:
        return _structural_errors(root, info, catalogue)
    assert schemas is not None  # a schema only comes from a PayloadSchemas
    errors = schemas.check(schema, root)
    if len(errors) > MAX_ERRORS:
        errors = [*errors[:MAX_ERRORS], f"… and {len(errors) - MAX_ERRORS} more schema errors"]
    return errors


def structural_errors(
    root: etree._Element, info: PayloadInfo, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[str]:
    """The checks that run without an XSD; they read only the root and its Header, so ``root`` may
    be an outline of the payload (``ggk_ebms.xml.parse_outline``)."""
    return _structural_errors(root, info, catalogue)


def _structural_errors(root: etree._Element, info: PayloadInfo, catalogue: Catalogue) -> list[str]:
    errors: list[str] = []
    if local_name(root) != "Bericht":
        errors.append(f"root element is {local_name(root)}, not Bericht")
    if root.find(f"{{{info.namespace}}}Header") is None:
        errors.append("Bericht has no Header")
    entry = catalogue.get(info.berichttype)
    if entry is None:
        errors.append(f"berichttype {info.berichttype} is not in the message catalogue")
    elif entry.berichtcodes and info.bericht_code not in entry.berichtcodes:
        expected = "/".join(entry.berichtcodes)
        errors.append(f"Header/BerichtCode {info.bericht_code!r} is not {expected} for {info.berichttype}")
    return errors
