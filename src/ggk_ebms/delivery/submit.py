"""Outbound from domain applications: wrap an iWmo/iJw/iEb payload (or take a ready StUF
envelope), find its CPA and queue it on the ebMS outbound path (GGk handleiding: outbound wrap).

A bare payload is checked (detect, XSD when payload_schemas is set) and wrapped by us:

- Di01 for a heen message, Du01 for a retour or answer (catalogue, iWmo/iJw 3.2 message catalogue);
- zender = our gemeentecode from the payload header field the catalogue names, applicatie =
  setting stuf_applicatie; ontvanger = the AGB from the other header field, or ``CAK`` for iEb,
  applicatie ``GGk``;
- referentienummer a new lowercase UUID v4, tijdstipBericht now (Dutch local time);
- functieVersie/Subversie from the payload's BerichtVersie/Subversie (*inferred*, StUF-GGk spec: Di01/Du01);
- Du01 crossRefnummer = the referentienummer of the received heen message it answers, found by
  the copied header (iStandaarden header and retour pairing: same BerichtIdentificatie, gemeentecode and
partner;
  for a 325 its DeclaratieIdentificatie names the 323).

A ready Di01/Du01/Fo01 envelope is validated (structure, payload, its agreement with the
envelope) and sent unchanged. The CPA: ``--cpa`` when given; for a retour the CPA the heen came
in on; else the route for (gemeentecode, berichttype) when it is an ebMS target; else the one
stored CPA under which we can send this kind of StUF message.

Before anything is queued the exchange of the berichttype (docs/exchanges.md) must allow it: actief,
via Digikoppeling (Portaal: only a manual aanlevering, ``manual=True``), the zender gemeentecode a
CBS code served by this installation (setting ``served_gemeentecodes``) and the exchange, the envelope in
the exchange's generation and the payload in its release. A bare payload is wrapped in the
exchange's generation (ggk0210 or ggk0310). The exchange's CPA profile comes after ``--cpa`` and the
heen's CPA; during a renewal overlap the newest valid CPA of the pair is chosen.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.cpa.overlap import Candidate, newest_for_pair
from ggk_ebms.delivery.outbound import queue_stuf, stuf_binding
from ggk_ebms.errors import CpaError, GgkEbmsError, StufError, XmlError
from ggk_ebms.exchanges.model import Exchange
from ggk_ebms.exchanges.rules import OutboundRefused, Rules, check_outbound
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue, CatalogueEntry, Party, Soort
from ggk_ebms.payloads.detect import PayloadInfo, Severity, check_against_envelope, detect
from ggk_ebms.payloads.validate import PayloadSchemas, validate
from ggk_ebms.pipeline.outbound import load_agreement
from ggk_ebms.routing.table import EbmsTarget
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.exchanges import load_rules
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import StoredStuf, StufStore
from ggk_ebms.stuf.codes import StufCode
from ggk_ebms.stuf.envelope import MAX_SEND_BYTES, parse_envelope
from ggk_ebms.stuf.generations import build_envelope
from ggk_ebms.stuf.model import MessageKind, StufMessage, Systeem
from ggk_ebms.xml import parse

log = logging.getLogger(__name__)

GEMEENTECODE: Final = re.compile(r"[0-9]{4}")
ONTVANGER_APPLICATIE: Final = "GGk"  # StUF-GGk spec: Di01/Du01: ontvanger/applicatie is always GGk


@dataclass(frozen=True)
class Submitted:
    message: StoredMessage
    stuf: StufMessage
    wrapped: bool
    answers: int | None  # the received heen message a Du01 answers
    cpa_note: str | None = None  # how the CPA was chosen during a renewal overlap

    def describe(self) -> str:
        sg = self.stuf.stuurgegevens
        text = (
            f"queued {self.stuf.kind.value} {self.stuf.functie or ''} referentienummer {sg.referentienummer} "
            f"from {sg.zender.organisatie} to {sg.ontvanger.organisatie} as message {self.message.pk} "
            f"({self.message.message_id}) on CPA {self.message.cpa_id}"
        )
        if sg.cross_refnummer:
            text += f", crossRefnummer {sg.cross_refnummer}"
        if self.cpa_note:
            text += f"; {self.cpa_note}"
        return text


def _refuse(text: str, code: str = StufCode.NOT_SCHEMA_CONFORM) -> StufError:
    return StufError(code, text)


def _check_payload(
    payload: bytes, info: PayloadInfo, schemas: PayloadSchemas | None, catalogue: Catalogue
) -> None:
    errors = validate(payload, info, schemas, catalogue)
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _refuse(f"payload {info.berichttype} is not valid: {errors[0]}{more}")


def _declaratie_identificatie(payload: bytes, info: PayloadInfo) -> str | None:
    """Header/DeclaratieIdentificatie/Identificatie of a 325
    (iStandaarden header and retour): names the 323 it answers."""
    root = parse(payload, max_bytes=MAX_SEND_BYTES, what="payload")
    for element in root.iter(f"{{{info.namespace}}}DeclaratieIdentificatie"):
        for child in element:
            if isinstance(child.tag, str) and child.tag.endswith("}Identificatie"):
                return (child.text or "").strip() or None
    return None


class Submitter:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        ids: IdGenerator,
        clock: Clock,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
    ) -> None:
        self.settings = settings
        self.database = database
        self.ids = ids
        self.clock = clock
        self.catalogue = catalogue
        self.stufs = StufStore(database, clock)
        self.schemas = PayloadSchemas(settings.payload_schemas) if settings.payload_schemas else None
        self.rules: Rules = load_rules(settings, database)
        self.chosen_note: str | None = None  # how the CPA was chosen when it was an overlap

    def submit(self, data: bytes, *, cpa_id: str | None = None, manual: bool = False) -> Submitted:
        """Wrap (or take) and queue one payload or envelope. Raises StufError, CpaError, StoreError.

        ``manual``: a person hands this message in (``send``, an aanlevering), which an exchange via
        Portaal allows; the outbox is automatic and does not."""
        self.chosen_note = None
        envelope = self._as_envelope(data)
        if envelope is not None:
            return self._send_ready(envelope, data, cpa_id, manual)
        return self._wrap_and_send(data, cpa_id, manual)

    def _served_by_routes(self) -> frozenset[str]:
        current = RouteStore(self.database).current()
        if current is None:
            return frozenset()
        try:
            return current.table().served_gemeentecodes
        except GgkEbmsError:
            return frozenset()

    def _check_rules(
        self,
        berichttype: str,
        gemeentecode: str,
        stuf: StufMessage | None,
        release: str | None,
        manual: bool,
    ) -> Exchange:
        """The exchange rules, before anything is queued (docs/exchanges.md)."""
        try:
            return check_outbound(
                self.rules,
                berichttype=berichttype,
                gemeentecode=gemeentecode,
                stuf=stuf,
                release=release,
                fallback_served=self._served_by_routes(),
                manual=manual,
            )
        except OutboundRefused as exc:
            raise StufError(exc.refusal.code, exc.refusal.text) from None

    # --- a ready envelope ----------------------------------------------------------------------

    def _as_envelope(self, data: bytes) -> StufMessage | None:
        try:
            return parse_envelope(data, max_bytes=MAX_SEND_BYTES)
        except XmlError as exc:
            raise _refuse(f"not XML we accept: {exc}") from None
        except StufError as exc:
            if exc.code == StufCode.BERICHTCODE_UNKNOWN and exc.stuurgegevens is None:
                return None  # not a StUF message: a bare payload
            raise

    def _send_ready(self, stuf: StufMessage, data: bytes, cpa_id: str | None, manual: bool) -> Submitted:
        if stuf.kind not in (MessageKind.DI01, MessageKind.DU01, MessageKind.FO01):
            raise _refuse(f"a {stuf.kind.value} is not sent by a gemeente", StufCode.BERICHTCODE_UNSUPPORTED)
        sg = stuf.stuurgegevens
        info = None
        heen: StoredStuf | None = None
        entry = self.catalogue.get(stuf.functie or "")
        opaque = entry is not None and not entry.standaard.detectable
        if stuf.kind.is_envelope and stuf.payload is None:
            raise _refuse("the envelope carries no payload")
        if stuf.kind.is_envelope and entry is not None and opaque and entry.sender is not Party.GEMEENTE:
            raise _refuse(
                f"{entry.berichttype} ({entry.omschrijving}) is sent by a {entry.sender.value}, "
                "not by a gemeente",
                StufCode.FUNCTIE_UNSUPPORTED,
            )
        if stuf.kind.is_envelope and not opaque:
            assert stuf.payload is not None  # checked above
            info = detect(stuf.payload.data)
            errors = [
                f for f in check_against_envelope(info, stuf, self.catalogue) if f.severity is Severity.ERROR
            ]
            if errors:
                raise _refuse("payload disagrees with its envelope: " + "; ".join(f.message for f in errors))
            _check_payload(stuf.payload.data, info, self.schemas, self.catalogue)
        if sg.cross_refnummer:
            heen = self.stufs.received_by_referentienummer(sg.cross_refnummer)
        gemeentecode = sg.zender.organisatie
        exchange = None
        if stuf.kind.is_envelope:
            exchange = self._check_rules(
                stuf.functie or "", gemeentecode, stuf, info.release if info else None, manual
            )
        else:  # a Fo01 names no functie; it still goes out in the name of a gemeente we serve
            refusal = self.rules.gemeente_refusal(gemeentecode, None, fallback=self._served_by_routes())
            if refusal is not None:
                raise StufError(refusal.code, refusal.text)
        chosen = self._cpa(cpa_id, stuf.kind, gemeentecode, stuf.functie, heen, exchange)
        stored = queue_stuf(
            self.settings,
            self.database,
            cpa_id=chosen,
            stuf=stuf,
            data=data,
            gemeentecode=gemeentecode,
            conversation_id=self._conversation(heen),
            bericht_identificatie=info.identificatie if info else None,
            payload_sha256=stuf.payload.sha256 if stuf.payload else None,
            ids=self.ids,
            clock=self.clock,
        )
        return Submitted(
            stored, stuf, wrapped=False, answers=heen.message_pk if heen else None, cpa_note=self.chosen_note
        )

    # --- a bare payload ------------------------------------------------------------------------

    def _wrap_and_send(self, payload: bytes, cpa_id: str | None, manual: bool) -> Submitted:
        info = detect(payload, max_bytes=MAX_SEND_BYTES)
        entry = self.catalogue.get(info.berichttype)
        if entry is None:
            raise _refuse(
                f"berichttype {info.berichttype} is not in the catalogue", StufCode.FUNCTIE_UNSUPPORTED
            )
        if entry.sender is not Party.GEMEENTE:
            raise _refuse(
                f"{entry.berichttype} ({entry.omschrijving}) is sent by a {entry.sender.value}, "
                "not by a gemeente",
                StufCode.FUNCTIE_UNSUPPORTED,
            )
        gemeentecode = info.header_value(entry.gemeente_field.value) or ""
        if not GEMEENTECODE.fullmatch(gemeentecode):
            raise _refuse(f"Header/{entry.gemeente_field.value} holds no 4-digit gemeentecode")
        exchange = self._check_rules(entry.berichttype, gemeentecode, None, info.release, manual)
        _check_payload(payload, info, self.schemas, self.catalogue)
        partner = self._partner(info, entry)
        zender = Systeem(gemeentecode, self.settings.stuf_applicatie)
        ontvanger = Systeem(partner, ONTVANGER_APPLICATIE)
        functie_versie = int(info.bericht_versie or 0)
        functie_subversie = int(info.bericht_subversie or 0)
        heen: StoredStuf | None = None
        if entry.envelope is MessageKind.DU01:
            heen = self._heen_for(payload, info, entry, gemeentecode, partner)
        built = build_envelope(
            exchange.stuf_version,
            entry.envelope,
            zender=zender,
            ontvanger=ontvanger,
            functie=entry.berichttype,
            payload=payload,
            cross_ref=heen.referentienummer if heen is not None else None,
            ids=self.ids,
            tijdstip=self.clock.now(),
            functie_versie=functie_versie,
            functie_subversie=functie_subversie,
        )
        stuf = parse_envelope(built.data, max_bytes=MAX_SEND_BYTES)
        chosen = self._cpa(cpa_id, stuf.kind, gemeentecode, entry.berichttype, heen, exchange)
        stored = queue_stuf(
            self.settings,
            self.database,
            cpa_id=chosen,
            stuf=stuf,
            data=built.data,
            gemeentecode=gemeentecode,
            conversation_id=self._conversation(heen),
            bericht_identificatie=info.identificatie,
            payload_sha256=stuf.payload.sha256 if stuf.payload else None,
            ids=self.ids,
            clock=self.clock,
        )
        log.info("submitted %s as message %s", entry.berichttype, stored.pk)
        return Submitted(
            stored, stuf, wrapped=True, answers=heen.message_pk if heen else None, cpa_note=self.chosen_note
        )

    def _partner(self, info: PayloadInfo, entry: CatalogueEntry) -> str:
        if entry.receiver is Party.CAK:
            return Party.CAK.value  # iEb headers name no Ontvanger (iWmo/iJw 3.2 message catalogue)
        other = entry.other_field
        value = info.header_value(other) if other else None
        if not value:
            raise _refuse(f"Header/{other} is empty: no addressee for the envelope")
        return value

    def _heen_for(
        self, payload: bytes, info: PayloadInfo, entry: CatalogueEntry, gemeentecode: str, partner: str
    ) -> StoredStuf:
        identificatie = (
            _declaratie_identificatie(payload, info) if entry.soort is Soort.ANTWOORD else info.identificatie
        )
        if not identificatie or entry.pair is None:
            raise _refuse(f"{entry.berichttype} names no BerichtIdentificatie of the message it answers")
        heen = self.stufs.heen_for_retour(
            berichttype=entry.pair,
            bericht_identificatie=identificatie,
            gemeentecode=gemeentecode,
            partner=partner,
        )
        if heen is None:
            raise _refuse(
                f"no received {entry.pair} from {partner} to {gemeentecode} with BerichtIdentificatie "
                f"{identificatie}: cannot fill the Du01 crossRefnummer",
                StufCode.CROSSREF_UNKNOWN,
            )
        return heen

    def _conversation(self, heen: StoredStuf | None) -> str | None:
        if heen is None:
            return None
        return MessageStore(self.database).get(heen.message_pk).conversation_id

    def _cpa(
        self,
        cpa_id: str | None,
        kind: MessageKind,
        gemeentecode: str,
        berichttype: str | None,
        heen: StoredStuf | None,
        exchange: Exchange | None = None,
    ) -> str:
        if cpa_id:
            return cpa_id
        if heen is not None:
            return MessageStore(self.database).get(heen.message_pk).cpa_id
        if exchange is not None and exchange.cpa_id:
            return exchange.cpa_id  # the exchange's CPA profiel (GGk routing page)
        current = RouteStore(self.database).current()
        if current is not None and berichttype:
            try:
                match = current.table().match(gemeentecode, berichttype)
            except GgkEbmsError:
                match = None
            if match is not None and match.route is not None and isinstance(match.route.target, EbmsTarget):
                return match.route.target.cpa_id
        usable: list[str] = []
        candidates: list[Candidate] = []
        now = self.clock.now()
        for stored in CpaRepository(self.database).list():
            if not stored.start <= now < stored.end:
                continue
            try:
                agreement = load_agreement(
                    self.database, stored.cpa_id, max_cpa_bytes=self.settings.max_cpa_bytes
                )
                stuf_binding(agreement, self.settings.party_ids, kind)
            except GgkEbmsError:
                continue
            usable.append(stored.cpa_id)
            candidates.append(
                Candidate(stored.cpa_id, frozenset(stored.party_ids), stored.start, stored.imported_at)
            )
        if len(usable) == 1:
            return usable[0]
        if not usable:
            raise CpaError(f"no stored CPA lets us send a StUF {kind.value}; import one or pass --cpa")
        choice = newest_for_pair(candidates)
        if choice is not None:  # a renewal overlap: the newest valid CPA of the same pair
            self.chosen_note = choice.describe()
            log.info("outbound %s: %s", kind.value, self.chosen_note)
            return choice.chosen.cpa_id
        raise CpaError(
            f"several CPAs can carry a StUF {kind.value} ({', '.join(sorted(usable))}); pass --cpa"
        )


def check_raw_part(settings: Settings, database: Database, data: bytes) -> None:
    """For ``ggk-ebms send``: a payload part that is a StUF Di01/Du01/Fo01 must meet the exchange
    and gemeentecode rules too (docs/exchanges.md), so the raw ebMS path is no way around them.
    Anything that is not a StUF message passes. Raises StufError."""
    try:
        stuf = parse_envelope(data, max_bytes=MAX_SEND_BYTES)
    except (XmlError, StufError):
        return  # not (valid) StUF: the raw path carries what it is given
    rules = load_rules(settings, database)
    current = RouteStore(database).current()
    try:
        served = current.table().served_gemeentecodes if current is not None else frozenset()
    except GgkEbmsError:
        served = frozenset()
    gemeentecode = stuf.stuurgegevens.zender.organisatie
    if not stuf.kind.is_envelope:
        refusal = rules.gemeente_refusal(gemeentecode, None, fallback=served)
        if refusal is not None:
            raise StufError(refusal.code, refusal.text)
        return
    release = None
    entry = DEFAULT_CATALOGUE.get(stuf.functie or "")
    if stuf.payload is not None and (entry is None or entry.standaard.detectable):
        try:
            release = detect(stuf.payload.data).release
        except StufError:
            release = None
    try:
        check_outbound(
            rules,
            berichttype=stuf.functie or "",
            gemeentecode=gemeentecode,
            stuf=stuf,
            release=release,
            fallback_served=served,
            manual=True,
        )
    except OutboundRefused as exc:
        raise StufError(exc.refusal.code, exc.refusal.text) from None


# --- the outbox folder ---------------------------------------------------------------------------


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.stem}.{counter}{path.suffix}"
        counter += 1
    shutil.move(str(path), target)
    return target


OUTBOX_XML: Final = ".xml"  # compared case-insensitively: the GGk manuals write .XML
OUTBOX_ZIP: Final = ".zip"  # an aanlevering (aanlevering.outbox, docs/operations.md)


def _reason(moved: Path, text: str) -> None:
    moved.with_name(moved.name + ".reason.txt").write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def _forget_put_back(folder: Path) -> None:
    """A file taken out of failed/ (put back in the outbox, or deleted) leaves no stale reason."""
    failed = folder / "failed"
    if not failed.is_dir():
        return
    for reason in failed.glob("*.reason.txt"):
        if not reason.with_name(reason.name.removesuffix(".reason.txt")).exists():
            reason.unlink(missing_ok=True)


def scan_outbox(settings: Settings, database: Database, *, ids: IdGenerator, clock: Clock) -> int:
    """Handle every file in outbox_dir; move each to done/ or failed/ with a reason file.

    ``.zip`` batches (any case) go through Aanleveren (``aanlevering.outbox``, docs/operations.md);
    ``.xml`` and ``.XML`` files are submitted; anything else is moved to failed/ with a reason,
    never ignored in silence. Domain applications must write a file under a dot-name and rename it
    into place when complete, as the directory target does for them: dot-files (half-written) are
    not read. Returns how many files were handled.
    """
    folder = settings.outbox_dir
    if not folder.is_dir():
        return 0
    _forget_put_back(folder)
    from ggk_ebms.aanlevering.outbox import deliver_zips  # services build on this module

    zips = deliver_zips(settings, database, ids=ids, clock=clock, move=_move)
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() != OUTBOX_ZIP
    )
    if not files:
        return zips
    from ggk_ebms.aanlevering import checks
    from ggk_ebms.aanlevering.outbox import ACTOR
    from ggk_ebms.services.context import ServiceContext
    from ggk_ebms.services.indienen import Indiening, indienen, unreadable

    # Refusals are recorded as one-file aanleveringen, so the berichtenlog shows them as
    # Geweigerd with their reason, as it shows a refused ZIP file (docs/operations.md).
    ctx = ServiceContext(database=database, settings=settings, actor=ACTOR, clock=clock, ids=ids)
    submitter: Submitter | None = None
    for path in files:
        if path.suffix.lower() != OUTBOX_XML:
            result = unreadable(
                ctx,
                path.name,
                f"{path.name}: the outbox takes .xml (or .XML) files and .zip batches only",
                checks.GEEN_XML,
            )
        else:
            try:
                data = path.read_bytes()
            except OSError as exc:
                result = unreadable(ctx, path.name, f"{path.name}: cannot be read ({exc.strerror})")
            else:
                submitter = submitter or Submitter(settings, database, ids=ids, clock=clock)
                result = indienen(ctx, Indiening(path.name, data), submitter)
        if result.submitted is None:
            moved = _move(path, folder / "failed")
            _reason(moved, f"{result.reden} (aanlevering {result.batch})")
            log.warning("outbox file %s refused: %s", path.name, result.reden)
            continue
        moved = _move(path, folder / "done")
        _reason(moved, result.submitted.describe())
    return zips + len(files)
