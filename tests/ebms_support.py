"""Test helpers for the ebMS core: the reference CPA, the reference SOAP templates and the XSDs.

Everything is read from ../shared as an oracle (``require_shared``): the templates of the reference
adapter's integration test are filled in here the way its Thymeleaf engine would, with values of
the CPA ``cpaStubEBF.rm.http.unsigned.sync`` that the negative-case catalogue ran against
(docs/ebms.md catalogue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from lxml import etree

from conftest import require_shared
from ggk_ebms.clock import format_timestamp
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement

CATALOGUE_CPA = "cpaStubEBF.rm.http.unsigned.sync.xml"
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
OUR_PARTY_IDS = ("00000000000000000001",)  # the "Overheid" side receives in the catalogue


def shared_file(*parts: str) -> Path:
    return require_shared(*parts)


@cache
def _agreement_bytes() -> bytes:
    return shared_file("interop", "ebms-core", "cpas", CATALOGUE_CPA).read_bytes()


def catalogue_agreement() -> Agreement:
    return parse_agreement(_agreement_bytes())


@dataclass
class TemplateValues:
    """The variables of the reference templates, defaulting to a valid osb-rm message of the CPA:
    DIGIPOORT (00…0) sends ``afleveren`` of ``osb:afleveren:1.1$1.0`` to OVERHEID (00…1)."""

    cpa_id: str = "cpaStubEBF.rm.http.unsigned.sync"
    from_party_id: str = "00000000000000000000"
    to_party_id: str = "00000000000000000001"
    party_type: str = "urn:osb:oin"
    from_role: str = "DIGIPOORT"
    to_role: str = "OVERHEID"
    service: str = "osb:afleveren:1.1$1.0"
    service_type: str = "urn:osb:services"
    action: str = "afleveren"
    uuid: str = "6f1c7c0e-3b0a-4d4e-9a53-1f6f4c1f2a10"
    timestamp: datetime = NOW
    time_to_live: datetime = NOW + timedelta(hours=1)
    ref_to_message_id: str = "0a3d2b65-55f4-4d8d-8c2b-7d0e1c9e4f11"
    hrefs: list[str] = field(default_factory=lambda: ["cid:payload-1@localhost"])


def catalogue_values() -> TemplateValues:
    """Default values, checked against the CPA so the fixture cannot drift from it."""
    values = TemplateValues()
    agreement = catalogue_agreement()
    assert agreement.cpa_id == values.cpa_id
    sender = next(p for p in agreement.parties if p.party_ids[0].value == values.from_party_id)
    binding = next(b for b in sender.bindings if b.direction == "send" and b.action == values.action)
    assert (binding.role, binding.service, binding.service_type) == (
        values.from_role,
        values.service,
        values.service_type,
    )
    return values


_VARIABLE = re.compile(r"\[\[\$\{(\w+)\}\]\]")
_ATTRIBUTE_EXPRESSION = re.compile(r'th:(\w+:\w+)="\$\{(\w+)\}"')
_ATTRIBUTE_LITERAL = re.compile(r'th:(\w+:\w+)="(\w+)"')
_MANIFEST = re.compile(
    r'(<eb:Manifest [^>]*?)\s*th:each="cid: \$\{cids\}">\s*'
    r"<eb:Reference th:xlink:href=\"\$\{'cid:' \+ cid\}\" xlink:type=\"simple\"/>"
)


def render_template(name: str, values: TemplateValues | None = None) -> bytes:
    """Fill one reference template as Thymeleaf would: ``[[${x}]]`` text, ``th:eb:type="${x}"``
    attributes, and the Manifest's ``th:each`` as one eb:Reference per href."""
    values = values or catalogue_values()
    text = shared_file("interop", "ebms-core", "soap-templates", name).read_text("utf-8")
    variables = {
        "cpaId": values.cpa_id,
        "fromPartyId": values.from_party_id,
        "toPartyId": values.to_party_id,
        "partyType": values.party_type,
        "fromRole": values.from_role,
        "toRole": values.to_role,
        "service": values.service,
        "serviceType": values.service_type,
        "action": values.action,
        "uuid": values.uuid,
        "timestamp": format_timestamp(values.timestamp),
        "timeToLive": format_timestamp(values.time_to_live),
        "refToMessageId": values.ref_to_message_id,
    }

    def references(match: re.Match[str]) -> str:
        refs = "".join(f'<eb:Reference xlink:href="{_attr(h)}" xlink:type="simple"/>' for h in values.hrefs)
        return f"{match[1]}>{refs}"

    text = _MANIFEST.sub(references, text)
    text = _ATTRIBUTE_EXPRESSION.sub(lambda m: f'{m[1]}="{_attr(variables[m[2]])}"', text)
    text = _ATTRIBUTE_LITERAL.sub(lambda m: f'{m[1]}="{m[2]}"', text)
    text = _VARIABLE.sub(lambda m: _text(variables[m[1]]), text)
    if "th:" in text or "${" in text:
        raise AssertionError(f"unfilled placeholder left in {name}")
    return text.encode("utf-8")


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;")


@cache
def envelope_schema() -> etree.XMLSchema:
    """SOAP 1.1 envelope + ebMS msg-header XSDs from ../shared, compiled without network access.

    A driver schema imports both by file URI, so the Header/Body wildcards (lax) validate the eb
    blocks against the official definitions.
    """
    folder = shared_file("spec", "ebms-xsd", "ebms-core-local")
    driver = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="http://schemas.xmlsoap.org/soap/envelope/"
                 schemaLocation="{(folder / "envelope.xsd").as_uri()}"/>
      <xs:import namespace="http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
                 schemaLocation="{(folder / "msg-header-2_0.xsd").as_uri()}"/>
    </xs:schema>""".encode()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.fromstring(driver, parser, base_url=folder.as_uri() + "/"))


def schema_errors(envelope: bytes) -> list[str]:
    """Empty when ``envelope`` is valid against the official XSDs, else the validator's messages."""
    schema = envelope_schema()
    document = etree.fromstring(envelope, etree.XMLParser(no_network=True, resolve_entities=False))
    if schema.validate(document):
        return []
    return [f"{e.line}: {e.message}" for e in schema.error_log]
