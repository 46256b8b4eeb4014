"""'Geschoond': a message exchanged more than once between the same organisations counts once.

Rule (docs/ketendata.md "Duplicates"): two messages are the same when their berichttype, the
payload header's Afzender and Ontvanger (or Gemeente and Aanbieder in 2.3 declaraties) and the
header's BerichtIdentificatie (Identificatie and Dagtekening) are equal. iStandaarden demand a
BerichtIdentificatie unique per sender, so an equal one means the sender sent the same message
again (a resend after a time-out, or one message sent through two routes). The first one to pass
the GGk is kept. A payload without a BerichtIdentificatie is compared by its SHA-256.

The key is itself a keyed hash: it is stored to recognise a duplicate in a later week, and must
not keep readable data there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TypeVar

from ggk_ebms.ketendata.hashing import KeyedHasher
from ggk_ebms.payloads.detect import PayloadInfo


def dedupe_key(info: PayloadInfo, payload: bytes, hasher: KeyedHasher) -> str:
    header = dict(info.header)
    parties = "|".join(f"{k}={v}" for k, v in sorted(header.items()))
    if info.identificatie:
        ident = f"{info.identificatie}|{info.dagtekening or ''}"
    else:
        ident = "sha256=" + hashlib.sha256(payload).hexdigest()
    return hasher.hash("geschoond", f"{info.berichttype}|{parties}|{ident}")


T = TypeVar("T")


def geschoond(
    items: Sequence[T], key: Iterable[str], berichttype: Iterable[str], seen_before: frozenset[str]
) -> tuple[list[T], dict[str, int], list[str]]:
    """Keep the first item per key (``items`` ordered by the moment they passed), dropping keys
    already delivered in an earlier export. Returns the kept items, the number removed per
    berichttype, and the keys of the kept items."""
    kept: list[T] = []
    kept_keys: list[str] = []
    removed: dict[str, int] = {}
    seen = set(seen_before)
    for item, k, bt in zip(items, key, berichttype, strict=True):
        if k in seen:
            removed[bt] = removed.get(bt, 0) + 1
            continue
        seen.add(k)
        kept.append(item)
        kept_keys.append(k)
    return kept, removed, kept_keys
