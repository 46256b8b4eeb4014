"""Outbound from domain applications: wrap an iWmo/iJw/iEb payload (or take a ready StUF
envelope), find its CPA and queue it on the ebMS outbound path (stuf-ggk digest §4.3).

A bare payload is checked (detect, XSD when payload_schemas is set) and wrapped by us:

- Di01 for a heen message, Du01 for a retour or answer (catalogue, digest §1);
- zender = our gemeentecode from the payload header field the catalogue names, applicatie =
  setting stuf_applicatie; ontvanger = the AGB from the other header field, or ``CAK`` for iEb,
  applicatie ``GGk``;
- referentienummer a new lowercase UUID v4, tijdstipBericht now (Dutch local time);
- functieVersie/Subversie from the payload's BerichtVersie/Subversie (*inferred*, §2.2);
- Du01 crossRefnummer = the referentienummer of the received heen message it answers, found by
  the copied header (digest §3.2 pairing: same BerichtIdentificatie, gemeentecode and partner;
  for a 325 its DeclaratieIdentificatie names the 323).

A ready Di01/Du01/Fo01 envelope is validated (structure, payload, its agreement with the
envelope) and sent unchanged. The CPA: ``--cpa`` when given; for a retour the CPA the heen came
in on; else the route for (gemeentecode, berichttype) when it is an ebMS target; else the one
stored CPA under which we can send this kind of StUF message.
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
from ggk_ebms.delivery.outbound import queue_stuf, stuf_binding
from ggk_ebms.errors import CpaError, GgkEbmsError, StufError, XmlError
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue, CatalogueEntry, Party, Soort
from ggk_ebms.payloads.detect import PayloadInfo, Severity, check_against_envelope, detect
from ggk_ebms.payloads.validate import PayloadSchemas, validate
from ggk_ebms.pipeline.outbound import load_agreement
from ggk_ebms.routing.table import EbmsTarget
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.store.routes import RouteStore
from ggk_ebms.store.stuf import StoredStuf, StufStore
from ggk_ebms.stuf.codes import StufCode
from ggk_ebms.stuf.envelope import MAX_SEND_BYTES, build_di01, build_du01, parse_envelope
from ggk_ebms.stuf.model import MessageKind, StufMessage, Systeem
from ggk_ebms.xml import parse

log = logging.getLogger(__name__)

GEMEENTECODE: Final = re.compile(r"[0-9]{4}")
ONTVANGER_APPLICATIE: Final = "GGk"  # digest §2.2: ontvanger/applicatie is always GGk


@dataclass(frozen=True)
class Submitted:
    message: StoredMessage
    stuf: StufMessage
    wrapped: bool
    answers: int | None  # the received heen message a Du01 answers

    def describe(self) -> str:
        sg = self.stuf.stuurgegevens
        text = (
            f"queued {self.stuf.kind.value} {self.stuf.functie or ''} referentienummer {sg.referentienummer} "
            f"from {sg.zender.organisatie} to {sg.ontvanger.organisatie} as message {self.message.pk} "
            f"({self.message.message_id}) on CPA {self.message.cpa_id}"
        )
        if sg.cross_refnummer:
            text += f", crossRefnummer {sg.cross_refnummer}"
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
    """Header/DeclaratieIdentificatie/Identificatie of a 325 (digest §3.2): names the 323 it answers."""
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

    def submit(self, data: bytes, *, cpa_id: str | None = None) -> Submitted:
        """Wrap (or take) and queue one payload or envelope. Raises StufError, CpaError, StoreError."""
        envelope = self._as_envelope(data)
        if envelope is not None:
            return self._send_ready(envelope, data, cpa_id)
        return self._wrap_and_send(data, cpa_id)

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

    def _send_ready(self, stuf: StufMessage, data: bytes, cpa_id: str | None) -> Submitted:
        if stuf.kind not in (MessageKind.DI01, MessageKind.DU01, MessageKind.FO01):
            raise _refuse(f"a {stuf.kind.value} is not sent by a gemeente", StufCode.BERICHTCODE_UNSUPPORTED)
        sg = stuf.stuurgegevens
        info = None
        heen: StoredStuf | None = None
        if stuf.kind.is_envelope:
            if stuf.payload is None:
                raise _refuse("the envelope carries no payload")
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
        chosen = self._cpa(cpa_id, stuf.kind, gemeentecode, stuf.functie, heen)
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
        return Submitted(stored, stuf, wrapped=False, answers=heen.message_pk if heen else None)

    # --- a bare payload ------------------------------------------------------------------------

    def _wrap_and_send(self, payload: bytes, cpa_id: str | None) -> Submitted:
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
        _check_payload(payload, info, self.schemas, self.catalogue)
        gemeentecode = info.header_value(entry.gemeente_field.value) or ""
        if not GEMEENTECODE.fullmatch(gemeentecode):
            raise _refuse(f"Header/{entry.gemeente_field.value} holds no 4-digit gemeentecode")
        partner = self._partner(info, entry)
        zender = Systeem(gemeentecode, self.settings.stuf_applicatie)
        ontvanger = Systeem(partner, ONTVANGER_APPLICATIE)
        functie_versie = int(info.bericht_versie or 0)
        functie_subversie = int(info.bericht_subversie or 0)
        heen: StoredStuf | None = None
        if entry.envelope is MessageKind.DU01:
            heen = self._heen_for(payload, info, entry, gemeentecode, partner)
            built = build_du01(
                zender=zender,
                ontvanger=ontvanger,
                functie=entry.berichttype,
                payload=payload,
                cross_ref=heen.referentienummer,
                ids=self.ids,
                tijdstip=self.clock.now(),
                functie_versie=functie_versie,
                functie_subversie=functie_subversie,
            )
        else:
            built = build_di01(
                zender=zender,
                ontvanger=ontvanger,
                functie=entry.berichttype,
                payload=payload,
                ids=self.ids,
                tijdstip=self.clock.now(),
                functie_versie=functie_versie,
                functie_subversie=functie_subversie,
            )
        stuf = parse_envelope(built.data, max_bytes=MAX_SEND_BYTES)
        chosen = self._cpa(cpa_id, stuf.kind, gemeentecode, entry.berichttype, heen)
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
        return Submitted(stored, stuf, wrapped=True, answers=heen.message_pk if heen else None)

    def _partner(self, info: PayloadInfo, entry: CatalogueEntry) -> str:
        if entry.receiver is Party.CAK:
            return Party.CAK.value  # iEb headers name no Ontvanger (digest §1)
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
    ) -> str:
        if cpa_id:
            return cpa_id
        if heen is not None:
            return MessageStore(self.database).get(heen.message_pk).cpa_id
        current = RouteStore(self.database).current()
        if current is not None and berichttype:
            try:
                match = current.table().match(gemeentecode, berichttype)
            except GgkEbmsError:
                match = None
            if match is not None and match.route is not None and isinstance(match.route.target, EbmsTarget):
                return match.route.target.cpa_id
        usable: list[str] = []
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
        if len(usable) == 1:
            return usable[0]
        if not usable:
            raise CpaError(f"no stored CPA lets us send a StUF {kind.value}; import one or pass --cpa")
        raise CpaError(
            f"several CPAs can carry a StUF {kind.value} ({', '.join(sorted(usable))}); pass --cpa"
        )


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


def scan_outbox(settings: Settings, database: Database, *, ids: IdGenerator, clock: Clock) -> int:
    """Submit every ``*.xml`` in outbox_dir; move each to done/ or failed/ with a reason file.
    Every ``*.zip`` goes through Aanleveren instead (``aanlevering.outbox``, docs/operations.md).

    Domain applications must write a file under another name (or a dot-name) and rename it into
    place when complete, as the directory target does for them: half-written files are not read.
    Returns how many files were handled.
    """
    folder = settings.outbox_dir
    if not folder.is_dir():
        return 0
    from ggk_ebms.aanlevering.outbox import deliver_zips  # services build on this module

    zips = deliver_zips(settings, database, ids=ids, clock=clock, move=_move)
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix == ".xml" and not p.name.startswith(".")
    )
    if not files:
        return zips
    submitter = Submitter(settings, database, ids=ids, clock=clock)
    for path in files:
        try:
            submitted = submitter.submit(path.read_bytes())
        except (GgkEbmsError, OSError) as exc:
            moved = _move(path, folder / "failed")
            moved.with_name(moved.name + ".reason.txt").write_text(f"{exc}\n", encoding="utf-8")
            log.warning("outbox file %s refused: %s", path.name, exc)
            continue
        moved = _move(path, folder / "done")
        moved.with_name(moved.name + ".reason.txt").write_text(submitted.describe() + "\n", encoding="utf-8")
    return zips + len(files)
