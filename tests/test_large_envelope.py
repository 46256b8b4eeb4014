"""Large StUF envelopes without a server: the huge-text parser stays hardened, the sliced base64
decoder is exactly as strict as a whole-string decode, and the size rule counts the envelope."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import pytest
from lxml import etree

from ggk_ebms.clock import SequenceIdGenerator
from ggk_ebms.delivery.forwarders.soap_request import read_answer, request_body
from ggk_ebms.errors import StufError, UnsafeXmlError, XmlTooLargeError
from ggk_ebms.stuf import envelope as envelope_module
from ggk_ebms.stuf.envelope import MAX_RECEIVE_BYTES, build_fo01_reply, parse_envelope
from ggk_ebms.stuf.model import MessageKind, Systeem
from ggk_ebms.xml import DEFAULT_MAX_DEPTH, parse_large_text
from tests.large_support import MIB, sized_envelope

_SOAP = "<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body>{}</s:Body></s:Envelope>"


def test_huge_text_parser_keeps_the_depth_limit() -> None:
    ok = b"<a>" * DEFAULT_MAX_DEPTH + b"</a>" * DEFAULT_MAX_DEPTH
    assert parse_large_text(ok, max_bytes=len(ok)) is not None
    deep = b"<a>" * (DEFAULT_MAX_DEPTH + 1) + b"</a>" * (DEFAULT_MAX_DEPTH + 1)
    with pytest.raises(UnsafeXmlError):
        parse_large_text(deep, max_bytes=len(deep))


def test_huge_text_parser_refuses_doctype_entities_and_size() -> None:
    bomb = b'<!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>'
    with pytest.raises(UnsafeXmlError):
        parse_large_text(bomb, max_bytes=1000)
    big = b"<a>" + b"x" * 100 + b"</a>"
    with pytest.raises(XmlTooLargeError):
        parse_large_text(big, max_bytes=50)


def test_text_node_over_libxml2_default_is_read() -> None:
    data = b"<a>" + b"A" * (11 * MIB) + b"</a>"
    root = parse_large_text(data, max_bytes=len(data))
    assert len(root.text or "") == 11 * MIB


def test_25_mib_envelope_is_read_whole_and_26_mib_is_refused_with_ib003() -> None:
    at_limit = sized_envelope(MAX_RECEIVE_BYTES)
    message = parse_envelope(at_limit.envelope)
    assert message.payload is not None and message.payload.data == at_limit.payload
    over = sized_envelope(26 * MIB)
    with pytest.raises(StufError) as caught:
        parse_envelope(over.envelope)
    assert caught.value.code == "IB003"
    assert getattr(caught.value.stuurgegevens, "referentienummer", None) == over.referentienummer


def test_oversized_envelope_in_a_soap_wrapper_is_still_addressed() -> None:
    sized = sized_envelope(8192)
    inner = sized.envelope[sized.envelope.index(b"?>") + 2 :]
    wrapped = (
        b"<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Header><h>x</h></s:Header>"
        b"<s:Body>" + inner + b"</s:Body></s:Envelope>"
    )
    assert parse_envelope(wrapped).referentienummer == sized.referentienummer
    with pytest.raises(StufError) as caught:
        parse_envelope(wrapped, max_bytes=4096)
    assert caught.value.code == "IB003"
    assert getattr(caught.value.stuurgegevens, "referentienummer", None) == sized.referentienummer


def _decode(text: str) -> bytes:
    return parse_envelope(_with_base64(text)).payload.data  # type: ignore[union-attr]


def _with_base64(text: str) -> bytes:
    small = sized_envelope(4096)
    encoded = base64.b64encode(small.payload).decode()
    return small.envelope.decode().replace(encoded, text).encode()


@pytest.mark.parametrize("streamed", [True, False])
@pytest.mark.parametrize("slice_size", [4, 5, 7, 8, 1024])
def test_sliced_decoder_agrees_with_a_whole_string_decode(
    monkeypatch: pytest.MonkeyPatch, slice_size: int, streamed: bool
) -> None:
    monkeypatch.setattr(envelope_module, "_BASE64_SLICE", slice_size)
    if streamed:  # the path of envelopes over 1 MiB, here for a small one
        monkeypatch.setattr(envelope_module, "_STREAM_ABOVE", 0)
    payload = sized_envelope(4096).payload
    encoded = base64.b64encode(payload).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))  # MIME-style lines
    assert _decode(wrapped) == payload
    assert _decode(" \t" + encoded + "\r\n") == payload
    cases = [
        encoded[:-1],  # a quantum cut short
        encoded[:8] + "=" + encoded[9:],  # padding in the middle
        "QQ==" + encoded,  # a padded quantum before more data
        encoded[:12] + "*" + encoded[13:],  # outside the alphabet
        encoded[:12] + "é" + encoded[13:],  # not even ASCII
        "   ",  # nothing but whitespace
    ]
    for bad in cases:
        whole_ok = True
        try:
            base64.b64decode("".join(bad.split()), validate=True)
        except (binascii.Error, ValueError):
            whole_ok = False
        if not "".join(bad.split()):
            whole_ok = False
        assert not whole_ok
        with pytest.raises(StufError) as caught:
            _decode(bad)
        assert caught.value.code == "StUF055"


def test_fo01_about_an_envelope_near_the_limit_leaves_detailsxml_out() -> None:
    near = sized_envelope(24 * MIB + MIB // 2)
    failed = parse_envelope(near.envelope)
    error = StufError("StUF055", "payload is not schema-conform", stuurgegevens=failed.stuurgegevens)
    built = build_fo01_reply(
        failed,
        error,
        zender=Systeem("0363", "GGk-adapter"),
        ids=SequenceIdGenerator(),
        tijdstip=datetime(2026, 1, 5, tzinfo=UTC),
        original=near.envelope,
    )
    fo01 = parse_envelope(built.data)
    assert fo01.fout is not None and fo01.fout.code == "StUF055"
    assert not fo01.fout.has_details_xml
    small = sized_envelope(64 * 1024)
    with_details = build_fo01_reply(
        parse_envelope(small.envelope),
        error,
        zender=Systeem("0363", "GGk-adapter"),
        ids=SequenceIdGenerator(),
        tijdstip=datetime(2026, 1, 5, tzinfo=UTC),
        original=small.envelope,
    )
    assert parse_envelope(with_details.data).fout.has_details_xml  # type: ignore[union-attr]


# --- the SOAP request to an HTTP target ---------------------------------------------------------


def test_soap_request_carries_the_envelope_unchanged() -> None:
    sized = sized_envelope(64 * 1024)
    body = request_body(sized.envelope, MessageKind.DI01).read()
    assert body is not None
    declaration_end = sized.envelope.index(b"?>") + 2
    assert sized.envelope[declaration_end:] in body
    root = parse_large_text(body, max_bytes=len(body))
    assert root[0][0].tag == "{http://www.stufstandaarden.nl/koppelvlak/ggk0210}envelopHeenbericht-ggk_Di01"


def test_soap_request_reserialises_what_cannot_go_in_as_it_is() -> None:
    sized = sized_envelope(64 * 1024)
    latin = sized.envelope.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'", 1)
    assert latin != sized.envelope
    body = request_body(latin, MessageKind.DI01).read()
    assert body is not None and b"ISO-8859-1" not in body
    root = parse_large_text(body, max_bytes=len(body))
    assert parse_envelope(etree.tostring(root[0][0])).payload.data == sized.payload  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "body", "delivered", "retryable"),
    [
        (200, _SOAP.format("<StUF:Bv03Bericht xmlns:StUF='http://www.egem.nl/StUF/StUF0301'/>"), True, False),
        (500, _SOAP.format("<s:Fault><faultcode>s:Server</faultcode></s:Fault>"), False, True),
        (500, _SOAP.format("<s:Fault><faultcode>s:Client</faultcode></s:Fault>"), False, False),
        (503, "down", False, True),
        (400, "", False, False),
        (429, "", False, True),
        (200, _SOAP.format("<other/>"), False, True),
        (200, "not xml", False, True),
    ],
)
def test_answer_of_the_application(status: int, body: str, delivered: bool, retryable: bool) -> None:
    answer = read_answer(status, body.encode())
    assert (answer.delivered, answer.retryable) == (delivered, retryable)
