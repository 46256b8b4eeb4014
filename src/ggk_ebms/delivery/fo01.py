"""Answer a refused StUF message with a Fo01 back to its sender, on the outbound path.

The Fo01 (StUF 03.01: Fo01/Fo03/Bv03) goes under the CPA the refused message came in on, to its
sender: crossRefnummer = the refused message's referentienummer, ontvanger = its zender,
zender = us (the gemeentecode it was addressed to and our applicatie), code/plek/omschrijving
from the refusal, details ``functie-applicatieVersie+Subversie`` and detailsXML = the original
envelope. The Fo01 therefore holds personal data: it is stored as an outbound message like any
other and never logged.
"""

from __future__ import annotations

import logging

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery.outbound import queue_stuf
from ggk_ebms.delivery.unwrap import Decision
from ggk_ebms.errors import StufError
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import StoredMessage
from ggk_ebms.stuf.codes import describe
from ggk_ebms.stuf.envelope import build_fo01_reply, parse_envelope
from ggk_ebms.stuf.model import Systeem

log = logging.getLogger(__name__)


def fo01_wanted(settings: Settings, decision: Decision) -> bool:
    """A Fo01 goes back when the refusal has a code we agreed to send and the sender is known."""
    fout = decision.fout
    return fout is not None and decision.stuf is not None and fout.code in settings.fo01_codes


def queue_fo01(
    settings: Settings,
    database: Database,
    *,
    received: StoredMessage,
    decision: Decision,
    ids: IdGenerator,
    clock: Clock,
) -> StoredMessage:
    """Build the Fo01 for ``decision`` and queue it to the sender of ``received``."""
    failed, error = decision.stuf, decision.fout
    if failed is None or error is None:
        raise StufError("StUF058", "no stuurgegevens to address a Fo01 to", plek="server")
    us = Systeem(failed.stuurgegevens.ontvanger.organisatie, settings.stuf_applicatie)
    built = build_fo01_reply(
        failed, error, zender=us, ids=ids, tijdstip=clock.now(), original=decision.envelope
    )
    stored = queue_stuf(
        settings,
        database,
        cpa_id=received.cpa_id,
        stuf=parse_envelope(built.data),
        data=built.data,
        gemeentecode=us.organisatie,
        conversation_id=received.conversation_id,
        ids=ids,
        clock=clock,
    )
    log.warning(
        "Fo01 %s queued as message %s to %s about referentienummer %s (received message %s)",
        describe(error.code),
        stored.pk,
        failed.stuurgegevens.zender.organisatie,
        failed.referentienummer,
        received.pk,
    )
    return stored
