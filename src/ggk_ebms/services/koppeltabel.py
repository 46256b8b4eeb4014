"""Koppeltabel use cases: take messages in, show a message's relations, and the two open-ends
queries ("toewijzingen without a start within N days", "declaraties without an antwoord").

Taking in is a catch-up over the stored traffic (``catch_up``): every business message not yet
read is read once, its keys stored and its relations to earlier (or, out of order, later)
messages recorded. ``serve`` runs it between bursts of traffic (``koppeltabel_task``,
koppeltabel_pace.py); submitting through the services layer and every query here run it first,
so an answer never misses a stored message. docs/koppeltabel.md describes the rules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from ggk_ebms.clock import Clock
from ggk_ebms.errors import GgkEbmsError, StufError, XmlError
from ggk_ebms.koppeltabel import BODY_IDENTIFIERS, Keys, Link, Relation, keys_of, relate_either
from ggk_ebms.koppeltabel_batch import Member, Pair, batch_probes, relate_batch
from ggk_ebms.koppeltabel_pace import CatchUpPace
from ggk_ebms.payloads.detect import MAX_PAYLOAD_BYTES, detect_root
from ggk_ebms.runtime import Runtime
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.spool import SpooledRange
from ggk_ebms.store.db import Database
from ggk_ebms.store.koppeltabel import (
    BATCH,
    MAX_CANDIDATES,
    KoppelMessage,
    KoppelStore,
    RelatedMessage,
    Unindexed,
)
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.store.tables import KOPPEL_VALUE_MAX
from ggk_ebms.stuf.envelope import parse_envelope
from ggk_ebms.stuf.model import PayloadKind
from ggk_ebms.xml import parse_outline

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 5.0
POLL_LIMIT: Final = 1000  # messages per poll: one poll's work stays bounded after a long burst
MAX_DAYS: Final = 3660


def _is_header(tag: str) -> bool:
    return tag.endswith("}Header") or tag == "Header"


def _is_identifier(tag: str) -> bool:
    return tag.rpartition("}")[2] in BODY_IDENTIFIERS


def read_keys(envelope: bytes | SpooledRange | None) -> Keys | None:
    """The koppeltabel keys of a stored first part; None when it is no StUF message."""
    if envelope is None:
        return None
    try:
        stuf = parse_envelope(envelope)
    except (StufError, XmlError):
        return None
    root = info = None
    if stuf.payload is not None and stuf.payload.kind is PayloadKind.XML:
        try:
            # Only the Header (for detect_root) and the identifier elements (for keys_of) are
            # built: a whole tree of an 18 MB iWmo payload takes several times its size
            # (docs/performance.md "Memory"). The rest is still checked for well-formedness.
            root = parse_outline(
                stuf.payload.data,
                max_bytes=MAX_PAYLOAD_BYTES,
                keep=_is_header,
                pick=_is_identifier,
                what="payload",
            )
            info = detect_root(root)
        except (StufError, XmlError):
            root = info = None  # not an iStandaarden payload: the stuurgegevens still link
    return keys_of(stuf, info, root)


def index_message(database: Database, clock: Clock, pk: int, envelope: bytes | SpooledRange | None) -> int:
    """Read one message into the koppeltabel; the number of new relations."""
    return _index_keys(KoppelStore(database), clock, pk, read_keys(envelope))


def _index_keys(store: KoppelStore, clock: Clock, pk: int, keys: Keys | None) -> int:
    links = []
    if keys is not None:
        # Candidates first, then keys and relations in one transaction (one commit per message).
        for other_pk, other in store.candidates(pk, keys.probes()):
            links.extend(relate_either((other_pk, other), (pk, keys)))
    return store.save_keys(pk, keys, clock.now(), links)


def _read_member(store: KoppelStore, item: Unindexed) -> Member:
    """The keys of one message of a batch. A large first part is spooled, parsed and dropped
    before the next is read: a batch never holds more than one large envelope (large_parts.py)."""
    return Member(item.pk, read_keys(store.first_part(item)))


def index_batch(database: Database, clock: Clock, batch: Sequence[Unindexed]) -> int:
    """Read a batch of messages into the koppeltabel in one transaction; the number of new
    relations. The outcome is the one of reading them one by one in pk order
    (koppeltabel_batch.py): one query finds what every probe of the batch matches, and the keys
    and relations of all of them are stored together (KoppelStore.index_batch).
    """
    store = KoppelStore(database)
    members = [_read_member(store, item) for item in batch]

    def relate(
        todo: Sequence[Member], holders: Mapping[Pair, list[int]], stored: Mapping[int, Keys]
    ) -> list[Link]:
        return relate_batch(todo, holders, stored, width=KOPPEL_VALUE_MAX, max_candidates=MAX_CANDIDATES)

    added = store.index_batch(members, batch_probes(members, KOPPEL_VALUE_MAX), relate, clock.now())
    if added is not None:
        return added
    # A hot identifier, or another reader stored one of these first: one by one, which bounds
    # the candidates per message and keeps the other reader's work.
    log.info("koppeltabel: batch of %d read one by one", len(members))
    return _one_by_one(store, clock, members)


def _one_by_one(store: KoppelStore, clock: Clock, members: Sequence[Member]) -> int:
    added = 0
    for member in sorted(members, key=lambda m: m.pk):
        try:
            added += _index_keys(store, clock, member.pk, member.keys)
        except GgkEbmsError as exc:
            # Another process read it at the same moment (unique key): its work stands.
            log.info("koppeltabel: message %d skipped: %s", member.pk, type(exc).__name__)
            if not store.is_indexed(member.pk):
                raise
    return added


def catch_up(database: Database, clock: Clock, *, limit: int | None = None) -> int:
    """Read every business message not yet in the koppeltabel (at most ``limit``); the number read."""
    store = KoppelStore(database)
    done = 0
    while limit is None or done < limit:
        batch = store.unindexed(BATCH if limit is None else min(BATCH, limit - done))
        if not batch:
            break
        index_batch(database, clock, batch)
        done += len(batch)
    return done


@dataclass(frozen=True)
class Related:
    message_id: str
    related: tuple[RelatedMessage, ...]


def related(ctx: ServiceContext, message_id: str, direction: str | None = None) -> Related:
    """The messages related to one message (by ebMS MessageId), oldest first."""
    catch_up(ctx.database, ctx.clock)
    messages = MessageStore(ctx.database)
    stored = None
    for way in (direction,) if direction else ("in", "out"):
        stored = messages.find(way, message_id)
        if stored is not None:
            break
    if stored is None:
        raise NotFoundError(f"bericht {message_id!r} niet gevonden")
    return Related(message_id, tuple(KoppelStore(ctx.database).related(stored.pk)))


def related_of(ctx: ServiceContext, pk: int) -> list[RelatedMessage]:
    """The messages related to stored message ``pk``, oldest first."""
    catch_up(ctx.database, ctx.clock)
    return KoppelStore(ctx.database).related(pk)


def _narrow(ctx: ServiceContext, asked: frozenset[str] | None) -> frozenset[str] | None:
    """The gemeentecodes asked for, within the actor's rights."""
    if ctx.gemeentecodes is None:
        return asked
    return ctx.gemeentecodes if asked is None else asked & ctx.gemeentecodes


def toewijzingen_zonder_start(
    ctx: ServiceContext, days: int, gemeentecodes: frozenset[str] | None = None
) -> list[KoppelMessage]:
    """301 toewijzingen older than ``days`` days with no 305 start zorg linked to them (iWmo/iJw
    procesbeschrijving: the aanbieder reports the start of the care it was assigned)."""
    if not 0 <= days <= MAX_DAYS:
        raise ServiceError(f"aantal dagen 0 tot {MAX_DAYS}")
    catch_up(ctx.database, ctx.clock)
    before = ctx.clock.now() - timedelta(days=days)
    return KoppelStore(ctx.database).without_relation(
        "301", Relation.START, before=before, gemeentecodes=_narrow(ctx, gemeentecodes)
    )


def declaraties_zonder_antwoord(
    ctx: ServiceContext, days: int = 0, gemeentecodes: frozenset[str] | None = None
) -> list[KoppelMessage]:
    """323 declaraties older than ``days`` days with no 325 declaratie-antwoord (the gemeente
    answers a declaratie within 10 werkdagen, iWmo/iJw 3.2 procesbeschrijving)."""
    if not 0 <= days <= MAX_DAYS:
        raise ServiceError(f"aantal dagen 0 tot {MAX_DAYS}")
    catch_up(ctx.database, ctx.clock)
    before = ctx.clock.now() - timedelta(days=days)
    return KoppelStore(ctx.database).without_relation(
        "323", Relation.ANTWOORD, before=before, gemeentecodes=_narrow(ctx, gemeentecodes)
    )


def catch_up_when_quiet(database: Database, clock: Clock, pace: CatchUpPace, now: float) -> int | None:
    """One poll of ``koppeltabel_task``: catch up (at most ``POLL_LIMIT`` messages) when ``pace``
    says so; the number read, or None when it was left for a quieter moment."""
    if not pace.due(KoppelStore(database).newest_message(), now):
        return None
    return catch_up(database, clock, limit=POLL_LIMIT)


def koppeltabel_task(*, interval: float = POLL_SECONDS) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """A factory for ``server.run.start_endpoint(workers=[...])``: keep the koppeltabel filled,
    between bursts of traffic (koppeltabel_pace.py)."""

    async def run(runtime: Runtime) -> None:
        pace = CatchUpPace()
        while True:
            try:
                read = await asyncio.to_thread(
                    catch_up_when_quiet, runtime.database, runtime.clock, pace, time.monotonic()
                )
                if read:
                    log.info("koppeltabel: %d messages read", read)
            except GgkEbmsError as exc:
                log.error("koppeltabel: catch-up failed, trying again later: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    return run
