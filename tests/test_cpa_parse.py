"""``parse_agreement``: the reference CPAs, certificates in KeyInfo, safe parsing, dangling references."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from cpa_support import cpa_bytes, make_cert, mutate, shared_cpa, shared_cpas
from ggk_ebms.cpa.certs import decode_key_info, der_of
from ggk_ebms.cpa.model import PerMessage, SyncReplyMode
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import CpaInvalidError, UnsafeXmlError, XmlError, XmlTooLargeError
from ggk_ebms.xml import parse


def test_every_reference_cpa_parses() -> None:
    for path in shared_cpas():
        agreement = parse_agreement(path.read_bytes())
        assert len(agreement.parties) == 2, path.name
        assert all(p.bindings for p in agreement.parties), path.name


def test_reference_rm_signed_encrypted_values() -> None:
    agreement = parse_agreement(shared_cpa("cpas", "cpaStubEBF.rm.https.signed.encrypted.xml"))
    assert agreement.cpa_id == "cpaStubEBF.rm.https.signed.encrypted"
    assert agreement.status == "agreed"
    assert agreement.start == datetime(2011, 1, 1, tzinfo=UTC)
    assert agreement.end == datetime(2031, 1, 1, tzinfo=UTC)
    logius, overheid = agreement.parties
    assert logius.party_ids[0].type == "urn:osb:oin"
    channel = logius.channels["DIGIPOORT_defaultDeliveryChannel_ProfileReliableMessagingSigned"]
    assert channel.characteristics.ack_requested == PerMessage.ALWAYS
    assert channel.characteristics.sync_reply_mode == SyncReplyMode.NONE
    exchange = logius.doc_exchanges[channel.doc_exchange_id]
    assert exchange.sender is not None
    assert exchange.sender.reliable_messaging is not None
    assert exchange.sender.reliable_messaging.retries == 5
    assert exchange.sender.reliable_messaging.retry_interval == timedelta(minutes=5)
    # "NotGuaranteed" is followed by a newline and tabs in the file; whitespace must not leak in.
    assert exchange.sender.reliable_messaging.message_order == "NotGuaranteed"
    assert exchange.sender.persist_duration == timedelta(minutes=30)
    assert exchange.receiver is not None
    assert exchange.receiver.digital_envelope is not None
    assert exchange.receiver.digital_envelope.encryption_cert_id == "DIGIPOORT_EncryptionCert"
    assert exchange.receiver.digital_envelope.key_size == 256
    send = [b for b in logius.bindings if b.direction == "send"]
    assert {b.action for b in send} == {"afleveren", "bevestigAanleveren"}
    assert all(b.other_party_binding_id for b in send)
    assert {b.binding_id for b in overheid.bindings} >= {"OVERHEID_R_Afleveren"}
    cert = logius.certificates["DIGIPOORT_ClientCert"]
    assert cert.der is not None


def test_certificate_base64_with_whitespace_and_leaf_chosen() -> None:
    ca, ca_key = make_cert("Test CA", None)
    leaf, _ = make_cert("leaf", "00000099000003630000", issuer=(ca, ca_key))
    b64 = base64.b64encode(der_of(leaf)).decode()
    wrapped = "\n\t " + "\n   ".join(b64[i : i + 50] for i in range(0, len(b64), 50)) + "\n"
    ca_b64 = base64.b64encode(der_of(ca)).decode()
    key_info = parse(
        (
            '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
            f"<ds:X509Certificate>{ca_b64}</ds:X509Certificate>"
            f"<ds:X509Certificate>{wrapped}</ds:X509Certificate>"
            "</ds:X509Data></ds:KeyInfo>"
        ).encode()
    )
    decoded = decode_key_info(key_info)
    assert decoded.problems == ()
    assert len(decoded.chain) == 2
    assert decoded.leaf is not None
    assert der_of(decoded.leaf) == der_of(leaf)  # the CA comes first, but the leaf is the one recorded


def test_self_signed_pair_takes_the_first() -> None:
    first, _ = make_cert("first", None)
    second, _ = make_cert("second", None)
    body = "".join(
        f"<ds:X509Certificate>{base64.b64encode(der_of(c)).decode()}</ds:X509Certificate>"
        for c in (first, second)
    )
    key_info = parse(
        f'<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>{body}</ds:X509Data></ds:KeyInfo>'.encode()
    )
    leaf = decode_key_info(key_info).leaf
    assert leaf is not None
    assert der_of(leaf) == der_of(first)


def test_broken_certificate_parses_to_none() -> None:
    data = cpa_bytes()
    start = data.index(b"<ds:X509Certificate>") + len(b"<ds:X509Certificate>")
    end = data.index(b"</ds:X509Certificate>")
    broken = data[:start] + b"not*base64" + data[end:]
    agreement = parse_agreement(broken)
    assert agreement.parties[0].certificates["A_ClientCert"].der is None


def test_dangling_references_do_not_crash_parsing() -> None:
    data = mutate(cpa_bytes(), 'cppa:transportId="A_Transport" cppa:docExchangeId="A_MessageExchange"',
                  'cppa:transportId="Nowhere" cppa:docExchangeId="Missing"')  # fmt: skip
    data = mutate(
        data, "<cppa:OtherPartyActionBinding>B_R_Fo01Bericht<", "<cppa:OtherPartyActionBinding>Gone<"
    )
    agreement = parse_agreement(data)
    channel = agreement.parties[0].channels["A_MessageChannel"]
    assert channel.transport_id == "Nowhere"
    assert channel.doc_exchange_id == "Missing"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not xml at all", XmlError),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', UnsafeXmlError),
        (b"<x>" + b" " * 2048 + b"</x>", XmlTooLargeError),
        (b'<CollaborationProtocolAgreement xmlns="urn:wrong"/>', CpaInvalidError),
    ],
)
def test_unusable_input_raises(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_agreement(data, max_bytes=1024)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('cppa:cpaid="', 'cppa:other="', "cpaid"),
        ("<cppa:Start>2026-01-01T00:00:00Z</cppa:Start>", "<cppa:Start>yesterday</cppa:Start>", "Start"),
        ("<cppa:RetryInterval>PT3H</cppa:RetryInterval>", "<cppa:RetryInterval>-PT3H</cppa:RetryInterval>",
         "negative"),
        ("<cppa:Retries>8</cppa:Retries>", "<cppa:Retries>many</cppa:Retries>", "Retries"),
        ('cppa:ackRequested="always"', 'cppa:ackRequested="sometimes"', "sometimes"),
    ],
)  # fmt: skip
def test_unreadable_values_raise_cpa_invalid(old: str, new: str, message: str) -> None:
    with pytest.raises(CpaInvalidError, match=message):
        parse_agreement(mutate(cpa_bytes(), old, new, 1))


def test_zone_less_datetimes_are_utc() -> None:
    data = mutate(cpa_bytes(), "<cppa:Start>2026-01-01T00:00:00Z<", "<cppa:Start>2026-01-01T00:00:00<")
    assert parse_agreement(data).start == datetime(2026, 1, 1, tzinfo=UTC)


def test_offset_datetimes_become_utc() -> None:
    data = mutate(cpa_bytes(), "<cppa:Start>2026-01-01T00:00:00Z<", "<cppa:Start>2026-01-01T01:00:00+01:00<")
    assert parse_agreement(data).start == datetime(2026, 1, 1, tzinfo=UTC)


def test_raw_bytes_kept() -> None:
    data = cpa_bytes()
    assert parse_agreement(data).raw == data
