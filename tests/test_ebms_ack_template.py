"""The Acknowledgment from its pre-serialised template (ebms/ack_template.py) is byte for byte
what the lxml builder writes (``render_envelope``), for any MessageIds, PartyIds, PartyId
types, ConversationIds, CPAIds and timestamps, including characters that need escaping in text
and in attributes; values XML cannot carry are refused as before. ebMS 2.0 §6.3.2."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebms_support import schema_errors
from ggk_ebms.clock import FixedClock
from ggk_ebms.ebms.build import build_acknowledgment, render_envelope
from ggk_ebms.ebms.model import Acknowledgment, EbmsMessage, MessageHeader, Party, PartyId, Service
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.ns import ACTOR_TO_PARTY_MSH, EBMS_SERVICE

# Characters that exercise the escaping: markup, quotes, whitespace that attributes normalise,
# non-ASCII, astral; plus (rarely) characters XML 1.0 cannot carry at all.
_TRICKY = "&<>\"'\t\n\r ]]>é€\U0001f600:/@"
_XML_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(_TRICKY),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0xA0, max_codepoint=0xD7FF),
    ),
    max_size=24,
)
_ANY_TEXT = st.one_of(_XML_TEXT, _XML_TEXT, _XML_TEXT, st.text(max_size=8))
_PARTY_IDS = st.lists(st.builds(PartyId, _ANY_TEXT, st.none() | _ANY_TEXT), min_size=1, max_size=3)
_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
)


@dataclass
class _Ids:
    """An IdGenerator that hands out the MessageId the test chose."""

    value: str

    def message_id(self) -> str:
        return self.value

    def uuid(self) -> str:
        return "00000000-0000-4000-8000-000000000000"


def _received(
    from_ids: list[PartyId], to_ids: list[PartyId], cpa_id: str, conversation_id: str, message_id: str
) -> EbmsMessage:
    header = MessageHeader(
        from_party=Party(tuple(from_ids), role="http://example.org/roles/Sender"),
        to_party=Party(tuple(to_ids), role="Ontvanger"),
        cpa_id=cpa_id,
        conversation_id=conversation_id,
        service=Service("urn:osb:services:wmo", "string"),
        action="Verzenden",
        message_id=message_id,
        timestamp=datetime(2026, 5, 4, 10, 0, tzinfo=UTC),
        time_to_live=datetime(2026, 5, 5, 10, 0, tzinfo=UTC),
        duplicate_elimination=True,
    )
    return EbmsMessage(header=header)


def _lxml_builder(received: EbmsMessage, header: MessageHeader, our_party: PartyId) -> bytes:
    """The Acknowledgment as ``build_acknowledgment`` wrote it before the template."""
    ack = Acknowledgment(
        timestamp=header.timestamp,
        ref_to_message_id=received.header.message_id,
        from_party=Party((our_party,)),
        actor=ACTOR_TO_PARTY_MSH,
    )
    return render_envelope(EbmsMessage(header=header, acknowledgment=ack))


def _outcome(call: object) -> bytes | type[BaseException]:
    try:
        result = call()  # type: ignore[operator]
    except (ValueError, TypeError) as error:  # lxml's refusal of a non-XML character
        return type(error)
    assert isinstance(result, bytes)
    return result


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    from_ids=_PARTY_IDS,
    to_ids=_PARTY_IDS,
    our_party=st.builds(PartyId, _ANY_TEXT, st.none() | _ANY_TEXT),
    cpa_id=_ANY_TEXT,
    conversation_id=_ANY_TEXT,
    received_id=_ANY_TEXT,
    ack_id=_ANY_TEXT,
    now=_TIMES,
    micros=st.integers(0, 999_999),
)
def test_template_bytes_equal_the_lxml_builder(
    from_ids: list[PartyId],
    to_ids: list[PartyId],
    our_party: PartyId,
    cpa_id: str,
    conversation_id: str,
    received_id: str,
    ack_id: str,
    now: datetime,
    micros: int,
) -> None:
    received = _received(from_ids, to_ids, cpa_id, conversation_id, received_id)
    clock = FixedClock(now + timedelta(microseconds=micros))

    def templated() -> bytes:
        return build_acknowledgment(received, ids=_Ids(ack_id), clock=clock, our_party=our_party).envelope

    # The header of ebMS 2.0 §6.3.2 as build._signal_header makes it: our PartyId as From, the
    # sender without Role as To, CPAId and ConversationId copied, Timestamp cut to milliseconds.
    at = clock.now()
    expected = MessageHeader(
        from_party=Party((our_party,)),
        to_party=Party(tuple(from_ids)),
        cpa_id=cpa_id,
        conversation_id=conversation_id,
        service=Service(EBMS_SERVICE),
        action="Acknowledgment",
        message_id=ack_id,
        timestamp=at.replace(microsecond=at.microsecond // 1000 * 1000),
        ref_to_message_id=received_id,
    )
    new = _outcome(templated)
    if isinstance(new, bytes):
        built = build_acknowledgment(received, ids=_Ids(ack_id), clock=clock, our_party=our_party)
        assert built.header == expected
        assert new == _lxml_builder(received, expected, our_party)
    else:
        # A value XML cannot carry: refused by lxml exactly as before the template.
        assert _outcome(lambda: _lxml_builder(received, expected, our_party)) is new


def test_a_realistic_acknowledgment_is_schema_valid_and_reads_back() -> None:
    received = _received(
        [PartyId("00000099000001000000", "urn:osb:oin")],
        [PartyId("00000099000003630000", "urn:osb:oin"), PartyId("gemeente & zorg <test>", None)],
        "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1",
        'conv "1" \t€',
        "7c0c3f5e-1c1b-4c52-9d5e-5b6f1c2d3e4f@rinis.nl",
    )
    our = PartyId("00000099000003630000", "urn:osb:oin")
    clock = FixedClock(datetime(2026, 5, 4, 10, 0, 1, 234567, tzinfo=UTC))
    built = build_acknowledgment(received, ids=_Ids("ack&1@gemeente"), clock=clock, our_party=our)
    assert built.envelope == _lxml_builder(received, built.header, our)
    assert schema_errors(built.envelope) == []
    parsed = parse_envelope(built.envelope, max_bytes=1 << 20)
    assert parsed.header == built.header
    assert parsed.acknowledgment is not None
    assert parsed.acknowledgment.ref_to_message_id == received.header.message_id
