"""Tell what an iWmo/iJw/iEb payload is from its root namespace, and check it against its envelope.

Detection (iStandaarden namespaces): the root is always ``Bericht`` in
``http://www.istandaarden.nl/<std>/<R>_<r>/<msg>/schema``; that gives standard, release and
berichttype without opening anything else. The header then gives BerichtCode, versions, the two
party codes and BerichtIdentificatie, all safe to log (iStandaarden
privacy elements, docs/rules.md); nothing below the header is read.

``check_against_envelope`` is step 12 of the inbound table (GGk handleiding; docs/stuf-routing.md inbound
checks): the payload must say what the
envelope says (functie, BerichtCode per catalogue, gemeentecode in the header field the iWmo/iJw 3.2 message
catalogue names, and the addressee, cf. VECOZO CC09). Versions are compared as a warning only (*inferred*; the
StUF-GGk spec does not say so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from lxml import etree

from ggk_ebms.errors import StufError, XmlError
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue, CatalogueEntry, Party, Standaard
from ggk_ebms.stuf.codes import StufCode
from ggk_ebms.stuf.model import StufMessage
from ggk_ebms.xml import local_name, namespace_of, parse

MAX_PAYLOAD_BYTES: Final = 25 * 1024 * 1024
NAMESPACE: Final = re.compile(
    r"^http://www\.istandaarden\.nl/(iwmo|ijw|ieb)/(\d+)_(\d+)/((?:wmo|jw)\d{3})/schema(?:/\d+_\d+)?$"
)
_HEADER_FIELDS: Final = ("BerichtCode", "BerichtVersie", "BerichtSubversie", "Afzender", "Ontvanger")
_LEGACY_FIELDS: Final = ("Gemeente", "Aanbieder")


@dataclass(frozen=True)
class PayloadInfo:
    """What the payload says about itself. Holds header values only, no client data."""

    namespace: str
    standaard: Standaard
    release: str  # "3.2"
    berichttype: str  # "WMO301", "JW315"
    bericht_code: str | None
    bericht_versie: str | None
    bericht_subversie: str | None
    header: tuple[tuple[str, str], ...]  # Afzender/Ontvanger (or Gemeente/Aanbieder) and their values
    identificatie: str | None = None
    dagtekening: str | None = None
    basisschema_xsd_versie: str | None = None
    bericht_xsd_versie: str | None = None

    @property
    def schema_folder(self) -> str:
        """Folder name of this release's XSDs: ``iwmo_3_2`` (laid out as ``<std>_<R>_<r>/xsd``)."""
        return f"{self.standaard.value}_{self.release.replace('.', '_')}"

    def header_value(self, name: str) -> str | None:
        return dict(self.header).get(name)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One disagreement between payload and envelope. ``message`` quotes header values only."""

    rule: str
    severity: Severity
    message: str


def detect(payload: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> PayloadInfo:
    """Read the root namespace and header. Raises ``StufError`` StUF055 (docs/stuf-routing.md inbound check
    12)."""
    try:
        root = parse(payload, max_bytes=max_bytes, what="payload")
    except XmlError as exc:
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, str(exc)) from None
    return detect_root(root)


def detect_root(root: etree._Element) -> PayloadInfo:
    """``detect`` for a payload already parsed by ``ggk_ebms.xml.parse``."""
    namespace, local = namespace_of(root) or "", local_name(root)
    match = NAMESPACE.fullmatch(namespace)
    if match is None:
        raise StufError(
            StufCode.NOT_SCHEMA_CONFORM, f"payload namespace {namespace!r} is no known iStandaarden message"
        )
    if local != "Bericht":
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, f"payload root is {local!r}, not Bericht")
    std, major, minor, msg = match.groups()
    header = root.find(f"{{{namespace}}}Header")
    values: dict[str, str] = {}
    if header is not None:
        for child in header:
            if not isinstance(child.tag, str):
                continue
            name = local_name(child)
            if name in (*_HEADER_FIELDS, *_LEGACY_FIELDS):
                values[name] = (child.text or "").strip()
            elif name == "BerichtIdentificatie":
                values["Identificatie"] = _child_text(child, "Identificatie") or ""
                values["Dagtekening"] = _child_text(child, "Dagtekening") or ""
            elif name == "DeclaratieFactuurIdentificatie" and "Identificatie" not in values:
                # Legacy 303/304 (iWmo/iJw 2.x) name no BerichtIdentificatie: the declarant's
                # factuurnummer identifies the declaratie and is copied into its 304 retour.
                values["Identificatie"] = _child_text(child, "DeclarantFactuurNummer") or ""
                values["Dagtekening"] = _child_text(child, "FactuurDagtekening") or ""
            elif name == "XsdVersie":
                values["BasisschemaXsdVersie"] = _child_text(child, "BasisschemaXsdVersie") or ""
                values["BerichtXsdVersie"] = _child_text(child, "BerichtXsdVersie") or ""
    parties = tuple(
        (name, values[name]) for name in ("Afzender", "Ontvanger", *_LEGACY_FIELDS) if name in values
    )
    return PayloadInfo(
        namespace=namespace,
        standaard=Standaard(std),
        release=f"{int(major)}.{int(minor)}",
        berichttype=msg.upper(),
        bericht_code=values.get("BerichtCode"),
        bericht_versie=values.get("BerichtVersie"),
        bericht_subversie=values.get("BerichtSubversie"),
        header=parties,
        identificatie=values.get("Identificatie") or None,
        dagtekening=values.get("Dagtekening") or None,
        basisschema_xsd_versie=values.get("BasisschemaXsdVersie") or None,
        bericht_xsd_versie=values.get("BerichtXsdVersie") or None,
    )


def _child_text(parent: etree._Element, local: str) -> str | None:
    for child in parent:
        if isinstance(child.tag, str) and local_name(child) == local:
            return (child.text or "").strip()
    return None


def envelope_gemeentecode(envelope: StufMessage, entry: CatalogueEntry) -> str:
    """The gemeentecode in the envelope: zender when the gemeente sends this berichttype, else ontvanger."""
    sg = envelope.stuurgegevens
    return sg.zender.organisatie if entry.sender is Party.GEMEENTE else sg.ontvanger.organisatie


def envelope_other_party(envelope: StufMessage, entry: CatalogueEntry) -> str:
    sg = envelope.stuurgegevens
    return sg.ontvanger.organisatie if entry.sender is Party.GEMEENTE else sg.zender.organisatie


def check_against_envelope(
    info: PayloadInfo, envelope: StufMessage, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[Finding]:
    """Every way the payload disagrees with its envelope (iStandaarden namespaces cross-check,
    docs/stuf-routing.md inbound check
    12)."""
    findings: list[Finding] = []

    def error(rule: str, message: str) -> None:
        findings.append(Finding(rule, Severity.ERROR, message))

    def warning(rule: str, message: str) -> None:
        findings.append(Finding(rule, Severity.WARNING, message))

    functie = envelope.functie or ""
    if functie.upper() != info.berichttype:
        error("functie", f"envelope functie {functie!r} but the payload is a {info.berichttype}")
    entry = catalogue.get(info.berichttype)
    if entry is None:
        error("catalogue", f"berichttype {info.berichttype} is not in the message catalogue")
        return findings
    if entry.standaard is not info.standaard:
        error(
            "standaard", f"{info.berichttype} belongs to {entry.standaard.value}, not {info.standaard.value}"
        )
    if entry.berichtcodes and info.bericht_code not in entry.berichtcodes:
        expected = "/".join(entry.berichtcodes)
        error(
            "berichtcode",
            f"Header/BerichtCode {info.bericht_code!r} is not {expected} for {entry.berichttype}",
        )
    if envelope.kind is not entry.envelope:
        rule = warning if entry.envelope_inferred else error
        carried = f"{entry.berichttype} ({entry.soort.value}) travels in {entry.envelope.value}"
        rule("envelope", f"{carried}, not in {envelope.kind.value}")
    gemeente = info.header_value(entry.gemeente_field.value)
    expected_gemeente = envelope_gemeentecode(envelope, entry)
    if gemeente != expected_gemeente:
        error(
            "gemeentecode",
            f"Header/{entry.gemeente_field.value} {gemeente!r} differs from the envelope gemeentecode "
            f"{expected_gemeente!r}",
        )
    other = entry.other_field
    if other is not None:
        agb = info.header_value(other)
        expected_other = envelope_other_party(envelope, entry)
        if agb != expected_other:  # VECOZO CC09: addressee in header and envelope must agree
            error("addressee", f"Header/{other} {agb!r} differs from the envelope party {expected_other!r}")
    if info.release not in entry.releases:
        warning("release", f"release {info.release} of {entry.berichttype} is not one we have verified")
    params = envelope.parameters
    if params is not None and info.bericht_versie is not None and info.bericht_subversie is not None:
        wanted = (_pad(info.bericht_versie), _pad(info.bericht_subversie))
        if (params.functie_versie, params.functie_subversie) != wanted:
            warning(
                "versie",
                f"functieVersie/Subversie {params.functie_versie}/{params.functie_subversie} differ from "
                f"BerichtVersie/Subversie {info.bericht_versie}/{info.bericht_subversie}",
            )
    return findings


def _pad(value: str) -> str:
    return value.zfill(4) if value.isdigit() else value
