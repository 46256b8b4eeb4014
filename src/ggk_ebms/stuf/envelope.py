"""Parse StUF-GGk Di01/Du01 envelopes and StUF Fo01/Fo03/Bv03; build ggk0210 Di01/Du01/Fo01.

Reading follows the inbound steps of the GGk handleiding (docs/stuf-routing.md): the bytes go through the one
hardened parser (step 2), the root decides what the message is (step 3), the fields are checked
against the envelope schema of that version (step 4, re-stated here field by field so no XSD has
to be shipped) and the payload is decoded strictly (step 10). A refusal is a ``StufError`` with the
foutcode; when the stuurgegevens could be read they travel along so a Fo01 can be addressed.

Building always produces the current envelope (ggk0210, spec 2.1.04 patch 4) as the StUF-GGk spec fills it and
our outbound wrap (docs/stuf-routing.md) orders it: lowercase UUID v4 referentienummer, ``yyyyMMddHHmmssfff``
local time, payload base64 in ``xmlBestand`` (or ``tekstBestand`` with a bestandsnaam), at most 25 000 000
bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from lxml import etree

from ggk_ebms import ns
from ggk_ebms.clock import IdGenerator
from ggk_ebms.errors import StufError, XmlTooLargeError
from ggk_ebms.spool import SpooledRange, size_of, whole
from ggk_ebms.stuf.codes import GGK_TOO_LARGE, StufCode
from ggk_ebms.stuf.model import (
    BuiltMessage,
    Fout,
    MessageKind,
    Parameters,
    Payload,
    PayloadKind,
    StufMessage,
    Stuurgegevens,
    Systeem,
)
from ggk_ebms.stuf.versions import EnvelopeVersion, version_for_namespace
from ggk_ebms.xml import TextSink, parse, parse_large_text, parse_streaming_text, qname

MIB: Final = 1024 * 1024
# The GGk limit counts the whole StUF XML, base64 payload included, not the decoded payload
# (Specificaties GGk 2.1.04 versie 4: at most 25 MB per StUF envelope; the GGk answers a larger
# one with Fo01 IB003). The spec does not say whether MB is 10^6 or 2^20 bytes, so we are strict
# in what we send (25 000 000 bytes) and lenient in what we accept (25 MiB). docs/delivery.md
# "Message size".
MAX_RECEIVE_BYTES: Final = 25 * MIB
MAX_SEND_BYTES: Final = 25_000_000
# How far into an over-limit envelope we read to find its stuurgegevens, which come first
# (ggk0210 sequence: stuurgegevens, parameters): enough to address the Fo01, no more.
_HEAD_BYTES: Final = 64 * 1024
_FO01_OVERHEAD: Final = 16 * 1024  # a Fo01 around its detailsXML: stuurgegevens, body, texts

UTF8_BOM: Final = b"\xef\xbb\xbf"
# ggk0210 XSD pattern on referentienummer and crossRefnummer (Di01/Du01, spec 2.1.04).
UUID4: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TIJDSTIP: Final = re.compile(r"[0-9]{8,17}")  # StUF:Tijdstip
VERSIENR: Final = re.compile(r"[0-9]{4}")  # StUF:Versienr
BESTANDSNAAM: Final = re.compile(r"[A-Za-z0-9\-._]{4,255}")  # ggk0210 bestandsnaampattern
FUNCTIE_WITH_VERSION: Final = re.compile(r"([A-Za-z]+[0-9]{3})-([0-9]{4})")  # 2.0: WMO301-0204
FOUTPLEK: Final = ("client", "server")  # StUF:Foutplek
# StUF's envelope timestamps are Dutch local time (spec 2.1.04: tijdstipBericht "lokale tijd").
LOCAL_TIME: Final = ZoneInfo("Europe/Amsterdam")

_ROOT_DI01: Final = "envelopHeenbericht-ggk_Di01"
_ROOT_DU01: Final = "envelopRetourbericht-ggk_Du01"
_STUF_ROOTS: Final = {
    "Fo01Bericht": MessageKind.FO01,
    "Fo03Bericht": MessageKind.FO03,
    "Bv03Bericht": MessageKind.BV03,
}
_SOAP_WRAPPERS: Final = (
    qname(ns.SOAP_ENV, "Envelope"),
    qname(ns.SOAP_ENV, "Body"),
)
_SOAP_HEADER: Final = qname(ns.SOAP_ENV, "Header")
_DOCTYPE_OR_ENTITY: Final = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_VERSION_PARAMETERS: Final = ("applicatieVersie", "applicatieSubversie", "functieVersie", "functieSubversie")
_XML_CONTENT_TYPES: Final = ("text/xml", "application/xml")
_Sinks = Mapping[etree._Element, TextSink]
_WHITESPACE_TEXT: Final = re.compile(r"[ \t\r\n]+")
_BASE64_SLICE: Final = 64 * 1024  # characters of base64 decoded per step
_STREAM_ABOVE: Final = 1024 * 1024  # envelopes above this are parsed with the streaming decoder
_BASE64_HOLDERS: Final = frozenset({"xmlBestand", "tekstBestand", "bericht"})


# --- parsing -----------------------------------------------------------------------------------


def parse_envelope(data: bytes | SpooledRange, *, max_bytes: int = MAX_RECEIVE_BYTES) -> StufMessage:
    """Read one StUF-GGk message. Raises ``XmlError`` (quarantine) or ``StufError`` (Fo01 or quarantine).

    Accepts Di01/Du01 in the three GGK namespaces and StUF Fo01/Fo03/Bv03 (docs/stuf-routing.md inbound check
    3); a SOAP 1.1 envelope around one of these (the WUS form of the examples) is unwrapped.

    Over ``max_bytes``: a ``StufError`` with the GGk code for "bericht is groter dan 25 MB"
    (IB003) and the stuurgegevens read from the head, so a Fo01 can tell the sender; an
    ``XmlTooLargeError`` when the head is no Di01/Du01 (nobody to address).

    ``data`` may be a ``SpooledRange`` (a large stored part read back into a temporary file,
    ggk_ebms/spool.py): it is parsed slice by slice and never held whole.
    """
    size = len(data) if isinstance(data, bytes) else data.size
    if size > max_bytes:
        raise envelope_too_large(data, max_bytes)
    sinks: _Sinks = {}
    if size <= _STREAM_ABOVE:
        # Small (nearly all traffic): libxml2 builds the tree in C; a Python parser target costs
        # several times more per element than the whole parse.
        whole = data if isinstance(data, bytes) else data.view().tobytes()
        root = parse(whole, max_bytes=max_bytes, what="StUF envelope")
    else:
        # The base64 may be one text node of up to 25 MB: decoded while it streams, hardened.
        root, sinks = parse_streaming_text(
            data, max_bytes=max_bytes, sink_for=_base64_sink_for, what="StUF envelope"
        )
    root = _unwrap_soap(root)
    namespace, local = _split(root.tag)
    if namespace == ns.STUF and local in _STUF_ROOTS:
        return _parse_stuf_bericht(root, _STUF_ROOTS[local])
    version = version_for_namespace(namespace)
    if version is not None and local in (_ROOT_DI01, _ROOT_DU01):
        kind = MessageKind.DI01 if local == _ROOT_DI01 else MessageKind.DU01
        return _parse_ggk_envelope(root, version, kind, sinks)
    raise StufError(
        StufCode.BERICHTCODE_UNKNOWN,
        f"root element {local!r} in namespace {namespace!r} is no StUF-GGk Di01/Du01 or StUF Fo01",
    )


def envelope_too_large(data: bytes | SpooledRange, max_bytes: int) -> StufError | XmlTooLargeError:
    """The refusal of an envelope over the GGk size limit, addressed when its head allows.

    Only the first 64 KiB are parsed (a pull parser with the default, non-huge limits and no
    DTD or entities): the stuurgegevens stand first in a Di01/Du01, so the Fo01's ontvanger and
    crossRefnummer are known without reading the rest of the oversized document.
    """
    size = len(data) if isinstance(data, bytes) else data.size
    text = f"StUF envelope is {size} bytes, over the GGk limit of {max_bytes} bytes"
    too_large = XmlTooLargeError(text)
    head = data[:_HEAD_BYTES] if isinstance(data, bytes) else data.head(_HEAD_BYTES)
    if _DOCTYPE_OR_ENTITY.search(head):
        return too_large
    parser = etree.XMLPullParser(
        events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    root: tuple[EnvelopeVersion, MessageKind] | None = None
    in_soap_header = 0  # a SOAP Header (WUS form) may come before the Body: passed over
    try:
        parser.feed(head)
        for event, el in parser.read_events():
            if not isinstance(el, etree._Element) or not isinstance(el.tag, str):
                continue
            namespace, local = _split(el.tag)
            if root is None and (in_soap_header or el.tag == _SOAP_HEADER):
                in_soap_header += 1 if event == "start" else -1
                continue
            if event == "start" and root is None:
                version = version_for_namespace(namespace)
                if version is not None and local in (_ROOT_DI01, _ROOT_DU01):
                    root = version, MessageKind.DI01 if local == _ROOT_DI01 else MessageKind.DU01
                elif el.tag not in _SOAP_WRAPPERS:
                    return too_large
            elif event == "end" and root is not None and el.tag == qname(root[0].namespace, "stuurgegevens"):
                sg = _read_stuurgegevens(el, root[1], root[0])
                return StufError(GGK_TOO_LARGE, text, stuurgegevens=sg)
    except (etree.XMLSyntaxError, StufError):
        pass  # a broken or invalid head: the envelope cannot be addressed
    if root is None:
        return too_large
    return StufError(GGK_TOO_LARGE, text)  # a Di01/Du01 whose stuurgegevens cannot be read


def _unwrap_soap(root: etree._Element) -> etree._Element:
    if root.tag != qname(ns.SOAP_ENV, "Envelope"):
        return root
    body = root.find(qname(ns.SOAP_ENV, "Body"))
    children = [] if body is None else _elements(body)
    if len(children) != 1:
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, "SOAP Body must hold exactly one StUF message")
    return children[0]


def _parse_ggk_envelope(
    root: etree._Element, version: EnvelopeVersion, kind: MessageKind, sinks: _Sinks
) -> StufMessage:
    ggk = version.namespace
    top = _Sequence(root, "envelope", None)
    sg_el = top.take(qname(ggk, "stuurgegevens"))
    stuurgegevens = _read_stuurgegevens(sg_el, kind, version)
    top.stuurgegevens = stuurgegevens
    params_el = top.take(qname(ggk, "parameters"))
    top.done()
    parameters, payload, warnings = _read_parameters(params_el, kind, version, stuurgegevens, sinks)
    return StufMessage(
        kind=kind,
        version=version,
        stuurgegevens=stuurgegevens,
        parameters=parameters,
        payload=payload,
        warnings=warnings,
    )


def _read_stuurgegevens(el: etree._Element, kind: MessageKind, version: EnvelopeVersion) -> Stuurgegevens:
    seq = _Sequence(el, "stuurgegevens", None)
    berichtcode = _text(seq.take(_s("berichtcode")))
    if berichtcode != kind.value:
        raise StufError(
            StufCode.COMBINATION_UNSUPPORTED,
            f"berichtcode {berichtcode!r} does not match the {kind.value} envelope element",
        )
    zender = _read_systeem(seq.take(_s("zender")), "zender", required_organisatie=True)
    ontvanger = _read_systeem(seq.take(_s("ontvanger")), "ontvanger", required_organisatie=True)
    referentienummer = _refnummer(_text(seq.take(_s("referentienummer"))), "referentienummer", version)
    tijdstip = _tijdstip(_text(seq.take(_s("tijdstipBericht"))))
    cross_ref = None
    if kind is MessageKind.DU01:  # Du01 only, before functie (ggk0210 StuurgegevensDu01)
        cross_ref = _refnummer(_text(seq.take(_s("crossRefnummer"))), "crossRefnummer", version)
    functie = _limited(_text(seq.take(_s("functie"))), "functie", 1, 30)
    seq.done()
    suffix = None
    if version.functie_carries_version:
        split = FUNCTIE_WITH_VERSION.fullmatch(functie)
        if split:
            functie, suffix = split.group(1), split.group(2)
    return Stuurgegevens(
        berichtcode=kind,
        zender=zender,
        ontvanger=ontvanger,
        referentienummer=referentienummer,
        tijdstip_bericht=tijdstip,
        cross_refnummer=cross_ref,
        functie=functie,
        functie_suffix=suffix,
    )


def _read_parameters(
    el: etree._Element, kind: MessageKind, version: EnvelopeVersion, sg: Stuurgegevens, sinks: _Sinks
) -> tuple[Parameters, Payload, tuple[str, ...]]:
    ggk = version.namespace
    seq = _Sequence(el, "parameters", sg)
    ref_bericht = cross_bericht = None
    if not version.current:  # 2.1.02/03 optional parameters, gone in patch 4 (StUF-GGk spec GGk0210/GGk0310)
        ref_bericht = _optional_text(seq.optional(qname(ggk, "referentienummerBericht")))
        if kind is MessageKind.DU01:
            cross_bericht = _optional_text(seq.optional(qname(ggk, "crossRefnummerBericht")))
        if ref_bericht is not None:
            _limited(ref_bericht, "referentienummerBericht", 0, 40, sg)
        if cross_bericht is not None:
            _limited(cross_bericht, "crossRefnummerBericht", 0, 40, sg)
    versions = [_versienr(_text(seq.take(qname(ggk, name))), name, sg) for name in _VERSION_PARAMETERS]
    bericht = seq.take(qname(ggk, "bericht"))
    seq.done()
    if version.bericht_with_content_type:
        payload = _read_mime_bericht(bericht, sg, sinks)
    else:
        payload = _read_bestand_choice(bericht, ggk, sg, sinks)
    warnings: list[str] = []
    if payload.kind is PayloadKind.XML and payload.data.startswith(UTF8_BOM):
        # StUF-GGk spec: Di01/Du01: payload is UTF-8 without BOM; a BOM is harmless to strip but worth
        # telling.
        payload = dataclasses.replace(payload, data=payload.data[len(UTF8_BOM) :])
        warnings.append("payload started with a UTF-8 byte order mark; it was removed")
    parameters = Parameters(
        applicatie_versie=versions[0],
        applicatie_subversie=versions[1],
        functie_versie=versions[2],
        functie_subversie=versions[3],
        referentienummer_bericht=ref_bericht,
        cross_refnummer_bericht=cross_bericht,
    )
    return parameters, payload, tuple(warnings)


def _read_bestand_choice(bericht: etree._Element, ggk: str, sg: Stuurgegevens, sinks: _Sinks) -> Payload:
    """ggk0210: ``bericht`` is a choice of ``xmlBestand`` or ``tekstBestand/@bestandsnaam``."""
    children = _elements(bericht)
    if len(children) != 1 or children[0].tag not in (qname(ggk, "xmlBestand"), qname(ggk, "tekstBestand")):
        raise _schema_error("parameters/bericht must hold exactly one xmlBestand or tekstBestand", sg)
    bestand = children[0]
    if bestand.tag == qname(ggk, "xmlBestand"):
        return Payload(PayloadKind.XML, _base64(bestand, "xmlBestand", sg, sinks))
    naam = bestand.get("bestandsnaam")
    if naam is None or not BESTANDSNAAM.fullmatch(naam):
        raise _schema_error(
            "tekstBestand needs a bestandsnaam of 4-255 characters from [A-Za-z0-9-._] (no spaces)", sg
        )
    return Payload(PayloadKind.TEXT, _base64(bestand, "tekstBestand", sg, sinks), bestandsnaam=naam)


def _read_mime_bericht(bericht: etree._Element, sg: Stuurgegevens, sinks: _Sinks) -> Payload:
    """Before 2.1.04: ``bericht`` is the base64 itself, ``xmime:contentType`` required (StUF-GGk spec
    GGk0210/GGk0310)."""
    if _elements(bericht):
        raise _schema_error("parameters/bericht must hold base64 text, not elements", sg)
    content_type = bericht.get(qname(ns.XMIME, "contentType"))
    if content_type is None or len(content_type) < 3:
        raise _schema_error("parameters/bericht needs an xmime:contentType", sg)
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _XML_CONTENT_TYPES or media.endswith("+xml"):
        kind = PayloadKind.XML
    elif media == "text/plain":
        kind = PayloadKind.TEXT
    else:
        raise _schema_error(f"xmime:contentType {media!r} is not text/xml, application/xml or text/plain", sg)
    naam = bericht.get(qname(ns.STUF, "bestandsnaam"))
    return Payload(kind, _base64(bericht, "bericht", sg, sinks), bestandsnaam=naam, content_type=content_type)


def _parse_stuf_bericht(root: etree._Element, kind: MessageKind) -> StufMessage:
    """Fo01/Fo03/Bv03 (stuf0301.xsd): stuurgegevens with crossRefnummer; Fo0x add a body.

    On receipt neither UUID v4 nor ontvanger applicatie ``GGk`` is enforced: the VNG Fo01 example
    has a v1 UUID crossRefnummer and ``JW Applicatie`` (StUF
    03.01: Fo01/Fo03/Bv03). Correlate on crossRefnummer.
    """
    top = _Sequence(root, kind.value, None)
    seq = _Sequence(top.take(_s("stuurgegevens")), "stuurgegevens", None)
    berichtcode = _text(seq.take(_s("berichtcode")))
    if berichtcode != kind.value:
        raise StufError(
            StufCode.COMBINATION_UNSUPPORTED,
            f"berichtcode {berichtcode!r} does not match the {kind.value}Bericht element",
        )
    zender = _read_systeem(seq.take(_s("zender")), "zender", required_organisatie=False)
    ontvanger = _read_systeem(seq.take(_s("ontvanger")), "ontvanger", required_organisatie=False)
    referentienummer = _refnummer(_text(seq.take(_s("referentienummer"))), "referentienummer", None)
    tijdstip = _tijdstip(_text(seq.take(_s("tijdstipBericht"))))
    cross_ref = _refnummer(_text(seq.take(_s("crossRefnummer"))), "crossRefnummer", None)
    seq.done()
    sg = Stuurgegevens(kind, zender, ontvanger, referentienummer, tijdstip, cross_refnummer=cross_ref)
    top.stuurgegevens = sg
    fout = None
    if kind is not MessageKind.BV03:
        fout = _read_fout(top.take(_s("body")), sg)
    top.done()
    return StufMessage(kind=kind, version=None, stuurgegevens=sg, fout=fout)


def _read_fout(body: etree._Element, sg: Stuurgegevens) -> Fout:
    seq = _Sequence(body, "body", sg)
    code = _limited(_text(seq.take(_s("code"))), "body/code", 1, 7, sg)
    plek = _text(seq.take(_s("plek")))
    if plek not in FOUTPLEK:
        raise _schema_error(f"body/plek {plek!r} is not 'client' or 'server'", sg)
    omschrijving = _limited(_text(seq.take(_s("omschrijving"))), "body/omschrijving", 0, 200, sg)
    details = _optional_text(seq.optional(_s("details")))
    if details is not None:
        _limited(details, "body/details", 0, 1000, sg)
    details_xml = seq.optional(_s("detailsXML"))
    seq.done()
    return Fout(code, plek, omschrijving, details, has_details_xml=details_xml is not None)


def _read_systeem(el: etree._Element, where: str, *, required_organisatie: bool) -> Systeem:
    seq = _Sequence(el, where, None)
    organisatie_el = seq.take(_s("organisatie")) if required_organisatie else seq.optional(_s("organisatie"))
    organisatie = _limited(_text(organisatie_el), f"{where}/organisatie", 0, 200)
    applicatie = _limited(_text(seq.take(_s("applicatie"))), f"{where}/applicatie", 3, 50)
    administratie = _optional_text(seq.optional(_s("administratie")))
    gebruiker = _optional_text(seq.optional(_s("gebruiker")))
    seq.done()
    if administratie is not None:
        _limited(administratie, f"{where}/administratie", 0, 50)
    if gebruiker is not None:
        _limited(gebruiker, f"{where}/gebruiker", 0, 100)
    return Systeem(organisatie, applicatie, administratie, gebruiker)


def _refnummer(value: str, name: str, version: EnvelopeVersion | None) -> str:
    _limited(value, name, 1, 40)
    if version is not None and version.requires_uuid4 and not UUID4.fullmatch(value):
        # ggk0210 XSD pattern (spec 2.1.04); older envelopes used v1 UUIDs (StUF-GGk spec GGk0210/GGk0310).
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, f"{name} {value!r} is not a lowercase UUID v4")
    return value


def _tijdstip(value: str) -> str:
    if not TIJDSTIP.fullmatch(value):
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, f"tijdstipBericht {value!r} is not 8-17 digits")
    return value


def _versienr(value: str, name: str, sg: Stuurgegevens) -> str:
    if not VERSIENR.fullmatch(value):
        raise _schema_error(f"{name} {value!r} is not four digits", sg)
    return value


class _Base64Sink:
    """Strict base64 decoded as the parser streams it (XSD base64Binary: XML whitespace allowed,
    anything else refused), into one output buffer: the 25 MB of text is never held whole."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._pending: list[str] = []
        self._pending_chars = 0
        self._carry = ""
        self._padded = False  # '=' may only close the last quantum
        self._bad = False

    def feed(self, text: str) -> None:
        if self._bad:
            return
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars >= _BASE64_SLICE:
            self._decode()

    def _decode(self) -> None:
        piece = self._carry + _WHITESPACE_TEXT.sub("", "".join(self._pending))
        self._pending.clear()
        self._pending_chars = 0
        usable = len(piece) - len(piece) % 4
        self._carry = piece[usable:]
        if not usable:
            return
        if self._padded:
            self._bad = True
            return
        try:
            self._out.write(base64.b64decode(piece[:usable], validate=True))
        except (binascii.Error, ValueError):  # ValueError: a non-ASCII character
            self._bad = True
            return
        self._padded = piece[usable - 1] == "="

    def result(self, name: str, sg: Stuurgegevens) -> bytes:
        if not self._bad:
            self._decode()
        if self._bad or self._carry:
            raise _schema_error(f"{name} is not valid base64", sg)
        if self._out.tell() == 0 and not self._padded:
            raise _schema_error(f"{name} is empty", sg)
        return self._out.getvalue()


def _base64_sink_for(tag: str) -> _Base64Sink | None:
    """The elements whose text is a payload's base64 (StUF-GGk spec GGk0210/GGk0310: the Di01/Du01 of each
    envelope version)."""
    namespace, local = _split(tag)
    if local in _BASE64_HOLDERS and version_for_namespace(namespace) is not None:
        return _Base64Sink()
    return None


def _base64(el: etree._Element, name: str, sg: Stuurgegevens, sinks: _Sinks) -> bytes:
    """The decoded payload of ``el``: streamed during the parse, or (a tree built elsewhere) now."""
    sink = sinks.get(el)
    if not isinstance(sink, _Base64Sink):
        sink = _Base64Sink()
        sink.feed(el.text or "")
    return sink.result(name, sg)


def _limited(value: str, name: str, low: int, high: int, sg: Stuurgegevens | None = None) -> str:
    if not low <= len(value) <= high:
        raise _schema_error(f"{name} must be {low}-{high} characters, is {len(value)}", sg)
    return value


def _schema_error(message: str, sg: Stuurgegevens | None) -> StufError:
    return StufError(StufCode.NOT_SCHEMA_CONFORM, message, stuurgegevens=sg)


class _Sequence:
    """Walks the element children of one element in XSD sequence order."""

    def __init__(self, parent: etree._Element, where: str, stuurgegevens: Stuurgegevens | None) -> None:
        self.children = _elements(parent)
        self.pos = 0
        self.where = where
        self.stuurgegevens = stuurgegevens

    def take(self, tag: str) -> etree._Element:
        found = self.optional(tag)
        if found is None:
            actual = _split(self.children[self.pos].tag)[1] if self.pos < len(self.children) else "nothing"
            message = f"{self.where}: expected {_split(tag)[1]}, found {actual}"
            raise _schema_error(message, self.stuurgegevens)
        return found

    def optional(self, tag: str) -> etree._Element | None:
        if self.pos < len(self.children) and self.children[self.pos].tag == tag:
            self.pos += 1
            return self.children[self.pos - 1]
        return None

    def done(self) -> None:
        if self.pos < len(self.children):
            extra = _split(self.children[self.pos].tag)[1]
            raise _schema_error(f"{self.where}: unexpected element {extra}", self.stuurgegevens)


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _s(local: str) -> str:
    return qname(ns.STUF, local)


def _text(el: etree._Element | None) -> str:
    return "" if el is None else (el.text or "").strip()


def _optional_text(el: etree._Element | None) -> str | None:
    return None if el is None else (el.text or "").strip()


# --- building ----------------------------------------------------------------------------------


def format_tijdstip(moment: datetime) -> str:
    """``yyyyMMddHHmmssfff`` in Dutch local time (spec 2.1.04; StUF:Tijdstip allows 8-17 digits).

    An aware datetime is converted to Europe/Amsterdam; a naive one is taken as local already.
    """
    local = moment.astimezone(LOCAL_TIME) if moment.tzinfo is not None else moment
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def versienr(value: int | str) -> str:
    """A StUF:Versienr: ``3`` -> ``0003``; a four-digit string passes unchanged."""
    text = f"{value:04d}" if isinstance(value, int) else value
    if not VERSIENR.fullmatch(text):
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, f"version {value!r} is not a four-digit Versienr")
    return text


def build_di01(
    *,
    zender: Systeem,
    ontvanger: Systeem,
    functie: str,
    payload: bytes,
    ids: IdGenerator,
    tijdstip: datetime,
    functie_versie: int | str,
    functie_subversie: int | str,
    applicatie_versie: int | str = 1,
    applicatie_subversie: int | str = 0,
    bestandsnaam: str | None = None,
) -> BuiltMessage:
    """A ggk0210 Di01 heenbericht. ``bestandsnaam`` given: ``tekstBestand``; else ``xmlBestand``."""
    return _build_envelope(
        MessageKind.DI01,
        zender=zender,
        ontvanger=ontvanger,
        functie=functie,
        payload=payload,
        ids=ids,
        tijdstip=tijdstip,
        versions=(applicatie_versie, applicatie_subversie, functie_versie, functie_subversie),
        bestandsnaam=bestandsnaam,
        cross_ref=None,
    )


def build_du01(
    *,
    zender: Systeem,
    ontvanger: Systeem,
    functie: str,
    payload: bytes,
    cross_ref: str,
    ids: IdGenerator,
    tijdstip: datetime,
    functie_versie: int | str,
    functie_subversie: int | str,
    applicatie_versie: int | str = 1,
    applicatie_subversie: int | str = 0,
    bestandsnaam: str | None = None,
) -> BuiltMessage:
    """A ggk0210 Du01 retourbericht; ``cross_ref`` is the referentienummer of the answered Di01."""
    return _build_envelope(
        MessageKind.DU01,
        zender=zender,
        ontvanger=ontvanger,
        functie=functie,
        payload=payload,
        ids=ids,
        tijdstip=tijdstip,
        versions=(applicatie_versie, applicatie_subversie, functie_versie, functie_subversie),
        bestandsnaam=bestandsnaam,
        cross_ref=cross_ref,
    )


def _build_envelope(
    kind: MessageKind,
    *,
    zender: Systeem,
    ontvanger: Systeem,
    functie: str,
    payload: bytes,
    ids: IdGenerator,
    tijdstip: datetime,
    versions: tuple[int | str, int | str, int | str, int | str],
    bestandsnaam: str | None,
    cross_ref: str | None,
) -> BuiltMessage:
    if cross_ref is not None and not UUID4.fullmatch(cross_ref):
        raise StufError(
            StufCode.NOT_SCHEMA_CONFORM,
            f"crossRefnummer {cross_ref!r} is no lowercase UUID v4, which a ggk0210 Du01 requires",
        )
    return build_payload_envelope(
        kind,
        namespace=ns.GGK_0210,
        zender=zender,
        ontvanger=ontvanger,
        functie=functie,
        payload=payload,
        ids=ids,
        tijdstip=tijdstip,
        versions=versions,
        bestandsnaam=bestandsnaam,
        cross_ref=cross_ref,
        fill_bericht=_fill_bestand,
    )


def _fill_bestand(bericht: etree._Element, encoded: str, bestandsnaam: str | None) -> None:
    """ggk0210: the base64 sits in ``xmlBestand``, or in ``tekstBestand`` with a bestandsnaam."""
    ggk = ns.GGK_0210
    if bestandsnaam is None:
        bestand = etree.SubElement(bericht, qname(ggk, "xmlBestand"))
    else:
        bestand = etree.SubElement(bericht, qname(ggk, "tekstBestand"), bestandsnaam=bestandsnaam)
    bestand.text = encoded


# Writes the base64 payload (and the bestandsnaam, when given) into the ``bericht`` element: the one
# part of a Di01/Du01 that differs between the envelope generations.
FillBericht = Callable[[etree._Element, str, str | None], None]


def build_payload_envelope(
    kind: MessageKind,
    *,
    namespace: str,
    zender: Systeem,
    ontvanger: Systeem,
    functie: str,
    payload: bytes,
    ids: IdGenerator,
    tijdstip: datetime,
    versions: tuple[int | str, int | str, int | str, int | str],
    bestandsnaam: str | None,
    cross_ref: str | None,
    fill_bericht: FillBericht,
    extra_namespaces: Mapping[str, str] | None = None,
) -> BuiltMessage:
    """A Di01/Du01 in the envelope namespace ``namespace``; ``fill_bericht`` writes the payload.

    Both generations share the root names, the stuurgegevens (StUF 03.01), the four version
    parameters and the 25 MB limit (StUF-GGk spec 2.1.04; the
    GGk's 25 MB per envelope); a Du01 carries ``cross_ref``.
    """
    _check_systeem(zender, "zender")
    _check_systeem(ontvanger, "ontvanger")
    _limited(functie, "functie", 1, 30)
    if bestandsnaam is not None and not BESTANDSNAAM.fullmatch(bestandsnaam):
        raise StufError(
            StufCode.NOT_SCHEMA_CONFORM, "bestandsnaam must be 4-255 characters from [A-Za-z0-9-._]"
        )
    if payload.startswith(UTF8_BOM):  # GGk handleiding: outbound wrap: UTF-8 payload without BOM
        payload = payload[len(UTF8_BOM) :]
    if not payload:
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, "payload is empty")
    version_texts = [versienr(v) for v in versions]
    referentienummer = _new_referentienummer(ids)
    stamp = format_tijdstip(tijdstip)

    local = _ROOT_DI01 if kind is MessageKind.DI01 else _ROOT_DU01
    nsmap = {"GGK": namespace, "StUF": ns.STUF, **(extra_namespaces or {})}
    root = etree.Element(qname(namespace, local), nsmap=nsmap)
    sg = etree.SubElement(root, qname(namespace, "stuurgegevens"))
    _sub(sg, "berichtcode", kind.value)
    _append_systeem(sg, "zender", zender)
    _append_systeem(sg, "ontvanger", ontvanger)
    _sub(sg, "referentienummer", referentienummer)
    _sub(sg, "tijdstipBericht", stamp)
    if cross_ref is not None:
        _sub(sg, "crossRefnummer", cross_ref)
    _sub(sg, "functie", functie)
    params = etree.SubElement(root, qname(namespace, "parameters"))
    for name, text in zip(_VERSION_PARAMETERS, version_texts, strict=True):
        etree.SubElement(params, qname(namespace, name)).text = text
    bericht = etree.SubElement(params, qname(namespace, "bericht"))
    fill_bericht(bericht, base64.b64encode(payload).decode("ascii"), bestandsnaam)
    return _finish(root, referentienummer, stamp)


def build_fo01(
    *,
    zender: Systeem,
    ontvanger: Systeem,
    cross_ref: str,
    code: str,
    omschrijving: str,
    ids: IdGenerator,
    tijdstip: datetime,
    plek: str = "client",
    details: str | None = None,
    details_xml: bytes | None = None,
) -> BuiltMessage:
    """A StUF 03.01 Fo01Bericht (StUF 03.01: Fo01/Fo03/Bv03).

    ``details_xml`` is the original message as XML bytes; it is embedded as plain XML (no base64,
    no CDATA) after a hardened parse. It holds personal data: the Fo01 itself must not be logged.
    ``omschrijving`` and ``details`` must not quote payload
    values (iStandaarden privacy elements, docs/rules.md).
    """
    _check_systeem(zender, "zender")
    _check_systeem(ontvanger, "ontvanger")
    _limited(code, "code", 1, 7)
    _limited(cross_ref, "crossRefnummer", 1, 40)
    if plek not in FOUTPLEK:
        raise StufError(StufCode.NOT_SCHEMA_CONFORM, f"plek must be 'client' or 'server', not {plek!r}")
    omschrijving = omschrijving[:200]
    referentienummer = _new_referentienummer(ids)
    stamp = format_tijdstip(tijdstip)

    root = etree.Element(_s("Fo01Bericht"), nsmap={"StUF": ns.STUF})
    sg = etree.SubElement(root, _s("stuurgegevens"))
    _sub(sg, "berichtcode", MessageKind.FO01.value)
    _append_systeem(sg, "zender", zender)
    _append_systeem(sg, "ontvanger", ontvanger)
    _sub(sg, "referentienummer", referentienummer)
    _sub(sg, "tijdstipBericht", stamp)
    _sub(sg, "crossRefnummer", cross_ref)
    body = etree.SubElement(root, _s("body"))
    _sub(body, "code", code)
    _sub(body, "plek", plek)
    _sub(body, "omschrijving", omschrijving)
    if details is not None:
        _sub(body, "details", details[:1000])
    if details_xml is not None:
        holder = etree.SubElement(body, _s("detailsXML"))
        holder.append(parse_large_text(details_xml, max_bytes=MAX_RECEIVE_BYTES, what="Fo01 detailsXML"))
    return _finish(root, referentienummer, stamp)


def build_fo01_reply(
    failed: StufMessage,
    error: StufError,
    *,
    zender: Systeem,
    ids: IdGenerator,
    tijdstip: datetime,
    original: bytes | SpooledRange | None = None,
) -> BuiltMessage:
    """The Fo01 a gemeente sends about a message it refuses, typically ``StUF055`` (StUF 03.01:
    Fo01/Fo03/Bv03).

    crossRefnummer = the failing message's referentienummer, ontvanger = its zender, details =
    ``functie-applicatieVersie+applicatieSubversie`` (``JW315-00010004``), detailsXML = the
    original envelope when given (a spooled one is read into memory only when it goes in).
    ``zender`` is us (our gemeentecode and application).
    """
    sg = failed.stuurgegevens
    details_xml = None
    if original is not None and size_of(original) + _FO01_OVERHEAD <= MAX_SEND_BYTES:
        # detailsXML is optional (stuf0301 Foutbericht); a copy of an envelope near or over the
        # 25 MB limit would make the Fo01 itself too large to send, so it goes without.
        details_xml = whole(original)
    details = None
    if failed.functie and failed.parameters is not None:
        p = failed.parameters
        details = f"{failed.functie}-{p.applicatie_versie}{p.applicatie_subversie}"
    return build_fo01(
        zender=zender,
        ontvanger=Systeem(sg.zender.organisatie, sg.zender.applicatie),
        cross_ref=sg.referentienummer,
        code=error.code,
        omschrijving=error.omschrijving,
        plek=error.plek,
        details=details,
        details_xml=details_xml,
        ids=ids,
        tijdstip=tijdstip,
    )


def _new_referentienummer(ids: IdGenerator) -> str:
    value = ids.uuid().lower()
    if not UUID4.fullmatch(value):
        raise StufError(StufCode.PROCESSING_ERROR, "the id generator did not give a UUID v4", plek="server")
    return value


def _check_systeem(systeem: Systeem, where: str) -> None:
    _limited(systeem.organisatie, f"{where}/organisatie", 1, 200)
    _limited(systeem.applicatie, f"{where}/applicatie", 3, 50)
    if systeem.administratie is not None:
        _limited(systeem.administratie, f"{where}/administratie", 0, 50)
    if systeem.gebruiker is not None:
        _limited(systeem.gebruiker, f"{where}/gebruiker", 0, 100)


def _append_systeem(parent: etree._Element, name: str, systeem: Systeem) -> None:
    el = etree.SubElement(parent, _s(name))
    _sub(el, "organisatie", systeem.organisatie)
    _sub(el, "applicatie", systeem.applicatie)
    if systeem.administratie:
        _sub(el, "administratie", systeem.administratie)
    if systeem.gebruiker:
        _sub(el, "gebruiker", systeem.gebruiker)


def _sub(parent: etree._Element, local: str, text: str) -> None:
    etree.SubElement(parent, _s(local)).text = text


def _finish(root: etree._Element, referentienummer: str, stamp: str) -> BuiltMessage:
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if len(data) > MAX_SEND_BYTES:
        # spec 2.1.04 v4 / IB handleiding berichtuitwisseling: whole StUF XML incl. base64 at most 25 MB; the
        # GGk answers IB003.
        raise StufError(
            "IB003",
            f"envelope would be {len(data)} bytes, over the GGk limit of {MAX_SEND_BYTES} bytes",
        )
    return BuiltMessage(data=data, referentienummer=referentienummer, tijdstip_bericht=stamp)


__all__ = [
    "MAX_RECEIVE_BYTES",
    "MAX_SEND_BYTES",
    "FillBericht",
    "build_di01",
    "build_du01",
    "build_fo01",
    "build_fo01_reply",
    "build_payload_envelope",
    "format_tijdstip",
    "parse_envelope",
    "versienr",
]
