"""The negative-case catalogue (docs/ebms.md catalogue),
one test per rule, on the reference templates and CPA.

Each case fills a template of the reference adapter's integration test (``../shared/interop``),
hands it to the inbound decision itself (pipeline/inbound_decision.py: ``read_request``, the CPA
view, ``decide``, with dictionaries as lookups and a fixed clock) and checks the exact outcome: the
eb:Error code, location and description of the MessageError, or the SOAP Fault / empty HTTP 500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from ebms_support import (
    NOW,
    OUR_PARTY_IDS,
    TemplateValues,
    catalogue_agreement,
    catalogue_values,
    render_template,
)
from ggk_ebms.ebms import validate
from ggk_ebms.ebms.model import EbmsMessage
from ggk_ebms.ebms.validate import InboundContext
from ggk_ebms.errors import EbmsError, ErrorCode, SoapFaultError
from ggk_ebms.lifecycle import Status
from ggk_ebms.mime.related import MimePart
from ggk_ebms.pipeline.inbound_decision import Fault
from ggk_ebms.pipeline.signal_decisions import status_of
from ggk_ebms.store.messages import StoredMessage
from tests.decision_support import decide_on, known_as, peer_with_oin, stored_message

MH = "//Header/MessageHeader"
SENDER_OIN = "00000000000000000000"  # DIGIPOORT, the sending side of the catalogue CPA
MAX_BYTES = 1024 * 1024


def receive(
    envelope: bytes,
    attachments: tuple[str, ...] = (),
    *,
    known: Callable[[str], bool] | None = None,
    our_party_ids: tuple[str, ...] = OUR_PARTY_IDS,
) -> tuple[EbmsMessage, InboundContext]:
    """The inbound decision on one request, with its lookups and clock fixed (KVS ch. 5, CPPA 2.0):
    the message and what it resolved to, or the MessageError's first eb:Error / the SOAP Fault
    raised. ``known`` says which RefToMessageIds name a stored message (default: none)."""
    parts = [MimePart(cid, "application/xml", b"<payload/>") for cid in attachments]
    agreement = catalogue_agreement()
    found = stored_message("known", direction="in", status=Status.RECEIVED, cpa_id=agreement.cpa_id)
    view, _, outcome = decide_on(
        envelope,
        agreement,
        our_party_ids=our_party_ids,
        now=NOW,
        peer=peer_with_oin(SENDER_OIN),
        attachments=parts,
        received=known_as(known or _unknown, found),
    )
    if isinstance(outcome, Fault):
        raise outcome.error
    if outcome.errors:
        assert outcome.message.status == Status.FAILED and not outcome.deliver
        raise outcome.errors[0]
    assert outcome.context is not None
    return view.message, outcome.context


def _unknown(_: str) -> bool:
    return False


@dataclass(frozen=True)
class ErrorCase:
    template: str
    code: ErrorCode
    location: str
    description: str
    change: dict[str, object] = field(default_factory=dict)
    attachments: tuple[str, ...] = ()
    known: Callable[[str], bool] | None = None


MESSAGE = "EbMSMessage.xml"
WITH_ATTACHMENTS = "EbMSMessageWithAttachments.xml"
INCONSISTENT = ErrorCode.INCONSISTENT
NOT_RECOGNIZED = ErrorCode.VALUE_NOT_RECOGNIZED
NOT_FOUND = "Value not found."

ERROR_CASES: dict[str, ErrorCase] = {
    "12_invalid_message_header_version": ErrorCase(
        "EbMSMessageInvalidMessageHeaderVersion.xml", INCONSISTENT, f"{MH}/@version", "Invalid value."
    ),
    "14_invalid_from_party_id": ErrorCase(
        MESSAGE, INCONSISTENT, f"{MH}/From/PartyId", NOT_FOUND, {"from_party_id": "00000000000000000009"}
    ),
    "15_invalid_from_party_type": ErrorCase(
        MESSAGE, INCONSISTENT, f"{MH}/From/PartyId", NOT_FOUND, {"party_type": "urn:osb:unknown"}
    ),
    "17_invalid_from_role": ErrorCase(MESSAGE, NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"from_role": "X"}),
    "18_missing_from_role": ErrorCase(
        "EbMSMessageMissingFromRole.xml", INCONSISTENT, f"{MH}/From/Role", "Invalid value."
    ),
    "19_invalid_to_party_id": ErrorCase(
        MESSAGE, INCONSISTENT, f"{MH}/To/PartyId", NOT_FOUND, {"to_party_id": "00000000000000000009"}
    ),
    "20_invalid_to_party_type": ErrorCase(
        "EbMSMessageInvalidToPartyType.xml", INCONSISTENT, f"{MH}/To/PartyId", NOT_FOUND
    ),
    "21_invalid_to_role": ErrorCase(MESSAGE, NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"to_role": "X"}),
    "22_invalid_service": ErrorCase(
        MESSAGE, NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"service": "osb:unknown:1.0$1.0"}
    ),
    "23_invalid_service_type": ErrorCase(
        MESSAGE, NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"service_type": "urn:osb:other"}
    ),
    "24_invalid_action": ErrorCase(MESSAGE, NOT_RECOGNIZED, f"{MH}/Action", NOT_FOUND, {"action": "unknown"}),
    "25_invalid_ref_to_message_id": ErrorCase(
        "EbMSMessageInvalidRefToMessageId.xml",
        NOT_RECOGNIZED,
        f"{MH}/MessageData/RefToMessageId",
        NOT_FOUND,
        known=_unknown,
    ),
    "26_time_to_live_expired": ErrorCase(
        MESSAGE,
        ErrorCode.TIME_TO_LIVE_EXPIRED,
        f"{MH}/MessageData/TimeToLive",
        validate.TTL_EXPIRED,  # the catalogue gives no text; ours is a Decision
        {"time_to_live": NOW - timedelta(minutes=1)},
    ),
    "27_missing_duplicate_elimination": ErrorCase(
        "EbMSMessageMissingDuplicateElimination.xml",
        INCONSISTENT,
        f"{MH}/DuplicateElimination",
        "Wrong value.",
    ),
    "28_missing_ack_requested": ErrorCase(
        "EbMSMessageMissingAckRequested.xml", INCONSISTENT, "//Header/AckRequested", "Wrong value."
    ),
    "29_invalid_ack_requested_version": ErrorCase(
        "EbMSMessageInvalidAckRequestedVersion.xml",
        INCONSISTENT,
        "//Header/AckRequested/@version",
        "Invalid value.",
    ),
    "30_next_msh_ack_requested": ErrorCase(
        "EbMSMessageNextMshAckRequested.xml",
        ErrorCode.NOT_SUPPORTED,
        "//Header/AckRequested/@actor",
        "NextMSH not supported.",
    ),
    "31_invalid_ack_requested_actor": ErrorCase(
        "EbMSMessageInvalidAckRequestedActor.xml",
        INCONSISTENT,
        "//Header/AckRequested/@actor",
        "Invalid value.",
    ),
    "32_invalid_ack_requested_signed": ErrorCase(
        "EbMSMessageInvalidAckRequestedSigned.xml",
        INCONSISTENT,
        "//Header/AckRequested/@signed",
        "Wrong value.",
    ),
    "33_missing_sync_reply": ErrorCase(
        "EbMSMessageMissingSyncReply.xml", INCONSISTENT, "//Header/SyncReply", "Wrong value."
    ),
    "34_invalid_sync_reply_version": ErrorCase(
        "EbMSMessageInvalidSyncReplyVersion.xml",
        INCONSISTENT,
        "//Header/SyncReply/@version",
        "Invalid value.",
    ),
    "35_invalid_sync_reply_actor": ErrorCase(
        "EbMSMessageInvalidSyncReplyActor.xml", INCONSISTENT, "//Header/SyncReply/@actor", "Wrong value."
    ),
    "36_message_order": ErrorCase(
        "EbMSMessageMessageOrder.xml",
        ErrorCode.NOT_SUPPORTED,
        "//Header/MessageOrder",
        "MessageOrder not supported.",
    ),
    "38_invalid_manifest_version": ErrorCase(
        "EbMSMessageInvalidManifestVersion.xml",
        INCONSISTENT,
        "//Body/Manifest/@version",
        "Invalid value.",
        attachments=("payload-1@localhost",),
    ),
    "39_invalid_cid": ErrorCase(
        WITH_ATTACHMENTS,
        ErrorCode.MIME_PROBLEM,
        "//Body/Manifest/Reference[@href='http://example.org/payload.xml']",
        "URI cannot be resolved.",
        {"hrefs": ["http://example.org/payload.xml"]},
    ),
    "40_unknown_cid": ErrorCase(
        WITH_ATTACHMENTS, ErrorCode.MIME_PROBLEM, "cid:cid", "MIME part not found.", {"hrefs": ["cid:cid"]}
    ),
    "42_invalid_reference": ErrorCase(
        WITH_ATTACHMENTS,
        ErrorCode.MIME_PROBLEM,
        "cid:cid",
        "MIME part not found.",
        {"hrefs": ["cid:payload-1@localhost", "cid:cid"]},
        attachments=("payload-1@localhost",),
    ),
}


def _values(change: dict[str, object]) -> TemplateValues:
    return replace(catalogue_values(), **change)  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", list(ERROR_CASES))
def test_catalogue_message_error(rule: str) -> None:
    case = ERROR_CASES[rule]
    envelope = render_template(case.template, _values(case.change))
    with pytest.raises(EbmsError) as caught:
        receive(envelope, case.attachments, known=case.known)
    error = caught.value
    assert (error.code, error.location, error.description) == (case.code, case.location, case.description)
    assert error.severity == "Error"


def test_catalogue_13_invalid_cpa_id() -> None:
    envelope = render_template(MESSAGE, _values({"cpa_id": "cpaId"}))
    with pytest.raises(SoapFaultError) as caught:
        receive(envelope)
    fault = caught.value
    assert (fault.http_status, fault.faultcode, fault.faultstring, fault.body) == (
        500,
        "Client",
        "CPA cpaId not found!",
        True,
    )


@pytest.mark.parametrize(
    ("rule", "template"),
    [
        ("16_missing_from_party_id", "EbMSMessageMissingFromPartyId.xml"),
        ("41_missing_reference", "EbMSMessageMissingReference.xml"),
        ("43_ping_xxe", "EbMSPingXXE.xml"),
    ],
)
def test_catalogue_empty_500(rule: str, template: str) -> None:
    with pytest.raises(SoapFaultError) as caught:
        receive(render_template(template))
    assert (caught.value.http_status, caught.value.body) == (500, False), rule


def test_catalogue_3_soap_action_fault_text() -> None:
    with pytest.raises(SoapFaultError) as caught:
        decide_on(
            render_template(MESSAGE),
            catalogue_agreement(),
            our_party_ids=OUR_PARTY_IDS,
            now=NOW,
            peer=peer_with_oin(SENDER_OIN),
            soap_action="",
        )
    fault = caught.value
    assert (fault.http_status, fault.faultcode, fault.faultstring) == (
        500,
        "Client",
        "Unable to process message! SOAPAction=",
    )


# --- positive cases --------------------------------------------------------------------------------


def test_catalogue_4_message_is_accepted_on_the_rm_channel() -> None:
    message, context = receive(render_template(MESSAGE))
    assert message.kind == "business"
    assert [p.value for p in context.our_party.party_ids] == ["00000000000000000001"]
    assert [p.value for p in context.their_party.party_ids] == ["00000000000000000000"]
    assert context.sender_binding is not None
    assert context.sender_binding.binding_id == "DIGIPOORT_S_Afleveren"
    assert context.receiver_binding is not None
    assert context.receiver_binding.binding_id == "OVERHEID_R_Afleveren"
    assert (
        context.sender_channel.channel.channel_id
        == "DIGIPOORT_defaultDeliveryChannel_ProfileReliableMessaging"
    )
    assert (
        context.receiver_channel.channel.channel_id
        == "OVERHEID_defaultDeliveryChannel_ProfileReliableMessaging"
    )
    assert (
        context.msh_signal_channel.channel.channel_id
        == "DIGIPOORT_defaultDeliveryChannel_ProfileBestEffortSigned"
    )
    assert context.sync_reply is True


def test_catalogue_2_ping_is_accepted_on_the_msh_channels() -> None:
    message, context = receive(render_template("EbMSPing.xml"))
    assert message.kind == "Ping"
    assert context.sender_binding is None
    assert context.receiver_binding is None
    assert (
        context.sender_channel.channel.channel_id
        == "DIGIPOORT_defaultDeliveryChannel_ProfileBestEffortSigned"
    )
    assert (
        context.receiver_channel.channel.channel_id
        == "OVERHEID_defaultDeliveryChannel_ProfileBestEffortSigned"
    )
    assert context.sync_reply is True


def test_catalogue_5_status_request_is_accepted() -> None:
    message, _ = receive(render_template("EbMSMessageStatus.xml"))
    assert message.kind == "StatusRequest"
    assert message.status_request is not None
    ref = message.status_request.ref_to_message_id
    assert ref == f"{catalogue_values().ref_to_message_id}@localhost"
    # The decision itself, with its lookup injected: nothing stored under that id.
    nothing: dict[str, StoredMessage] = {}
    assert status_of(ref, message.header.cpa_id, find_received=nothing.get) == ("NotRecognized", None)


def test_catalogue_37_missing_manifest_is_valid() -> None:
    message, _ = receive(render_template("EbMSMessageMissingManifest.xml"))
    assert message.manifest is None


def test_message_with_attachments_resolves_every_cid() -> None:
    values = _values({"hrefs": ["cid:payload-1@localhost", "cid:payload-2@localhost"]})
    message, _ = receive(
        render_template(WITH_ATTACHMENTS, values), ("payload-1@localhost", "payload-2@localhost")
    )
    assert message.manifest is not None
    assert [r.content_id for r in message.manifest.references] == [
        "payload-1@localhost",
        "payload-2@localhost",
    ]


def test_ref_to_message_id_that_is_known_passes() -> None:
    message, _ = receive(render_template("EbMSMessageInvalidRefToMessageId.xml"), known=lambda ref: True)
    assert message.header.ref_to_message_id == "@localhost"
