"""The inbound StUF-GGk checks of GGk handleiding;
docs/stuf-routing.md inbound checks, in order, ending in one decision.

Pure: the message parts, the sender's identities, the routing table, the payload schemas and a
``History`` (what the store knows about earlier referentienummers) go in; a ``Decision`` comes out.
The delivery worker does what the decision says: forward, answer with a Fo01, park, or ignore.

Order (docs/stuf-routing.md inbound checks; docs/delivery.md has the same table with our outcomes):

 1-4  size, hardened parse, root kind, envelope structure     parse_envelope (quarantine / StUF055)
 3    Fo01 in -> correlate (step 11); Bv03/Fo03 -> ignore
 5    ontvanger/organisatie a CBS code served here and by the exchange   IB005
 6    functie has an actief exchange and route; heen in Di01, retour in Du01 IB004/IB023; IB006
 4b   envelope generation is the exchange's                   IB001
 7    zender fits the functie; sending party authorised       IB007 (IB002/IB006)
 8    (zender, referentienummer) seen: same payload -> no-op; other payload -> IB016
 9    Du01 crossRefnummer is a message we sent                keep and flag (StUF043 not sent)
 10   base64 (parse_envelope); xmlBestand for iWmo/iJw/iEb   StUF055 (PGB: routed on the envelope)
 12   payload detect (namespace -> standard, release, message)  StUF055
 12a  payload release is the exchange's                       IB014
 13   payload XSD (when payload_schemas is set)               StUF055
 12b  payload header agrees with the envelope                 IB006 / IB005 / IB010
 15   route (gemeentecode, berichttype) -> target             no route: hold + alert (cf. IB102)

The exchange of the berichttype (ggk_ebms.exchanges, docs/exchanges.md) adds its rules: the
gemeentecode must be a CBS code served by this installation and the exchange (IB005), the
exchange must be actief (IB023), the envelope in its generation (IB001) and the payload in its
release (IB014); a payload that contradicts its envelope is IB006 (functie, berichtcode) or IB005
(gemeentecode), a re-used referentienummer IB016. Refusals carry the GGk Fo01 table's code when
the GGk has one for the situation (GGk Fo01 foutcodetabel), StUF055 for an XSD-invalid payload (StUF 03.01:
Fo01/Fo03/Bv03). An exchange via Portaal holds every message in the mailbox for manual pick-up.

Every reason names codes, element names and stuurgegevens only,
never payload content (iStandaarden privacy elements, docs/rules.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from lxml import etree

from ggk_ebms.errors import StufError, XmlError
from ggk_ebms.exchanges import rules as exchange_rules
from ggk_ebms.exchanges.model import Exchange, Via
from ggk_ebms.exchanges.rules import Rules
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue, CatalogueEntry, Party
from ggk_ebms.payloads.detect import (
    MAX_PAYLOAD_BYTES,
    PayloadInfo,
    Severity,
    check_against_envelope,
    detect_root,
)
from ggk_ebms.payloads.validate import PayloadSchemas, structural_errors, validate, validate_tree
from ggk_ebms.routing.table import MailboxTarget, Route, RoutingTable
from ggk_ebms.spool import SpooledRange
from ggk_ebms.stuf.codes import StufCode
from ggk_ebms.stuf.envelope import MAX_RECEIVE_BYTES, parse_envelope
from ggk_ebms.stuf.model import MessageKind, PayloadKind, StufMessage, Stuurgegevens
from ggk_ebms.xml import parse, parse_outline

AGB: Final = re.compile(r"[0-9]{8}")
GEMEENTECODE: Final = re.compile(r"[0-9]{4}")


class Verdict(StrEnum):
    DELIVER = "deliver"  # hand to the route's target
    DUPLICATE = "duplicate"  # same zender + referentienummer + payload: done already (IB handleiding GGk)
    REFUSE = "refuse"  # the sender is at fault: Failed, and a Fo01 when ``fout`` has a code
    QUARANTINE = "quarantine"  # not a message we can address: Failed, no Fo01 possible
    HOLD = "hold"  # our fault (no routing table, no route): Failed + alert, retry after fixing
    FO01_RECEIVED = "fo01"  # a partner's Fo01 about one of our messages (step 11)
    IGNORE = "ignore"  # Bv03/Fo03: only between RINIS, BIDN and VECOZO (StUF 03.01: Fo01/Fo03/Bv03)


class History(Protocol):
    """What the store remembers of earlier StUF messages (docs/stuf-routing.md inbound checks 8 and 9)."""

    def earlier_payload(self, zender: str, referentienummer: str) -> tuple[int, str | None] | None:
        """(message pk, payload sha256) of an earlier received message with this pair, or None."""
        ...

    def we_sent(self, referentienummer: str) -> bool:
        """Whether we sent a message with this referentienummer."""
        ...


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    step: int
    stuf: StufMessage | None = None
    # The StUF XML as received; a large one stays in its temporary file (ggk_ebms/spool.py).
    envelope: bytes | SpooledRange | None = field(default=None, repr=False)
    fout: StufError | None = None  # what a Fo01 says; None: no Fo01 (quarantine, hold, alert only)
    info: PayloadInfo | None = None
    entry: CatalogueEntry | None = None
    route: Route | None = None
    exchange: Exchange | None = None
    duplicate_of: int | None = None
    cross_ref_unknown: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def stuurgegevens(self) -> Stuurgegevens | None:
        return None if self.stuf is None else self.stuf.stuurgegevens

    @property
    def gemeentecode(self) -> str | None:
        sg = self.stuurgegevens
        return None if sg is None else sg.ontvanger.organisatie

    @property
    def berichttype(self) -> str | None:
        return None if self.stuf is None else self.stuf.functie

    @property
    def payload_sha256(self) -> str | None:
        stuf = self.stuf
        return None if stuf is None or stuf.payload is None else stuf.payload.sha256


@dataclass(frozen=True)
class FoundEnvelope:
    stuf: StufMessage
    data: bytes | SpooledRange = field(repr=False)


def find_envelope(
    parts: Sequence[bytes | SpooledRange], *, max_bytes: int = MAX_RECEIVE_BYTES
) -> FoundEnvelope | Decision:
    """The first payload part that is a StUF message (docs/stuf-routing.md inbound checks 1-4 and 10 run
    inside the parse).

    A part that is no StUF message at all is passed over; a part that is one but is refused ends
    the search with that refusal (REFUSE when its stuurgegevens could be read, else QUARANTINE).
    """
    passed_over: list[str] = []
    for number, data in enumerate(parts, 1):
        try:
            return FoundEnvelope(parse_envelope(data, max_bytes=max_bytes), data)
        except XmlError as exc:  # steps 1-2: too large, not XML, or unsafe XML
            passed_over.append(f"part {number}: {exc}")
        except StufError as exc:
            if exc.stuurgegevens is None and exc.code == StufCode.BERICHTCODE_UNKNOWN:
                passed_over.append(f"part {number}: {exc.omschrijving}")  # step 3: not StUF
                continue
            if exc.stuurgegevens is None:
                return Decision(
                    Verdict.QUARANTINE, f"StUF envelope refused, stuurgegevens unreadable: {exc}", 4
                )
            stuf = _stub(exc.stuurgegevens)
            return Decision(
                Verdict.REFUSE, f"StUF envelope refused: {exc}", 4, stuf=stuf, envelope=data, fout=exc
            )
    detail = "; ".join(passed_over) if passed_over else "the message has no payload parts"
    return Decision(Verdict.QUARANTINE, f"no payload part is a StUF-GGk message ({detail})", 3)


def _whole_tree(payload: bytes) -> etree._Element | None:
    try:
        return parse(payload, max_bytes=MAX_PAYLOAD_BYTES, what="payload")
    except XmlError:
        return None


def _is_header(tag: str) -> bool:
    return tag.endswith("}Header") or tag == "Header"


def _stub(stuurgegevens: object) -> StufMessage | None:
    if not isinstance(stuurgegevens, Stuurgegevens):
        return None
    return StufMessage(kind=stuurgegevens.berichtcode, version=None, stuurgegevens=stuurgegevens)


def counterpart(entry: CatalogueEntry) -> Party:
    """Who sends ``entry`` to a gemeente endpoint: its sender, or, for a berichttype a gemeente
    itself sends, the party it goes to (the GGk handleiding's
    inbound step reads "AGB for 3xx, CAK for 402/404")."""
    return entry.receiver if entry.sender is Party.GEMEENTE else entry.sender


def zender_fits(entry: CatalogueEntry, organisatie: str) -> bool:
    """docs/stuf-routing.md inbound check 7: an aanbieder sends with its AGB (8 digits), CAK as ``CAK``."""
    party = counterpart(entry)
    if party is Party.AANBIEDER:
        return AGB.fullmatch(organisatie) is not None
    if party is Party.GEMEENTE:
        return GEMEENTECODE.fullmatch(organisatie) is not None
    return organisatie == party.value


def unwrap(
    parts: Sequence[bytes | SpooledRange],
    *,
    sender_ids: Sequence[str],
    table: RoutingTable | None,
    history: History,
    schemas: PayloadSchemas | None = None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    max_bytes: int = MAX_RECEIVE_BYTES,
    rules: Rules | None = None,
    found: FoundEnvelope | Decision | None = None,
) -> Decision:
    """Run the inbound checks (GGk handleiding; docs/stuf-routing.md) on the parts of one received business
    message. ``sender_ids``: the ebMS From
    PartyId (OIN) first, then the CPAId, as ``RoutingTable.authorize`` accepts either.
    ``rules``: the exchanges and served gemeentecodes (default: the shipped exchanges).
    ``found``: what ``find_envelope`` gave for these parts, when the caller already looked (the
    delivery worker reads a batch's stuurgegevens first, to ask its history questions at once)."""
    rules = rules if rules is not None else Rules()
    if found is None:
        found = find_envelope(parts, max_bytes=max_bytes)
    if isinstance(found, Decision):
        return found
    stuf, data = found.stuf, found.data
    sg = stuf.stuurgegevens
    warnings = list(stuf.warnings)

    def refuse(
        step: int,
        code: str,
        text: str,
        *,
        info: PayloadInfo | None = None,
        entry: CatalogueEntry | None = None,
        cross_ref_unknown: bool = False,
    ) -> Decision:
        error = StufError(code, text[:200], stuurgegevens=sg)
        return Decision(
            Verdict.REFUSE,
            f"{code}: {text}",
            step,
            stuf=stuf,
            envelope=data,
            fout=error,
            info=info,
            entry=entry,
            cross_ref_unknown=cross_ref_unknown,
            warnings=tuple(warnings),
        )

    if stuf.kind is MessageKind.FO01:
        return Decision(Verdict.FO01_RECEIVED, "Fo01 received", 11, stuf=stuf, envelope=data)
    if not stuf.kind.is_envelope:
        return Decision(
            Verdict.IGNORE,
            f"{stuf.kind.value} only passes between RINIS, BIDN and VECOZO; logged and ignored",
            3,
            stuf=stuf,
            envelope=data,
        )
    if table is None:
        return Decision(
            Verdict.HOLD,
            "no routing table imported (ggk-ebms routes import FILE)",
            5,
            stuf=stuf,
            envelope=data,
        )

    gemeentecode = sg.ontvanger.organisatie
    functie = stuf.functie or ""
    exchange, refusal = rules.exchange_refusal(functie)  # step 6: the exchange of the functie
    gemeente_refusal = rules.gemeente_refusal(gemeentecode, exchange, fallback=table.served_gemeentecodes)
    if gemeente_refusal is not None:  # step 5, with the CBS list and the served-codes setting
        return refuse(5, gemeente_refusal.code, gemeente_refusal.text)
    if refusal is not None:
        return refuse(6, refusal.code, refusal.text)
    assert exchange is not None
    match = table.match(gemeentecode, functie)  # steps 5 and 6
    if match.code is not None:
        step = 5 if match.code == StufCode.ONTVANGER_UNKNOWN else 6
        return refuse(step, match.ggk_code or match.code, match.reason)
    entry = catalogue.get(functie)
    if entry is None:  # match() checked the table's catalogue; ours may be narrower
        return refuse(6, exchange_rules.FUNCTIE_UNSUPPORTED, f"berichttype {functie} is not supported")
    version_refusal = exchange_rules.envelope_refusal(exchange, stuf)
    if version_refusal is not None:
        return refuse(4, version_refusal.code, version_refusal.text, entry=entry)
    if stuf.kind is not entry.envelope:
        text = f"{functie} ({entry.soort.value}) travels in {entry.envelope.value}, not in {stuf.kind.value}"
        if not entry.envelope_inferred:
            return refuse(6, exchange_rules.COMBINATION_NOT_ALLOWED, text, entry=entry)
        warnings.append(text + " (inferred rule, accepted)")

    if not zender_fits(entry, sg.zender.organisatie):  # step 7
        return refuse(
            7,
            "IB007",  # Combinatie functie en organisatie is niet toegestaan
            f"zender {sg.zender.organisatie} cannot send {functie}: "
            f"a {counterpart(entry).value} sends it to a gemeente",
            entry=entry,
        )
    if match.route is not None:
        verdicts = [table.authorize(sender, gemeentecode, match.route) for sender in sender_ids]
        if not any(v.allowed for v in verdicts):
            first = verdicts[0] if verdicts else None
            code = (first.ggk_code or first.code if first else None) or StufCode.NOT_AUTHORISED
            text = first.reason if first else "no sending party identified"
            return refuse(7, code, text, entry=entry)

    payload = stuf.payload
    payload_sha = payload.sha256 if payload is not None else None
    earlier = history.earlier_payload(sg.zender.organisatie, sg.referentienummer)  # step 8
    if earlier is not None:
        earlier_pk, earlier_sha = earlier
        if earlier_sha == payload_sha:
            return Decision(
                Verdict.DUPLICATE,
                f"same zender, referentienummer and payload as message {earlier_pk}: delivered once already",
                8,
                stuf=stuf,
                envelope=data,
                entry=entry,
                duplicate_of=earlier_pk,
            )
        return refuse(
            8,
            exchange_rules.REFERENTIE_NOT_UNIQUE,
            f"referentienummer {sg.referentienummer} of zender {sg.zender.organisatie} was used for "
            f"another message (message {earlier_pk})",
            entry=entry,
        )

    cross_ref_unknown = False
    if stuf.kind is MessageKind.DU01 and sg.cross_refnummer and not history.we_sent(sg.cross_refnummer):
        cross_ref_unknown = True  # step 9: keep and flag; StUF043 needs BIDN agreement
        warnings.append(f"crossRefnummer {sg.cross_refnummer} matches no message we sent (cf. StUF043)")

    if not entry.standaard.detectable:
        # PGB: no payload format is known here (iWmo/iJw 3.2 message catalogue), so it is routed on the
        # envelope alone.
        if payload is None:
            return refuse(10, StufCode.NOT_SCHEMA_CONFORM, f"{functie} carries no payload", entry=entry)
        warnings.append(f"{functie}: payload format unknown, routed on the envelope only")
        return _routed(
            match.route,
            match.reason,
            match.ggk_code,
            stuf,
            data,
            None,
            entry,
            exchange,
            cross_ref_unknown,
            warnings,
        )
    if payload is None or payload.kind is not PayloadKind.XML:  # step 10
        return refuse(
            10,
            StufCode.NOT_SCHEMA_CONFORM,
            f"{functie} must be carried as xmlBestand (an XML payload)",
            entry=entry,
        )
    # One parse of the payload serves detection (step 12) and validation (step 13). With payload
    # schemas the XSD needs the whole tree, so that is built once; without, only the root and
    # Header are read and the rest is checked for well-formedness but not built: a tree of 18 MB of
    # iWmo XML would take several times the payload's size. A payload the whole-tree parse
    # refuses takes the outline path, and step 13 then reports that refusal as before.
    whole = _whole_tree(payload.data) if schemas is not None else None
    try:
        outline = (
            whole
            if whole is not None
            else parse_outline(payload.data, max_bytes=MAX_PAYLOAD_BYTES, keep=_is_header, what="payload")
        )
        info = detect_root(outline)  # step 12
    except XmlError as exc:
        return refuse(12, StufCode.NOT_SCHEMA_CONFORM, f"payload: {exc}", entry=entry)
    except StufError as exc:
        return refuse(12, StufCode.NOT_SCHEMA_CONFORM, f"payload: {exc.omschrijving}", entry=entry)
    release_refusal = exchange_rules.payload_refusal(exchange, info.release)
    if release_refusal is not None:
        return refuse(12, release_refusal.code, release_refusal.text, info=info, entry=entry)
    # Step 13 before the agreement half of step 12: the header of a payload that fails its own
    # XSD cannot be trusted to compare, and the GGk answer to it is Fo01 StUF055 (StUF 03.01: Fo01/Fo03/Bv03).
    if schemas is not None and schemas.has_schema(info):
        schema_errors = (  # step 13: the XSD needs the whole tree
            validate_tree(whole, info, schemas, catalogue)
            if whole is not None
            else validate(payload.data, info, schemas, catalogue)
        )
    else:
        schema_errors = structural_errors(outline, info, catalogue)
    if schema_errors:
        checked = (
            f"{info.schema_folder}/xsd/{info.berichttype}.xsd"
            if schemas is not None and schemas.has_schema(info)
            else "the structural checks"
        )
        return refuse(
            13,
            StufCode.NOT_SCHEMA_CONFORM,
            f"payload {info.berichttype} is not valid against {checked}: {schema_errors[0]}"
            + (f" (+{len(schema_errors) - 1} more)" if len(schema_errors) > 1 else ""),
            info=info,
            entry=entry,
            cross_ref_unknown=cross_ref_unknown,
        )
    findings = check_against_envelope(info, stuf, catalogue)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings.extend(f"{f.rule}: {f.message}" for f in findings if f.severity is Severity.WARNING)
    if errors:
        # A payload that contradicts its envelope is refused with the GGk code for the situation
        # (IB006 functie/berichtcode, IB005 gemeentecode, IB010 addressee): the sender must hear
        # of it, the GGk itself does not open the payload (GGk handleiding: routing).
        return refuse(
            12,
            exchange_rules.disagreement_code(errors[0].rule),
            "payload disagrees with its envelope: " + "; ".join(f"{f.rule}: {f.message}" for f in errors),
            info=info,
            entry=entry,
            cross_ref_unknown=cross_ref_unknown,
        )

    if schemas is None:
        warnings.append("payload_schemas not set: structural payload checks only")

    return _routed(
        match.route,
        match.reason,
        match.ggk_code,
        stuf,
        data,
        info,
        entry,
        exchange,
        cross_ref_unknown,
        warnings,
    )


def _routed(
    route: Route | None,
    reason: str,
    ggk_code: str | None,
    stuf: StufMessage,
    data: bytes | SpooledRange,
    info: PayloadInfo | None,
    entry: CatalogueEntry,
    exchange: Exchange,
    cross_ref_unknown: bool,
    warnings: list[str],
) -> Decision:
    """Step 15: the route's target, or the mailbox when the exchange goes via Portaal."""
    if exchange.via is Via.PORTAAL:
        # Portaal: received messages are held for manual pick-up (the portal's Ophalen), whatever
        # target a route names; no route is needed.
        sg = stuf.stuurgegevens
        held = Route(
            name=route.name if route is not None else f"portaal-{exchange.key}",
            gemeentecode=sg.ontvanger.organisatie,
            berichttype=entry.berichttype,
            target=MailboxTarget(),
        )
        route, reason = held, f"exchange {exchange.key} goes via Portaal: held in the mailbox for pick-up"
    if route is None:  # step 15
        return Decision(
            Verdict.HOLD,
            reason + (f" (cf. {ggk_code})" if ggk_code else ""),
            15,
            stuf=stuf,
            envelope=data,
            info=info,
            entry=entry,
            exchange=exchange,
            cross_ref_unknown=cross_ref_unknown,
            warnings=tuple(warnings),
        )
    return Decision(
        Verdict.DELIVER,
        reason,
        15,
        stuf=stuf,
        envelope=data,
        info=info,
        entry=entry,
        route=route,
        exchange=exchange,
        cross_ref_unknown=cross_ref_unknown,
        warnings=tuple(warnings),
    )
