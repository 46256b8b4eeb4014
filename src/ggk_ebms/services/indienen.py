"""Submitting one file (``submit``, an outbox ``.xml``, the API): queue it, or record the refusal.

A submission refused before sending must not vanish: the GGk portal's berichtenlog shows what was
refused with its reason (GGk handleiding: Ophalen/berichtenlog; docs/operations.md "Berichtenlog"). A refused
submission is therefore kept as an aanlevering of one file (status Afgekeurd, the file incorrect
with the portal's foutomschrijving), which the berichtenlog already lists as *Geweigerd* and
``aanleveren show`` explains. An accepted submission is a message like any other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ggk_ebms.aanlevering import checks
from ggk_ebms.aanlevering.checks import Fout
from ggk_ebms.delivery.submit import Submitted, Submitter
from ggk_ebms.errors import GgkEbmsError, StoreUnavailableError
from ggk_ebms.services.aanleveren import identify_file, refusal_of
from ggk_ebms.services.context import ServiceContext
from ggk_ebms.store.aanlevering import BatchStore, NewFile

__all__ = ["Indiening", "IndieningResult", "indienen", "unreadable", "weiger"]


@dataclass(frozen=True)
class Indiening:
    """One file to send: the name it came with (for the berichtenlog) and its bytes."""

    bestandsnaam: str
    data: bytes
    cpa_id: str | None = None
    manual: bool = False  # a person's submission: exchanges via Portaal may be sent (docs/exchanges.md)


@dataclass(frozen=True)
class IndieningResult:
    bestandsnaam: str
    submitted: Submitted | None  # the queued message, None when refused
    reden: str | None  # why it was refused (the error text), None when queued
    batch: int | None  # the aanlevering that records the refusal

    @property
    def refused(self) -> bool:
        return self.submitted is None


def weiger(ctx: ServiceContext, bestandsnaam: str, data: bytes | None, fout: Fout) -> int:
    """Record a refused submission as a one-file aanlevering (Afgekeurd); returns its number.

    The file's berichttype, gemeentecode and referentienummer are kept when they can be read, so
    the berichtenlog's filters find the refusal; the file's content is not kept."""
    store = BatchStore(ctx.database)
    size = len(data) if data is not None else 0
    digest = hashlib.sha256(data or b"").hexdigest()
    now = ctx.clock.now()
    batch = store.create(
        bestandsnaam=bestandsnaam[:255], verzender=ctx.actor[:255], size=size, sha256=digest, at=now
    )
    store.start(batch.pk, at=now, expected_end=now, files=1)
    identity = identify_file(data) if data is not None else None
    store.add_file(
        batch.pk,
        NewFile(
            seq=1,
            bestand=bestandsnaam[:255],
            size=size,
            outcome="incorrect",
            foutomschrijving=fout.foutomschrijving,
            fout_detail=fout.fout_detail,
            berichttype=identity.berichttype if identity else None,
            gemeentecode=identity.gemeentecode if identity else None,
            referentienummer=identity.referentienummer if identity else None,
            payload_sha256=identity.payload_sha256 if identity else None,
        ),
        at=now,
    )
    store.finish(batch.pk, at=ctx.clock.now())
    return batch.pk


def indienen(
    ctx: ServiceContext, indiening: Indiening, submitter: Submitter | None = None
) -> IndieningResult:
    """Wrap (when a bare payload) and queue the file; a refusal is recorded (``weiger``).

    ``submitter``: reuse one over many files (it caches the exchange rules and CPAs). A lost
    database is raised, not recorded: there is nowhere to record it."""
    submitter = submitter or Submitter(ctx.settings, ctx.database, ids=ctx.ids, clock=ctx.clock)
    try:
        submitted = submitter.submit(indiening.data, cpa_id=indiening.cpa_id, manual=indiening.manual)
    except StoreUnavailableError:
        raise
    except GgkEbmsError as exc:
        batch = weiger(ctx, indiening.bestandsnaam, indiening.data, refusal_of(exc))
        return IndieningResult(indiening.bestandsnaam, None, str(exc), batch)
    return IndieningResult(indiening.bestandsnaam, submitted, None, None)


def unreadable(
    ctx: ServiceContext, bestandsnaam: str, reason: str, foutomschrijving: str = checks.ONLEESBAAR
) -> IndieningResult:
    """A file that could not be read (or is no .xml in the outbox): recorded as refused."""
    batch = weiger(ctx, bestandsnaam, None, Fout(foutomschrijving, reason))
    return IndieningResult(bestandsnaam, None, reason, batch)
