"""The relations of a whole batch of new messages at once, as if they were read one by one. Pure.

The catch-up (services/koppeltabel.py) reads new messages in pk order. Read one at a time, each
message is compared with every message already in the koppeltabel that holds one of its probes
(``Keys.probes``), at most ``max_candidates`` of them, lowest pk first, and is then itself in the
table for the next one. Read as a batch, the store looks up the holders of every probe of the batch
in one query, and this module replays that order: a member is compared with the stored holders
and with the members before it, and then joins the holders. So a 302 and its 301 in the same batch
are related exactly once, with the earlier pk as the "other" message, as ``relate_either`` is
called one by one.

A member seen by a later one is compared as the store would give it back (``as_stored``): values
are cut to the column width, as ``KoppelStore.save_keys`` cuts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ggk_ebms.koppeltabel import BODY_IDENTIFIERS, Keys, Link, relate_either

Pair = tuple[str, str]  # (name, value) as stored in koppel_key


@dataclass(frozen=True)
class Member:
    """One message of the batch: ``keys`` None when it is no StUF message (nothing to relate)."""

    pk: int
    keys: Keys | None

    def __repr__(self) -> str:  # keys hold identifiers: never in logs
        return f"Member(pk={self.pk})"


def _cut(value: str, width: int) -> str:
    return value[:width]


def probe_pairs(keys: Keys, width: int) -> frozenset[Pair]:
    """The pairs under which ``keys`` looks for other messages (``KoppelStore.candidates``)."""
    return frozenset((n, _cut(v, width)) for n, v in keys.probes())


def stored_pairs(keys: Keys, width: int) -> frozenset[Pair]:
    """The pairs ``KoppelStore.save_keys`` writes to koppel_key for ``keys``: probes and values."""
    return frozenset((n, _cut(v, width)) for n, v in keys.probes() | keys.values)


def as_stored(keys: Keys, width: int) -> Keys:
    """``keys`` as ``KoppelStore.keys_of`` reads them back: only the body identifiers, each value
    and the identificatie cut to ``width``."""
    return replace(
        keys,
        identificatie=None if keys.identificatie is None else _cut(keys.identificatie, width),
        values=frozenset((n, _cut(v, width)) for n, v in keys.values if n in BODY_IDENTIFIERS),
    )


def batch_probes(members: Iterable[Member], width: int) -> frozenset[Pair]:
    """Every probe of the batch: what the store looks up in one query."""
    found: set[Pair] = set()
    for member in members:
        if member.keys is not None:
            found |= probe_pairs(member.keys, width)
    return frozenset(found)


def relate_batch(
    members: Sequence[Member],
    holders: Mapping[Pair, Iterable[int]],
    stored: Mapping[int, Keys],
    *,
    width: int,
    max_candidates: int,
) -> list[Link]:
    """The new relations of ``members``, the same as reading them one by one in pk order.

    ``holders``: for each probe of the batch, the pks of messages already in the koppeltabel that
    hold it; ``stored``: their keys as the store reads them (a holder without keys is skipped, as
    ``KoppelStore.keys_of`` skips a message that is no StUF message).
    """
    held: dict[Pair, set[int]] = {pair: set(pks) for pair, pks in holders.items()}
    known: dict[int, Keys] = dict(stored)
    links: list[Link] = []
    for member in sorted(members, key=lambda m: m.pk):
        if member.keys is None:
            continue
        found: set[int] = set()
        for pair in probe_pairs(member.keys, width):
            found |= held.get(pair, set())
        found.discard(member.pk)
        # One by one, the store takes the lowest ``max_candidates`` pks (KoppelStore.candidates).
        for other in sorted(found)[:max_candidates]:
            other_keys = known.get(other)
            if other_keys is not None:
                links.extend(relate_either((other, other_keys), (member.pk, member.keys)))
        # From here on the member is in the table for the members after it.
        for pair in stored_pairs(member.keys, width):
            held.setdefault(pair, set()).add(member.pk)
        known[member.pk] = as_stored(member.keys, width)
    return links
