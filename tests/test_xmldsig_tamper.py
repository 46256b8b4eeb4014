"""Tampered and hostile signed messages: each is refused with SecurityFailure at the right place.

One table row per attack (docs/signing.md, ebMS 2.0 §4.1.3): the row changes a correctly signed
message with three payload parts and names the location and description the refusal must carry.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ggk_ebms.errors import EbmsError, ErrorCode
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import ACTOR_NEXT_MSH, DS, EB, SOAP_ENV
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security import xmlsec_io
from ggk_ebms.security.xmldsig import verify_envelope
from xmlsec_support import business_envelope, certificate_der, payload_parts, private_key, sign, verify

Message = tuple[bytes, list[MimePart]]
SIGNED_INFO = "//Header/Signature/SignedInfo"


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


def _eb(local: str) -> str:
    return f"{{{EB}}}{local}"


def _signed(**kwargs: str) -> Message:
    parts = payload_parts(3)
    return sign(business_envelope(parts), parts, **kwargs), parts


def _edit(signed: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(signed)
    change(root)
    return etree.tostring(root)


def _header(root: etree._Element) -> etree._Element:
    header = root.find(f"{{{SOAP_ENV}}}Header")
    assert header is not None
    return header


def _signed_info(root: etree._Element) -> etree._Element:
    found = root.find(f".//{_ds('SignedInfo')}")
    assert found is not None
    return found


# --- the attacks -------------------------------------------------------------------------------------


def changed_header_value(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        cpa_id = root.find(f".//{_eb('CPAId')}")
        assert cpa_id is not None
        cpa_id.text = "another-agreement"

    return _edit(message[0], change), message[1]


def changed_payload_byte(message: Message) -> Message:
    parts = list(message[1])
    data = bytearray(parts[1].data)
    data[100] ^= 0x01
    parts[1] = replace(parts[1], data=bytes(data))
    return message[0], parts


def swapped_attachment(message: Message) -> Message:
    first, second, third = message[1]
    return message[0], [replace(first, data=second.data), replace(second, data=first.data), third]


def removed_reference(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        signed_info = _signed_info(root)
        signed_info.remove(signed_info.findall(_ds("Reference"))[2])

    return _edit(message[0], change), message[1]


def extra_unreferenced_part(message: Message) -> Message:
    return message[0], [*message[1], MimePart("extra@attacker.example", "application/xml", b"<x/>")]


def signed_by_certificate_not_in_cpa(message: Message) -> Message:
    parts = message[1]
    return sign(business_envelope(parts), parts, party="rinis"), parts


def sha1_when_cpa_says_sha256(message: Message) -> Message:
    parts = message[1]
    return sign(
        business_envelope(parts), parts, signature_algorithm=alg.RSA_SHA1, digest_algorithm=alg.SHA1
    ), parts


def sha1_digest_only(message: Message) -> Message:
    parts = message[1]
    return sign(business_envelope(parts), parts, digest_algorithm=alg.SHA1), parts


def _added_reference(uri: str) -> Callable[[Message], Message]:
    def attack(message: Message) -> Message:
        def change(root: etree._Element) -> None:
            reference = etree.SubElement(_signed_info(root), _ds("Reference"), URI=uri)
            etree.SubElement(reference, _ds("DigestMethod"), Algorithm=alg.SHA256)
            etree.SubElement(reference, _ds("DigestValue")).text = "AAAA"

        return _edit(message[0], change), message[1]

    return attack


def wrapped_duplicate_message_header(message: Message) -> Message:
    """The signed MessageHeader moves into a wrapper; a forged one takes its place."""

    def change(root: etree._Element) -> None:
        header = _header(root)
        original = header.find(_eb("MessageHeader"))
        assert original is not None
        wrapper = etree.Element("{urn:attacker}Wrapper")
        wrapper.set(f"{{{SOAP_ENV}}}actor", ACTOR_NEXT_MSH)
        wrapper.append(copy.deepcopy(original))
        header.insert(0, wrapper)
        action = original.find(_eb("Action"))
        assert action is not None
        action.text = "forged-action"

    return _edit(message[0], change), message[1]


def message_header_moved_to_body(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        header = _header(root)
        original = header.find(_eb("MessageHeader"))
        assert original is not None
        body = root.find(f"{{{SOAP_ENV}}}Body")
        assert body is not None
        body.append(copy.deepcopy(original))

    return _edit(message[0], change), message[1]


def message_header_excluded_by_actor(message: Message) -> Message:
    """An actor nextMSH on the MessageHeader itself takes it out of the signed node set."""

    def change(root: etree._Element) -> None:
        original = _header(root).find(_eb("MessageHeader"))
        assert original is not None
        original.set(f"{{{SOAP_ENV}}}actor", ACTOR_NEXT_MSH)
        action = original.find(_eb("Action"))
        assert action is not None
        action.text = "forged-action"

    return _edit(message[0], change), message[1]


def second_signature(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        signature = root.find(f".//{_ds('Signature')}")
        assert signature is not None
        wrapper = etree.SubElement(_header(root), "{urn:attacker}Wrapper")
        wrapper.append(copy.deepcopy(signature))

    return _edit(message[0], change), message[1]


def signature_removed(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        signature = root.find(f".//{_ds('Signature')}")
        assert signature is not None
        _header(root).remove(signature)

    return _edit(message[0], change), message[1]


def signature_in_body(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        signature = root.find(f".//{_ds('Signature')}")
        body = root.find(f"{{{SOAP_ENV}}}Body")
        assert signature is not None
        assert body is not None
        body.append(signature)

    return _edit(message[0], change), message[1]


def xpath_filter_replaced(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        xpath = root.find(f".//{_ds('XPath')}")
        assert xpath is not None
        xpath.text = "true()"

    return _edit(message[0], change), message[1]


def envelope_transforms_dropped(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        reference = _signed_info(root).find(_ds("Reference"))
        assert reference is not None
        transforms = reference.find(_ds("Transforms"))
        assert transforms is not None
        reference.remove(transforms)

    return _edit(message[0], change), message[1]


def cid_reference_with_transform(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        reference = _signed_info(root).findall(_ds("Reference"))[1]
        transforms = etree.Element(_ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=alg.C14N_INCLUSIVE)
        reference.insert(0, transforms)

    return _edit(message[0], change), message[1]


def c14n_with_comments(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        _signed_info(root)[0].set("Algorithm", f"{alg.C14N_INCLUSIVE}#WithComments")

    return _edit(message[0], change), message[1]


def object_in_signature(message: Message) -> Message:
    def change(root: etree._Element) -> None:
        signature = root.find(f".//{_ds('Signature')}")
        assert signature is not None
        etree.SubElement(etree.SubElement(signature, _ds("Object")), _ds("Manifest"))

    return _edit(message[0], change), message[1]


def reference_to_missing_part(message: Message) -> Message:
    first, second, third = message[1]
    return message[0], [first, second, replace(third, content_id="renamed@gemeente.example")]


@dataclass(frozen=True)
class Case:
    name: str
    attack: Callable[[Message], Message]
    location: str
    description: str


CID1 = f"cid:{payload_parts(3)[1].content_id}"
CID0 = f"cid:{payload_parts(3)[0].content_id}"
CID2 = f"cid:{payload_parts(3)[2].content_id}"

CASES = [
    Case("changed header value", changed_header_value, "//Header/Signature", "Invalid Signature."),
    Case("changed payload byte", changed_payload_byte, CID1, "Digest of the MIME part does not match."),
    Case("swapped attachment", swapped_attachment, CID0, "Digest of the MIME part does not match."),
    Case("removed Reference", removed_reference, CID1, "MIME part is not covered by the Signature."),
    Case(
        "extra unreferenced part",
        extra_unreferenced_part,
        "cid:extra@attacker.example",
        "MIME part is not covered by the Signature.",
    ),
    Case(
        "certificate not in the CPA",
        signed_by_certificate_not_in_cpa,
        "//Header/Signature",
        "Invalid Signature.",
    ),
    Case(
        "SHA-1 signature",
        sha1_when_cpa_says_sha256,
        f"{SIGNED_INFO}/SignatureMethod",
        "Invalid SignatureMethod.",
    ),
    Case(
        "SHA-1 digest",
        sha1_digest_only,
        f"{SIGNED_INFO}/Reference[@URI='']/DigestMethod",
        "Invalid DigestMethod.",
    ),
    Case(
        "file: reference",
        _added_reference("file:///etc/hostname"),
        f"{SIGNED_INFO}/Reference[@URI='file:///etc/hostname']",
        "Invalid Reference URI.",
    ),
    Case(
        "http: reference",
        _added_reference("http://127.0.0.1:9/x"),
        f"{SIGNED_INFO}/Reference[@URI='http://127.0.0.1:9/x']",
        "Invalid Reference URI.",
    ),
    Case(
        "same-document reference",
        _added_reference("#body"),
        f"{SIGNED_INFO}/Reference[@URI='#body']",
        "Invalid Reference URI.",
    ),
    Case(
        "reference to a part not in the message",
        _added_reference("cid:nowhere@attacker.example"),
        "cid:nowhere@attacker.example",
        "Signature references a MIME part that is not in the message.",
    ),
    Case(
        "wrapped duplicate MessageHeader",
        wrapped_duplicate_message_header,
        "//Header/MessageHeader",
        "More than one MessageHeader.",
    ),
    Case(
        "second MessageHeader in the Body",
        message_header_moved_to_body,
        "//Header/MessageHeader",
        "More than one MessageHeader.",
    ),
    Case(
        "MessageHeader taken out by the actor filter",
        message_header_excluded_by_actor,
        "//Header/MessageHeader",
        "MessageHeader is not covered by the Signature.",
    ),
    Case("second ds:Signature", second_signature, "//Header/Signature", "More than one Signature."),
    Case("no Signature", signature_removed, "//Header/Signature", "Signature not found."),
    Case(
        "Signature in the Body",
        signature_in_body,
        "//Header/Signature",
        "Signature is not in the SOAP Header.",
    ),
    Case(
        "XPath filter replaced",
        xpath_filter_replaced,
        f"{SIGNED_INFO}/Reference[@URI='']/Transforms",
        "Invalid Transforms.",
    ),
    Case(
        "envelope transforms dropped",
        envelope_transforms_dropped,
        f"{SIGNED_INFO}/Reference[@URI='']/Transforms",
        "Invalid Transforms.",
    ),
    Case(
        "cid: reference with a transform",
        cid_reference_with_transform,
        f"{SIGNED_INFO}/Reference[@URI='{CID0}']",
        "Invalid Transforms.",
    ),
    Case(
        "C14N with comments",
        c14n_with_comments,
        f"{SIGNED_INFO}/CanonicalizationMethod",
        "Invalid CanonicalizationMethod.",
    ),
    Case(
        "ds:Object in the Signature",
        object_in_signature,
        "//Header/Signature",
        "Invalid Signature structure.",
    ),
    Case(
        "part renamed",
        reference_to_missing_part,
        CID2,
        "Signature references a MIME part that is not in the message.",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampered_message_is_refused(case: Case) -> None:
    envelope, parts = case.attack(_signed())
    with pytest.raises(EbmsError) as caught:
        verify(envelope, parts)
    assert caught.value.code == ErrorCode.SECURITY_FAILURE
    assert (caught.value.location, caught.value.description) == (case.location, case.description)


def test_untampered_message_passes() -> None:
    envelope, parts = _signed()
    assert len(verify(envelope, parts).references) == 4


def test_sha1_passes_only_behind_the_legacy_switch() -> None:
    envelope, parts = sha1_when_cpa_says_sha256(_signed())
    verify(envelope, parts, signature_algorithm=alg.RSA_SHA1, digest_algorithm=alg.SHA1, allow_sha1=True)
    with pytest.raises(EbmsError, match="Invalid SignatureMethod"):
        verify(envelope, parts, signature_algorithm=alg.RSA_SHA1, digest_algorithm=alg.SHA1, allow_sha1=False)


def test_algorithm_other_than_the_cpa_is_refused_even_when_strong() -> None:
    envelope, parts = _signed(signature_algorithm=alg.RSA_SHA512)
    with pytest.raises(EbmsError, match="Invalid SignatureMethod"):
        verify(envelope, parts, signature_algorithm=alg.RSA_SHA256)


def test_certificate_not_valid_at_the_message_timestamp() -> None:
    envelope, parts = _signed()
    with pytest.raises(EbmsError, match="not valid at the message Timestamp"):
        verify_envelope(
            envelope,
            parts,
            certificate_der=certificate_der("gemeente"),
            allowed_signature_algorithms={alg.RSA_SHA256},
            allowed_digest_algorithms={alg.SHA256},
            expected_digest=alg.SHA256,
            expected_signature=alg.RSA_SHA256,
            at=datetime(2040, 1, 1, tzinfo=UTC),
        )


def test_keyinfo_is_never_trusted() -> None:
    """A message signed by RINIS with RINIS' certificate in KeyInfo, checked against the CPA's."""
    envelope, parts = signed_by_certificate_not_in_cpa(_signed())
    assert b"X509Certificate" in envelope
    with pytest.raises(EbmsError, match="Invalid Signature"):
        verify(envelope, parts, party="gemeente")
    verify(envelope, parts, party="rinis")


def _sign_raw(uri: str) -> None:
    """Sign a document whose one Reference is ``uri``, with xmlsec directly (no checks of ours)."""
    root = etree.fromstring(f'<doc xmlns:ds="{DS}"><data>x</data></doc>'.encode())
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformRsaSha256
    )
    root.append(signature)
    xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=uri)
    context = xmlsec.SignatureContext()
    pem = private_key("gemeente").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    context.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    with xmlsec_io.serving({"part@x": b"data"}):
        context.sign(signature)


def test_xmlsec_resolves_the_cid_parts_in_scope() -> None:
    _sign_raw("cid:part@x")


@pytest.mark.parametrize(
    "uri", ["file:///etc/hostname", "/etc/hostname", "http://127.0.0.1:9/x", "cid:other@x"]
)
def test_xmlsec_itself_cannot_read_files_or_urls(uri: str) -> None:
    """Defence in depth: even past our checks, xmlsec has no file or network resolver left."""
    with pytest.raises(xmlsec.Error):
        _sign_raw(uri)
