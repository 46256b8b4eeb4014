"""What ``messages show`` and ``messages related`` print about a message's koppeltabel rows.

Plain dicts, so a table, text and JSON are made from the same values. Identifier values
(ToewijzingNummer and the like) are never shown: the relation names the element that links.
"""

from __future__ import annotations

from collections.abc import Sequence

from ggk_ebms.store.koppeltabel import KoppelMessage, RelatedMessage

# How the later message stands to the earlier one, read from the message shown.
_LATER: dict[str, str] = {
    "retour": "retour on this message",
    "antwoord": "declaratie-antwoord on this declaratie",
    "start": "start zorg on this toewijzing",
    "stop": "stop zorg on this toewijzing",
    "declaratie": "declaratie on this toewijzing",
    "toewijzing": "toewijzing answering this verzoek",
    "fout": "Fo01 about this message",
}
_EARLIER: dict[str, str] = {
    "retour": "heenbericht of this retour",
    "antwoord": "declaratie this antwoord answers",
    "start": "toewijzing this start is about",
    "stop": "toewijzing this stop is about",
    "declaratie": "toewijzing this declaratie is about",
    "toewijzing": "verzoek this toewijzing answers",
    "fout": "message this Fo01 is about",
}


def related_rows(related: Sequence[RelatedMessage]) -> list[dict[str, str]]:
    return [
        {
            "id": str(r.pk),
            "MessageId": r.message_id,
            "direction": r.direction,
            "berichttype": r.berichttype or r.berichtcode or "",
            "relation": r.relation.value,
            "role": r.role,
            "meaning": (_EARLIER if r.role == "earlier" else _LATER)[r.relation.value],
            "via": r.via.value,
            "stored": r.created_at.isoformat(),
        }
        for r in related
    ]


def related_line(row: dict[str, str]) -> str:
    return (
        f"  {row['id']}  {row['direction']}  {row['berichttype']}  {row['meaning']} "
        f"(via {row['via']})  {row['MessageId']}"
    )


def open_rows(messages: Sequence[KoppelMessage]) -> list[dict[str, str]]:
    return [
        {
            "id": str(m.pk),
            "MessageId": m.message_id,
            "direction": m.direction,
            "berichttype": m.berichttype or "",
            "gemeentecode": m.gemeentecode or "",
            "aanbieder": m.aanbieder or "",
            "stored": m.created_at.isoformat(),
        }
        for m in messages
    ]
