"""Pick one CPA when a renewal overlaps the old one (Digikoppeling Koppelvlakstandaard ebMS2: a
renewed CPA gets a new CPAId and both are valid for a while, so both sides can switch over).

Pure: the candidates are the stored CPAs that are valid now and can carry the message. When they
all join the same parties, the newest (latest start, then latest import) is the one to use; when
they join different parties there is no renewal to resolve and the caller must be told to choose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    cpa_id: str
    party_ids: frozenset[str]
    start: datetime
    imported_at: datetime


@dataclass(frozen=True)
class Choice:
    chosen: Candidate
    overlapping: tuple[Candidate, ...]  # the older CPAs for the same pair, newest first

    def describe(self) -> str:
        if not self.overlapping:
            return f"CPA {self.chosen.cpa_id}"
        older = ", ".join(c.cpa_id for c in self.overlapping)
        return f"CPA {self.chosen.cpa_id} (newest valid CPA for this pair; overlaps {older})"


def newest_for_pair(candidates: Sequence[Candidate]) -> Choice | None:
    """The newest candidate when all join the same parties; None when they do not (or none)."""
    if not candidates:
        return None
    pairs = {c.party_ids for c in candidates}
    if len(pairs) != 1:
        return None
    ordered = sorted(candidates, key=lambda c: (c.start, c.imported_at, c.cpa_id), reverse=True)
    return Choice(ordered[0], tuple(ordered[1:]))
