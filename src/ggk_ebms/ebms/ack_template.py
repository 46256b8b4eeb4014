"""The Acknowledgment envelope from a pre-serialised template, with its fields escaped in.

Every received reliable message gets an Acknowledgment (ebMS 2.0 §6.3.2), so building it is on
the hot path; building it element by element with lxml and serialising it costs more than
joining strings (docs/performance.md, "Round 3"). The template is not written by hand: it is
``render_envelope``'s own output for a probe header whose fields are unique markers, split at
those markers. Only the values differ per message, so the bytes are the builder's bytes whenever
the escaping here equals libxml2's (``tests/test_ebms_ack_template.py`` checks byte equality
against ``render_envelope`` with hypothesis over MessageIds, PartyIds, types and timestamps).

One template per shape: how many PartyIds the From and To have and which of them carry a type.
A signed Acknowledgment (copied ``ds:Reference`` elements) keeps the lxml builder.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from ggk_ebms.clock import format_timestamp
from ggk_ebms.ebms.model import Acknowledgment, EbmsMessage, MessageHeader, Party, PartyId, Service
from ggk_ebms.ns import ACTOR_TO_PARTY_MSH, EBMS_SERVICE

# XML 1.0 §2.2 Char: a value with anything else goes to lxml, which refuses it as before.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PROBE_TIME: Final = datetime(1901, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
_MARKER: Final = re.compile(r"(ggkslot\d{3}z)")
_SIGNAL_SERVICE: Final = Service(EBMS_SERVICE)

_Getter = Callable[[MessageHeader], str]
# (has-type per From PartyId, has-type per To PartyId)
_Shape = tuple[tuple[bool, ...], tuple[bool, ...]]


def _escape_text(value: str) -> str:
    # libxml2's text escaping (xmlEscapeContent): &, <, > and CR as a character reference.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attribute(value: str) -> str:
    # libxml2's attribute escaping (xmlAttrSerializeTxtContent): also the quote and the
    # whitespace that attribute-value normalisation would otherwise change (XML 1.0 §3.3.3).
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
        .replace("\n", "&#10;")
        .replace("\t", "&#9;")
    )


def _shape(header: MessageHeader) -> _Shape:
    return (
        tuple(p.type is not None for p in header.from_party.party_ids),
        tuple(p.type is not None for p in header.to_party.party_ids),
    )


def _party_getters(side: str, index: int) -> tuple[_Getter, _Getter]:
    def party(header: MessageHeader) -> PartyId:
        chosen = header.from_party if side == "from" else header.to_party
        return chosen.party_ids[index]

    def value(header: MessageHeader) -> str:
        return party(header).value

    def type_(header: MessageHeader) -> str:
        found = party(header).type
        assert found is not None  # the shape says this PartyId has a type
        return found

    return value, type_


class _Template:
    """Literal pieces and, between them, a field getter with its escaping."""

    def __init__(self, pieces: Sequence[str], slots: Sequence[tuple[_Getter, Callable[[str], str]]]) -> None:
        self.pieces = tuple(pieces)
        self.slots = tuple(slots)

    def values(self, header: MessageHeader) -> list[str]:
        return [getter(header) for getter, _escape in self.slots]

    def render(self, values: Sequence[str]) -> bytes:
        out = [self.pieces[0]]
        for (_getter, escape), value, piece in zip(self.slots, values, self.pieces[1:], strict=True):
            out.append(escape(value))
            out.append(piece)
        return "".join(out).encode("utf-8")


@functools.lru_cache(maxsize=32)
def _template(shape: _Shape) -> _Template:
    from ggk_ebms.ebms.build import render_envelope  # the builder this template is made from

    getters: dict[str, _Getter] = {}

    def marker(getter: _Getter) -> str:
        name = f"ggkslot{len(getters):03d}z"
        getters[name] = getter
        return name

    def probe_party(side: str, typed: tuple[bool, ...]) -> Party:
        ids = []
        for index, has_type in enumerate(typed):
            value, type_ = _party_getters(side, index)
            ids.append(PartyId(marker(value), marker(type_) if has_type else None))
        return Party(tuple(ids))

    from_party = probe_party("from", shape[0])
    to_party = probe_party("to", shape[1])
    probe = MessageHeader(
        from_party=from_party,
        to_party=to_party,
        cpa_id=marker(lambda h: h.cpa_id),
        conversation_id=marker(lambda h: h.conversation_id),
        service=_SIGNAL_SERVICE,
        action="Acknowledgment",
        message_id=marker(lambda h: h.message_id),
        timestamp=_PROBE_TIME,
        ref_to_message_id=marker(lambda h: h.ref_to_message_id or ""),
    )
    time_marker = format_timestamp(_PROBE_TIME)
    text = render_envelope(_message(probe)).decode("utf-8")
    if time_marker not in text:
        raise RuntimeError("the Acknowledgment template lost its Timestamp")
    text = text.replace(time_marker, marker(lambda h: format_timestamp(h.timestamp)))
    pieces: list[str] = []
    slots: list[tuple[_Getter, Callable[[str], str]]] = []
    prefix = ""
    for index, part in enumerate(_MARKER.split(text)):
        if index % 2 == 0:
            pieces.append(part)
        else:
            # Inside a start tag (a '<' after the last '>') the value is an attribute value.
            in_tag = prefix.rfind("<") > prefix.rfind(">")
            slots.append((getters[part], _escape_attribute if in_tag else _escape_text))
        prefix += part
    return _Template(pieces, slots)


def _message(header: MessageHeader) -> EbmsMessage:
    """The Acknowledgment ``build_acknowledgment`` makes of ``header`` (ebMS 2.0 §6.3.2)."""
    ack = Acknowledgment(
        timestamp=header.timestamp,
        ref_to_message_id=header.ref_to_message_id or "",
        from_party=header.from_party,
        actor=ACTOR_TO_PARTY_MSH,
    )
    return EbmsMessage(header=header, acknowledgment=ack)


def render_acknowledgment(header: MessageHeader) -> bytes:
    """The envelope ``render_envelope`` writes for an unsigned Acknowledgment with ``header``:
    same bytes, from the template of its shape."""
    from ggk_ebms.ebms.build import render_envelope

    template = _template(_shape(header))
    values = template.values(header)
    if (
        header.ref_to_message_id is None
        or header != _signal_form(header)
        or any(_NOT_XML_CHAR.search(value) for value in values)
    ):
        return render_envelope(_message(header))
    return template.render(values)


def _signal_form(header: MessageHeader) -> MessageHeader:
    """``header`` as the template assumes it: a signal header without Role, TimeToLive,
    DuplicateElimination or Description (build._signal_header); anything else is not templated."""
    return MessageHeader(
        from_party=Party(header.from_party.party_ids),
        to_party=Party(header.to_party.party_ids),
        cpa_id=header.cpa_id,
        conversation_id=header.conversation_id,
        service=_SIGNAL_SERVICE,
        action="Acknowledgment",
        message_id=header.message_id,
        timestamp=header.timestamp,
        ref_to_message_id=header.ref_to_message_id,
    )
