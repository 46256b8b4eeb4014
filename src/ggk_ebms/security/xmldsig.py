"""Sign and verify ebMS 2.0 envelopes with XML Signature (OASIS ebMS 2.0 §4.1.3, §6.3, KVS ch. 5).

Layout we write (ebMS 2.0 §4.1.3): one ``ds:Signature`` as the last child of ``SOAP:Header``;
``CanonicalizationMethod`` inclusive C14N 1.0; ``SignatureMethod`` and every ``DigestMethod`` from
the CPA; a Reference ``URI=""`` with the transforms enveloped-signature, the ebMS XPath actor filter
(``xmlns:SOAP`` declared on ``ds:XPath``) and inclusive C14N; then one Reference
``URI="cid:<content-id>"`` per payload part, without transforms, digesting the part's bytes;
``KeyInfo`` with ``KeyValue`` and the leaf ``X509Certificate``. With an RSA key the template is
filled without libxmlsec's per-node XPath evaluation, byte-identical to its ``sign``
(docs/signing.md "Fast signing"); other keys are signed by libxmlsec.

Verification (ebMS 2.0 §4.1.3) is strict about shape before any cryptography runs, so that what the
caller processes is what was verified:

- exactly one ``ds:Signature``, a child of the SOAP Header of the envelope;
- exactly one of each ebMS block the MSH reads (``eb:MessageHeader`` above all), each in its place
  and, except the hop-by-hop ``eb:SyncReply``, inside the node set the signature covers (the actor
  filter leaves out elements targeted at nextMSH or the next SOAP node: a MessageHeader carrying such
  an actor would be unsigned);
- one ``URI=""`` Reference carrying exactly the three transforms above (exclusive C14N accepted
  as well, docs/signing.md); every other Reference is ``cid:`` naming a part of this message, each part
  covered exactly once; file:, http:, same-document ``#id`` and every other URI refused;
- algorithms equal to the CPA's and inside SIGN003/SIGN004 (SHA-1 only behind the legacy switch);
- the key is the sender's CPA ``SigningCertificateRef`` certificate, never ``KeyInfo``.

Failures are ``EbmsError(SecurityFailure, location, description)``. xmlsec reads parts through
``xmlsec_io`` only, which serves the cid: parts of the current call and has no file or network
resolver (see there for why).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, Final, NamedTuple

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from ggk_ebms.cpa import algorithms as verdicts
from ggk_ebms.ebms.model import Acknowledgment
from ggk_ebms.errors import ConfigError, EbmsError, ErrorCode, MimeError, XmlError
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import ACTOR_NEXT_MSH, DS, EB, SOAP_ACTOR_NEXT, SOAP_ENV
from ggk_ebms.security import actor_filter, xmlsec_io
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security.keys import key_matches_certificate
from ggk_ebms.xml import DEFAULT_MAX_BYTES, parse

__all__ = [
    "SignedReference",
    "VerifiedSignature",
    "ack_references",
    "check_ack_references",
    "sign_envelope",
    "signed_references",
    "verify_envelope",
]

_EXC_C14N_NS: Final = alg.C14N_EXCLUSIVE
_SLOT_NS: Final = "urn:x-ggk-ebms:signature-slot"
_EXCLUDING_ACTORS: Final = actor_filter.EXCLUDING_ACTORS
_ACTOR: Final = f"{{{SOAP_ENV}}}actor"
# ebMS blocks the MSH reads, with the container each must sit in (ebMS 2.0 §3, §6, §7).
_PROCESSED_BLOCKS: Final = (
    ("MessageHeader", "Header"),
    ("AckRequested", "Header"),
    ("Acknowledgment", "Header"),
    ("ErrorList", "Header"),
    ("MessageOrder", "Header"),
    ("SyncReply", "Header"),
    ("Manifest", "Body"),
    ("StatusRequest", "Body"),
    ("StatusResponse", "Body"),
)
# SyncReply is hop-by-hop (actor next) and left out of the signature by design (ebMS 2.0 §4.1.3).
_UNSIGNED_BY_DESIGN: Final = frozenset({"SyncReply"})
_HASHES: Final = {
    alg.SHA1: "sha1",
    alg.SHA256: "sha256",
    alg.SHA384: "sha384",
    alg.SHA512: "sha512",
}
_SIGNATURE: Final = "//Header/Signature"
_SIGNED_INFO: Final = "//Header/Signature/SignedInfo"
_WHITESPACE: Final = re.compile(r"\s+")
_XML_WHITESPACE: Final = re.compile(r"[ \t\r\n]+")
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_XPATH_BLANK: Final = "[ \t\r\n]*"  # XPath 1.0 ExprWhitespace


def _quoted(value: str) -> str:
    return f"(?:\"{re.escape(value)}\"|'{re.escape(value)}')"


# The spellings of the ebMS actor filter the fast check takes (ebMS 2.0 §4.1.3): ours, and the same
# with either quote and any XPath whitespace around the union bar and the whole. Whitespace
# anywhere else sends the signature to libxmlsec, whose XPath parser then decides what it means.
_FAST_ACTOR_FILTER: Final = re.compile(
    _XPATH_BLANK
    + r"not\(ancestor-or-self::node\(\)\[@SOAP:actor="
    + _quoted(ACTOR_NEXT_MSH)
    + r"\]"
    + _XPATH_BLANK
    + r"\|"
    + _XPATH_BLANK
    + r"ancestor-or-self::node\(\)\[@SOAP:actor="
    + _quoted(SOAP_ACTOR_NEXT)
    + r"\]\)"
    + _XPATH_BLANK
)
_AROUND_PUNCTUATION: Final = re.compile(r"\s*([()\[\]|=@,:])\s*")


class SignedReference(NamedTuple):
    """One ``ds:Reference`` of a SignedInfo: its URI, DigestMethod and DigestValue (base64)."""

    uri: str
    digest_method: str
    digest_value: str


@dataclass(frozen=True)
class VerifiedSignature:
    """The result of a successful ``verify_envelope``.

    ``references`` are what the signature covers (echoed
    in a signed Acknowledgment, ebMS 2.0 §6.3, KVS ch. 5);
    ``signed_info_element`` is the verified ``ds:SignedInfo`` of the parsed envelope.
    """

    references: tuple[SignedReference, ...]
    signed_info_element: etree._Element = field(compare=False, repr=False)
    signature_method: str = ""


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


def _soap(local: str) -> str:
    return f"{{{SOAP_ENV}}}{local}"


def _security_failure(location: str, description: str) -> EbmsError:
    return EbmsError(ErrorCode.SECURITY_FAILURE, location, description)


# --- signing -------------------------------------------------------------------------------------------


def sign_envelope(
    envelope: bytes,
    attachments: Sequence[MimePart],
    *,
    key: PrivateKeyTypes,
    certificate_der: bytes,
    signature_algorithm: str,
    digest_algorithm: str,
) -> bytes:
    """``envelope`` with one ``ds:Signature`` appended to its SOAP Header (ebMS 2.0 §4.1.3).

    ``attachments`` are the payload parts in plaintext (sign,
    then encrypt: ebMS 2.0 §4.1.3, §4.1.4, XML Encryption 1.0).
    ``key`` must be the private half of ``certificate_der`` (our CPA SigningCertificateRef).
    Raises ConfigError for a key/certificate/algorithm that cannot sign, XmlError for an envelope
    that is not a SOAP envelope or is signed already, MimeError for parts without a unique
    Content-ID.
    """
    if not key_matches_certificate(key, certificate_der):
        raise ConfigError("the signing key does not belong to the signing certificate of the CPA")
    for uri, table, what in (
        (signature_algorithm, verdicts.SIGNATURES, "signature"),
        (digest_algorithm, verdicts.DIGESTS, "digest"),
    ):
        if verdicts.verdict(table, uri) == "forbidden":
            raise ConfigError(f"{what} algorithm {uri} is not one we sign with (SIGN003/SIGN004)")
    parts = _part_map(attachments)
    template = _signature_template(signature_algorithm, digest_algorithm, list(parts))
    filled = _with_signature_written_in(envelope, template)
    if filled is not None:
        root = filled
    else:
        root = parse(envelope, what="SOAP envelope to sign")
        header = _soap_header(root)
        if header is None:
            raise XmlError("the envelope to sign has no SOAP Header")
        if next(root.iter(_ds("Signature")), None) is not None:
            raise XmlError("the envelope to sign carries a ds:Signature already")
        root = _with_signature_slot_filled(root, header, template)
    signature = root[0][-1]
    if not _signed_without_xpath(root, signature, parts, key, signature_algorithm, digest_algorithm):
        _sign_with_libxmlsec(signature, parts, key, signature_algorithm, digest_algorithm)
    signature.append(_key_info(key, certificate_der))
    # The whole document, prolog included: URI="" covers processing instructions outside the
    # document element (XMLDSig §4.3.3.3, C14N 1.0 §2.1), so writing the element alone would drop
    # signed content and the signature would not verify. Without a prolog the bytes are the same.
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)


def _sign_with_libxmlsec(
    signature: etree._Element,
    parts: Mapping[str, bytes],
    key: PrivateKeyTypes,
    signature_algorithm: str,
    digest_algorithm: str,
) -> None:
    """libxmlsec fills the template: every digest (the actor filter node by node) and SignatureValue."""
    context = xmlsec.SignatureContext()
    context.key = _xmlsec_private_key(key)
    _enable_transforms(context, signature_methods={signature_algorithm}, digests={digest_algorithm})
    try:
        with xmlsec_io.serving(parts):
            context.sign(signature)
    except xmlsec.Error as exc:
        raise ConfigError(
            f"signing failed ({_xmlsec_reason(exc)}); check the key type and algorithms"
        ) from None


# RSA PKCS#1 v1.5 signature methods (XMLDSig §6.4.2, RFC 6931 §2.3.2) with the hash each signs;
# PKCS#1 v1.5 is deterministic, so the fast signer's SignatureValue equals libxmlsec's octet for
# octet. ECDSA and DSA are randomised (no such equality to test) and stay with libxmlsec.
_RSA_PKCS1_HASHES: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    alg.RSA_SHA1: hashes.SHA1,
    alg.RSA_SHA256: hashes.SHA256,
    alg.RSA_SHA384: hashes.SHA384,
    alg.RSA_SHA512: hashes.SHA512,
}


def _signed_without_xpath(
    root: etree._Element,
    signature: etree._Element,
    parts: Mapping[str, bytes],
    key: PrivateKeyTypes,
    signature_algorithm: str,
    digest_algorithm: str,
) -> bool:
    """The fast signer (docs/signing.md "Fast signing"): fill our own template as libxmlsec's
    ``sign`` would, byte for byte; False (nothing written) where libxmlsec must sign.

    ``signature`` is the template of ``_signature_template`` in place: inclusive C14N, the
    ``URI=""`` Reference with the three ebMS transforms, one ``cid:`` Reference per part. Each
    DigestValue is the digest of what libxmlsec would digest (XMLDSig §3.1.1): for ``URI=""`` the
    octets of ``actor_filter.envelope_octets``, the function the fast check verifies with (the
    equivalence argument is in that module), for ``cid:`` the part's bytes as ``xmlsec_io`` serves
    them. SignatureValue is RSA PKCS#1 v1.5 over the C14N of SignedInfo with those DigestValues
    written in (XMLDSig §3.1.2), from ``actor_filter.signed_info_octets``. Both values are written
    in libxmlsec's base64 layout.
    """
    signing_hash = _RSA_PKCS1_HASHES.get(signature_algorithm)
    digest_name = _HASHES.get(digest_algorithm)
    if not isinstance(key, rsa.RSAPrivateKey) or signing_hash is None or digest_name is None:
        return False
    envelope = actor_filter.envelope_octets(root, signature, exclusive=False)
    if envelope is None:
        return False  # the document element is filtered out: libxmlsec signs the empty node set
    signed_info = signature[0]
    for reference in signed_info.iterchildren(_ds("Reference")):
        uri = reference.get("URI", "")
        # The template writes "cid:" + the Content-ID verbatim, one Reference per part.
        data = envelope if uri == "" else parts[uri[len("cid:") :]]
        reference[-1].text = _xmlsec_base64(hashlib.new(digest_name, data).digest())
    canonical_signed_info = actor_filter.signed_info_octets(signed_info, exclusive=False)
    try:
        value = key.sign(canonical_signed_info, padding.PKCS1v15(), signing_hash())
    except ValueError as exc:  # e.g. a modulus too short for the hash's DigestInfo
        raise ConfigError(f"signing failed ({exc}); check the key type and algorithms") from None
    signature[1].text = _xmlsec_base64(value)
    return True


def _xmlsec_base64(value: bytes) -> str:
    """Base64 laid out as libxmlsec writes DigestValue and SignatureValue: lines of its default
    line size (64 unless changed, python-xmlsec ``base64_default_line_size``) joined by a line feed,
    none before the first or after the last (XMLDSig §4.0.1 allows any base64 whitespace; the
    layout is what makes the output byte-identical)."""
    text = base64.b64encode(value).decode("ascii")
    width = xmlsec.base64_default_line_size()
    if width <= 0 or len(text) <= width:
        return text
    return "\n".join(text[at : at + width] for at in range(0, len(text), width))


_HEADER_END: Final = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?Header\s*>")


def _with_signature_written_in(envelope: bytes, template: etree._Element) -> etree._Element | None:
    """The envelope parsed once with ``template`` written in as the last child of its SOAP Header,
    or None when that cannot be done on the bytes (then ``_with_signature_slot_filled`` does it).

    The template's serialisation goes in before the one closing Header tag, so ``ds:XPath`` keeps
    its own ``xmlns:SOAP`` (ebMS 2.0 §4.1.3) without a second parse. The parse then proves the
    place: the Signature must be the last child of the SOAP Header and the only one in the document
    (an envelope signed already is refused as before by the slower path).
    """
    ends = list(_HEADER_END.finditer(envelope))
    if len(ends) != 1:
        return None
    at = ends[0].start()
    filled = envelope[:at] + etree.tostring(template) + envelope[at:]
    root = parse(filled, max_bytes=len(filled), what="SOAP envelope to sign")
    header = _soap_header(root)
    signatures = list(root.iter(_ds("Signature")))
    if header is None or root[0] is not header or len(signatures) != 1 or header[-1] is not signatures[0]:
        return None
    return root


def _with_signature_slot_filled(
    root: etree._Element, header: etree._Element, template: etree._Element
) -> etree._Element:
    """The envelope re-read with ``template`` as the last child of its SOAP Header.

    Appending the element directly would lose the ``xmlns:SOAP`` declaration on ``ds:XPath``
    (lxml drops a declaration the envelope already makes), which ebMS 2.0 §4.1.3 asks for; a parsed
    document keeps it. So a unique slot element is written where the Signature goes and replaced
    by the template's own serialisation, and the result is parsed again with the hardened parser.
    """
    etree.SubElement(header, f"{{{_SLOT_NS}}}signature", nsmap={"ggkslot": _SLOT_NS})
    # The whole document, as sign_envelope writes it: a prolog stays part of what is signed.
    serialised = etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)
    marker = f'<ggkslot:signature xmlns:ggkslot="{_SLOT_NS}"/>'.encode("ascii")
    if serialised.count(marker) != 1:
        raise XmlError("the envelope to sign cannot take a Signature slot")
    filled = serialised.replace(marker, etree.tostring(template))
    result = parse(filled, max_bytes=len(filled), what="SOAP envelope to sign")
    if _soap_header(result) is None:
        raise XmlError("the envelope to sign has no SOAP Header")
    return result


def _signature_template(
    signature_method: str, digest_method: str, content_ids: Sequence[str]
) -> etree._Element:
    """An unsigned ds:Signature: SignedInfo filled in, DigestValue and SignatureValue empty."""
    signature = etree.Element(_ds("Signature"), nsmap={"ds": DS})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=alg.C14N_INCLUSIVE)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=signature_method)
    envelope_ref = etree.SubElement(signed_info, _ds("Reference"), URI="")
    transforms = etree.SubElement(envelope_ref, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=alg.ENVELOPED_SIGNATURE)
    xpath_transform = etree.SubElement(transforms, _ds("Transform"), Algorithm=alg.XPATH_FILTER)
    # ebMS 2.0 §4.1.3: xmlns:SOAP declared on ds:XPath itself, so the expression keeps its meaning
    # wherever the Reference is copied (a signed Acknowledgment echoes it, ebMS 2.0 §6.3, KVS ch. 5).
    xpath = etree.SubElement(xpath_transform, _ds("XPath"), nsmap={"SOAP": SOAP_ENV})
    xpath.text = alg.EBMS_ACTOR_FILTER
    etree.SubElement(transforms, _ds("Transform"), Algorithm=alg.C14N_INCLUSIVE)
    _digest_children(envelope_ref, digest_method)
    for content_id in content_ids:
        _digest_children(
            etree.SubElement(signed_info, _ds("Reference"), URI=f"cid:{content_id}"), digest_method
        )
    etree.SubElement(signature, _ds("SignatureValue"))
    return signature


def _digest_children(reference: etree._Element, digest_method: str) -> None:
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=digest_method)
    etree.SubElement(reference, _ds("DigestValue"))


def _key_info(key: PrivateKeyTypes, certificate_der: bytes) -> etree._Element:
    """KeyInfo with KeyValue (RSA keys) and the leaf X509Certificate (ebMS 2.0 §4.1.3).

    Written after signing: KeyInfo is outside SignedInfo and inside the enveloped Signature, so it
    is covered by no digest, and the receiver must not trust it anyway (ebMS 2.0 §4.1.3).
    """
    key_info = etree.Element(_ds("KeyInfo"))
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        rsa_value = etree.SubElement(etree.SubElement(key_info, _ds("KeyValue")), _ds("RSAKeyValue"))
        etree.SubElement(rsa_value, _ds("Modulus")).text = _crypto_binary(numbers.n)
        etree.SubElement(rsa_value, _ds("Exponent")).text = _crypto_binary(numbers.e)
    x509_data = etree.SubElement(key_info, _ds("X509Data"))
    etree.SubElement(x509_data, _ds("X509Certificate")).text = base64.b64encode(certificate_der).decode(
        "ascii"
    )
    return key_info


def _crypto_binary(value: int) -> str:
    """XMLDSig ds:CryptoBinary: big-endian, no leading zero octets, base64."""
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")).decode("ascii")


def _xmlsec_private_key(key: PrivateKeyTypes) -> xmlsec.Key:
    try:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    except (xmlsec.Error, ValueError, TypeError, AttributeError):
        raise ConfigError("the signing key cannot be used by xmlsec (RSA or EC keys only)") from None


# --- verification --------------------------------------------------------------------------------------


def verify_envelope(
    envelope: bytes | etree._Element,
    attachments: Sequence[MimePart],
    *,
    certificate_der: bytes,
    allowed_signature_algorithms: Collection[str],
    allowed_digest_algorithms: Collection[str],
    expected_digest: str | None,
    expected_signature: str | None,
    allow_sha1: bool = False,
    at: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> VerifiedSignature:
    """Verify the signature of a received envelope; raise ``EbmsError(SecurityFailure)`` if bad.

    ``attachments`` are the payload parts as processed (decrypted first, ebMS 2.0 §4.1.3);
    ``certificate_der`` is the sender's CPA SigningCertificateRef certificate; ``expected_*`` are the
    CPA's HashFunction and SignatureAlgorithm (None: the CPA names none, the allowed sets decide);
    ``allow_sha1`` is the legacy switch without which SHA-1 is refused even when allowed. With
    ``at`` (the message Timestamp) the certificate must be valid at that moment (ebMS 2.0 §4.1.3).
    ``envelope`` is the received bytes, or the root the receiver parsed them into already (one parse
    per request, and what is verified is the very tree the message was read from); the tree is
    only read, never changed.
    """
    root = envelope if isinstance(envelope, etree._Element) else _parse_received(envelope, max_bytes)
    header = _soap_header(root)
    signature = _the_signature(root, header)
    _check_processed_blocks(root)
    signed_info = _child(signature, "SignedInfo", _SIGNATURE, "Signature has no SignedInfo.")
    _check_signature_children(signature)
    c14n, method, references = _signed_info_parts(signed_info)
    if _c14n_algorithm(c14n) is None:
        raise _security_failure(f"{_SIGNED_INFO}/CanonicalizationMethod", "Invalid CanonicalizationMethod.")
    signature_method = method.get("Algorithm", "")
    if not _algorithm_ok(
        signature_method, allowed_signature_algorithms, expected_signature, allow_sha1
    ) or len(method):
        raise _security_failure(f"{_SIGNED_INFO}/SignatureMethod", "Invalid SignatureMethod.")
    parts = _part_map_received(attachments)
    signed = tuple(
        _check_reference(r, parts, allowed_digest_algorithms, expected_digest, allow_sha1) for r in references
    )
    _check_coverage(signed, parts)
    _check_part_digests(signed, parts)
    key = _verification_key(certificate_der, at)
    if not _verified_without_xpath(root, signature, signed_info, signature_method, parts, key):
        _verify_with_libxmlsec(signature, signature_method, signed, parts, key)
    return VerifiedSignature(
        references=signed, signed_info_element=signed_info, signature_method=signature_method
    )


def _verify_with_libxmlsec(
    signature: etree._Element,
    signature_method: str,
    signed: Sequence[SignedReference],
    parts: Mapping[str, bytes],
    key: xmlsec.Key,
) -> None:
    """libxmlsec checks every Reference (the actor filter node by node) and SignedInfo."""
    context = xmlsec.SignatureContext()
    context.key = key
    _enable_transforms(
        context,
        signature_methods={signature_method},
        digests={r.digest_method for r in signed},
    )
    try:
        with xmlsec_io.serving(parts):
            context.verify(signature)
    except xmlsec.Error:
        raise _security_failure(_SIGNATURE, "Invalid Signature.") from None


def _verified_without_xpath(
    root: etree._Element,
    signature: etree._Element,
    signed_info: etree._Element,
    signature_method: str,
    parts: Mapping[str, bytes],
    key: xmlsec.Key,
) -> bool:
    """The fast check (docs/signing.md "Fast signature check"): True when the signature is verified,
    ``EbmsError`` when it is not, False when the signature is not in the exact shape this check
    covers, and libxmlsec must decide.

    Same verdict as libxmlsec: the ``URI=""`` digest is computed over the octets of
    ``actor_filter.envelope_octets`` (the argument is in that module), the ``cid:`` digests over the
    part bytes as ``xmlsec_io`` would serve them, and libxmlsec itself checks the SignatureValue
    against our C14N of SignedInfo with the key (XMLDSig §3.2.2).
    """
    plan = _fast_plan(signature, signed_info, signature_method, parts)
    if plan is None:
        return False
    envelope = actor_filter.envelope_octets(root, signature, exclusive=plan.envelope_exclusive)
    if envelope is None:
        return False
    for digest in plan.digests:
        data = envelope if digest.content_id is None else parts[digest.content_id]
        if hashlib.new(digest.hash_name, data).digest() != digest.expected:
            raise _security_failure(_SIGNATURE, "Invalid Signature.")
    canonical_signed_info = actor_filter.signed_info_octets(signed_info, exclusive=plan.signed_info_exclusive)
    context = xmlsec.SignatureContext()
    context.key = key
    try:
        context.verify_binary(canonical_signed_info, plan.signature_transform, plan.signature_value)
    except xmlsec.Error:
        raise _security_failure(_SIGNATURE, "Invalid Signature.") from None
    return True


class _FastDigest(NamedTuple):
    content_id: str | None  # None: the URI="" Reference
    hash_name: str
    expected: bytes


class _FastPlan(NamedTuple):
    signed_info_exclusive: bool
    envelope_exclusive: bool
    signature_transform: Any
    signature_value: bytes
    digests: tuple[_FastDigest, ...]


def _fast_plan(
    signature: etree._Element,
    signed_info: etree._Element,
    signature_method: str,
    parts: Mapping[str, bytes],
) -> _FastPlan | None:
    """What the fast check needs, or None for anything outside the one layout it covers.

    Runs after the shape checks of ``verify_envelope``, which already hold (one Signature in the
    Header, one ``URI=""`` Reference with the three ebMS transforms, every other Reference a
    ``cid:`` part without transforms, algorithms allowed). On top of those it asks for exactly what
    the equivalence argument covers, and says None (libxmlsec decides) otherwise: C14N without
    parameters (no InclusiveNamespaces PrefixList), the filter text in one of the spellings
    ``_FAST_ACTOR_FILTER`` matches with ``SOAP`` bound to the SOAP 1.1 namespace on the
    ds:XPath element and every ancestor, at most one KeyInfo, and digest and signature values
    in plain base64 (libxmlsec's decoder is more lenient than Python's; we leave odd encodings to it).
    """
    # _check_signature_children holds: SignedInfo, SignatureValue, then KeyInfo elements only.
    children = list(signature.iterchildren(tag=etree.Element))
    if len(children) > 3:
        return None  # a second KeyInfo: libxmlsec expects ds:Object there and refuses
    signature_transform = _xmlsec_transforms().get(signature_method)
    signature_value = _plain_b64(children[1])
    if signature_transform is None or signature_value is None:
        return None
    # _signed_info_parts holds: CanonicalizationMethod, SignatureMethod, then References.
    signed_info_c14n = _plain_c14n(next(signed_info.iterchildren(tag=etree.Element)))
    envelope_c14n: str | None = None
    digests: list[_FastDigest] = []
    for reference in signed_info.iterchildren(_ds("Reference")):
        uri = reference.get("URI", "")
        children = list(reference.iterchildren(tag=etree.Element))
        hash_name = _HASHES.get(children[-2].get("Algorithm", ""))
        expected = _plain_b64(children[-1])
        if hash_name is None or expected is None:
            return None
        if uri == "":
            envelope_c14n = _plain_envelope_transforms(children[0])
            if envelope_c14n is None:
                return None
            digests.append(_FastDigest(None, hash_name, expected))
        else:
            content_id = xmlsec_io.content_id_of(uri, parts)
            if content_id is None:
                return None
            digests.append(_FastDigest(content_id, hash_name, expected))
    if signed_info_c14n is None or envelope_c14n is None:
        return None
    return _FastPlan(
        signed_info_exclusive=signed_info_c14n == alg.C14N_EXCLUSIVE,
        envelope_exclusive=envelope_c14n == alg.C14N_EXCLUSIVE,
        signature_transform=signature_transform,
        signature_value=signature_value,
        digests=tuple(digests),
    )


def _plain_envelope_transforms(transforms: etree._Element) -> str | None:
    """The C14N URI of an ebMS ``URI=""`` Transforms in the fast check's exact shape, else None."""
    steps = list(transforms.iterchildren(tag=etree.Element))
    xpaths = list(steps[1].iterchildren(tag=etree.Element))
    if len(xpaths) != 1 or len(xpaths[0]) or not _FAST_ACTOR_FILTER.fullmatch(xpaths[0].text or ""):
        return None
    # libxmlsec binds the expression's prefixes from ds:XPath outwards, the innermost declaration
    # winning; demanding one binding of SOAP on the whole ancestor chain makes the order moot.
    node: etree._Element | None = xpaths[0]
    while node is not None:
        if node.nsmap.get("SOAP", SOAP_ENV) != SOAP_ENV:
            return None
        node = node.getparent()
    return _plain_c14n(steps[2])


def _plain_c14n(method: etree._Element) -> str | None:
    """Inclusive or exclusive C14N 1.0 without comments and without parameters, else None."""
    uri = method.get("Algorithm", "")
    if uri not in alg.ACCEPTED_C14N or next(method.iterchildren(tag=etree.Element), None) is not None:
        return None
    return uri


def _plain_b64(element: etree._Element) -> bytes | None:
    """The bytes of a ds:DigestValue or ds:SignatureValue in canonical base64 (XML whitespace
    allowed between characters), else None."""
    if len(element):
        return None
    compact = _XML_WHITESPACE.sub("", element.text or "")
    if not _BASE64.fullmatch(compact):
        return None
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw and base64.b64encode(raw).decode("ascii") == compact else None


def _parse_received(envelope: bytes, max_bytes: int) -> etree._Element:
    try:
        return parse(envelope, max_bytes=max_bytes, what="SOAP envelope")
    except XmlError:
        raise _security_failure(_SIGNATURE, "Signature not found.") from None


def _soap_header(root: etree._Element) -> etree._Element | None:
    if root.tag != _soap("Envelope"):
        return None
    first = next(root.iterchildren(tag=etree.Element), None)
    return first if first is not None and first.tag == _soap("Header") else None


def _the_signature(root: etree._Element, header: etree._Element | None) -> etree._Element:
    """The one ds:Signature, which must be a child of the envelope's SOAP Header (OASIS §4.1.3)."""
    signatures = list(root.iter(_ds("Signature")))
    if not signatures:
        raise _security_failure(_SIGNATURE, "Signature not found.")
    if len(signatures) > 1:
        # KVS5: one ds:Signature; a second one is where a wrapping attack hides its payload.
        raise _security_failure(_SIGNATURE, "More than one Signature.")
    signature = signatures[0]
    if header is None or signature.getparent() is not header:
        raise _security_failure(_SIGNATURE, "Signature is not in the SOAP Header.")
    return signature


def _check_processed_blocks(root: etree._Element) -> None:
    """What is processed is what was verified: one of each ebMS block, in place and signed.

    ``parse_envelope`` reads the blocks that are children of Header and Body; a second
    MessageHeader elsewhere (a wrapper element, the Body) or one the actor filter leaves out of the
    signed node set would let the processed header differ from the signed one.
    """
    for local, container in _PROCESSED_BLOCKS:
        location = f"//{container}/{local}"
        found = list(root.iter(f"{{{EB}}}{local}"))
        if len(found) > 1:
            raise _security_failure(location, f"More than one {local}.")
        if not found:
            continue
        block = found[0]
        parent = block.getparent()
        if parent is None or parent.tag != _soap(container) or parent.getparent() is not root:
            raise _security_failure(location, f"{local} is not in the SOAP {container}.")
        if local not in _UNSIGNED_BY_DESIGN and _excluded_by_actor_filter(block):
            raise _security_failure(location, f"{local} is not covered by the Signature.")


def _excluded_by_actor_filter(element: etree._Element) -> bool:
    """Mirror of the ebMS XPath filter: an ancestor-or-self carries SOAP:actor nextMSH or next."""
    node: etree._Element | None = element
    while node is not None:
        if node.get(_ACTOR) in _EXCLUDING_ACTORS:
            return True
        node = node.getparent()
    return False


def _check_signature_children(signature: etree._Element) -> None:
    """SignedInfo, SignatureValue, KeyInfo?: no ds:Object (a ds:Manifest there is never checked)."""
    names = [child.tag for child in signature.iterchildren(tag=etree.Element)]
    if names[:2] != [_ds("SignedInfo"), _ds("SignatureValue")] or any(
        name != _ds("KeyInfo") for name in names[2:]
    ):
        raise _security_failure(_SIGNATURE, "Invalid Signature structure.")


def _signed_info_parts(
    signed_info: etree._Element,
) -> tuple[etree._Element, etree._Element, list[etree._Element]]:
    children = list(signed_info.iterchildren(tag=etree.Element))
    if (
        len(children) < 3
        or children[0].tag != _ds("CanonicalizationMethod")
        or children[1].tag != _ds("SignatureMethod")
        or any(child.tag != _ds("Reference") for child in children[2:])
    ):
        raise _security_failure(_SIGNED_INFO, "Invalid SignedInfo structure.")
    return children[0], children[1], children[2:]


def _c14n_algorithm(element: etree._Element) -> str | None:
    """The accepted C14N URI of a CanonicalizationMethod or Transform, or None (docs/signing.md "C14N")."""
    uri = element.get("Algorithm", "")
    if uri not in alg.ACCEPTED_C14N:
        return None
    children = list(element.iterchildren(tag=etree.Element))
    if not children:
        return uri
    # Exclusive C14N may name an InclusiveNamespaces PrefixList; nothing else has parameters.
    if (
        uri == alg.C14N_EXCLUSIVE
        and len(children) == 1
        and children[0].tag == f"{{{_EXC_C14N_NS}}}InclusiveNamespaces"
    ):
        return uri
    return None


def _algorithm_ok(uri: str, allowed: Collection[str], expected: str | None, allow_sha1: bool) -> bool:
    if expected is not None and uri != expected.strip():
        return False  # ebMS 2.0 §4.1.3: algorithm differs from the CPA's
    if alg.is_sha1(uri) and not allow_sha1:
        return False  # SIGN001, docs/signing.md: SHA-1 only behind the legacy switch
    return uri in allowed


def _check_reference(
    reference: etree._Element,
    parts: Mapping[str, bytes],
    allowed_digests: Collection[str],
    expected_digest: str | None,
    allow_sha1: bool,
) -> SignedReference:
    uri = reference.get("URI")
    location = (
        f"{_SIGNED_INFO}/Reference" if uri is None else f"{_SIGNED_INFO}/Reference[@URI={_literal(uri)}]"
    )
    if uri is None or (uri != "" and xmlsec_io.content_id_of(uri, parts) is None):
        if uri is not None and uri[:4].lower() == "cid:":
            raise _security_failure(uri, "Signature references a MIME part that is not in the message.")
        # file:, http:, "#id" and anything else: only this message's envelope and parts are signed.
        raise _security_failure(location, "Invalid Reference URI.")
    children = list(reference.iterchildren(tag=etree.Element))
    transforms = children[0] if children and children[0].tag == _ds("Transforms") else None
    rest = children[1:] if transforms is not None else children
    if len(rest) != 2 or rest[0].tag != _ds("DigestMethod") or rest[1].tag != _ds("DigestValue"):
        raise _security_failure(location, "Invalid Reference structure.")
    if uri == "":
        _check_envelope_transforms(transforms, location)
    elif transforms is not None:
        raise _security_failure(location, "Invalid Transforms.")  # ebMS 2.0 §4.1.3: cid: parts have none
    digest_method = rest[0].get("Algorithm", "")
    if not _algorithm_ok(digest_method, allowed_digests, expected_digest, allow_sha1) or len(rest[0]):
        raise _security_failure(f"{location}/DigestMethod", "Invalid DigestMethod.")
    return SignedReference(uri, digest_method, (rest[1].text or "").strip())


def _check_envelope_transforms(transforms: etree._Element | None, location: str) -> None:
    """ebMS 2.0 §4.1.3: enveloped-signature, the ebMS actor filter, C14N; exactly these, in this order."""
    where = f"{location}/Transforms"
    steps = list(transforms.iterchildren(tag=etree.Element)) if transforms is not None else []
    if (
        len(steps) != 3
        or any(step.tag != _ds("Transform") for step in steps)
        or steps[0].get("Algorithm") != alg.ENVELOPED_SIGNATURE
        or len(steps[0])
        or steps[1].get("Algorithm") != alg.XPATH_FILTER
        or not _is_actor_filter(steps[1])
        or _c14n_algorithm(steps[2]) is None
    ):
        raise _security_failure(where, "Invalid Transforms.")


def _is_actor_filter(transform: etree._Element) -> bool:
    children = list(transform.iterchildren(tag=etree.Element))
    if len(children) != 1 or children[0].tag != _ds("XPath"):
        return False
    xpath = children[0]
    # The prefix in the expression must mean the SOAP 1.1 envelope namespace, or the filter
    # would test another attribute and leave nextMSH-targeted blocks in (or ours out).
    if xpath.nsmap.get("SOAP") != SOAP_ENV:
        return False
    return _normalised_xpath(xpath.text or "") == _NORMALISED_ACTOR_FILTER


def _normalised_xpath(expression: str) -> str:
    """Whitespace around XPath punctuation dropped, other runs collapsed, one quote style.

    The literals of the filter contain neither whitespace nor quotes, so this never merges two
    different expressions into one.
    """
    text = _AROUND_PUNCTUATION.sub(r"\1", expression.strip())
    return _WHITESPACE.sub(" ", text).replace("'", '"')


_NORMALISED_ACTOR_FILTER: Final = _normalised_xpath(alg.EBMS_ACTOR_FILTER)


def _check_coverage(references: Sequence[SignedReference], parts: Mapping[str, bytes]) -> None:
    """One URI="" Reference; every payload part covered by exactly one cid: Reference."""
    envelope_refs = [r for r in references if r.uri == ""]
    if len(envelope_refs) != 1:
        raise _security_failure(
            f"{_SIGNED_INFO}/Reference[@URI='']", "Signature must cover the envelope once."
        )
    covered: dict[str, int] = {}
    for reference in references:
        if reference.uri:
            content_id = xmlsec_io.content_id_of(reference.uri, parts)
            if content_id is not None:
                covered[content_id] = covered.get(content_id, 0) + 1
    for content_id in parts:
        count = covered.get(content_id, 0)
        if count == 0:
            raise _security_failure(f"cid:{content_id}", "MIME part is not covered by the Signature.")
        if count > 1:
            raise _security_failure(f"cid:{content_id}", "MIME part is referenced more than once.")


def _check_part_digests(references: Sequence[SignedReference], parts: Mapping[str, bytes]) -> None:
    """Compare each part's digest ourselves first, so the error names the part that changed."""
    for reference in references:
        content_id = xmlsec_io.content_id_of(reference.uri, parts) if reference.uri else None
        if content_id is None:
            continue
        actual = hashlib.new(_HASHES[reference.digest_method], parts[content_id]).digest()
        if _b64(reference.digest_value) != actual:
            raise _security_failure(f"cid:{content_id}", "Digest of the MIME part does not match.")


def _verification_key(certificate_der: bytes, at: datetime | None) -> xmlsec.Key:
    """The public key of the CPA's signing certificate, valid at the message Timestamp (ebMS 2.0 §4.1.3)."""
    loaded = _loaded_certificate(certificate_der)
    if loaded is None:
        raise _security_failure(_SIGNATURE, "Signing certificate of the CPA cannot be used.")
    key, not_before, not_after = loaded
    if at is not None and not not_before <= at.astimezone(UTC) <= not_after:
        raise _security_failure(_SIGNATURE, "Signing certificate is not valid at the message Timestamp.")
    return key


@lru_cache(maxsize=64)
def _loaded_certificate(certificate_der: bytes) -> tuple[xmlsec.Key, datetime, datetime] | None:
    """The xmlsec key and validity period of a CPA signing certificate, or None if unusable.

    Cached by the certificate's bytes: a partner's certificate is the same for every message, and
    loading it twice per message was a tenth of a verification. Sharing the Key is safe: a
    SignatureContext takes a duplicate of it (python-xmlsec ``SignatureContext.key``).
    """
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
        key = xmlsec.Key.from_memory(certificate_der, xmlsec.constants.KeyDataFormatCertDer)
    except (ValueError, xmlsec.Error):
        return None
    return key, certificate.not_valid_before_utc, certificate.not_valid_after_utc


# --- signed acknowledgements (ebMS 2.0 §6.3, KVS ch. 5)
# -------------------------------------------------------


def ack_references(verified: VerifiedSignature) -> list[etree._Element]:
    """Detached copies of the verified ds:Reference elements, to echo in eb:Acknowledgment."""
    return [copy.deepcopy(r) for r in verified.signed_info_element.iterchildren(_ds("Reference"))]


def signed_references(envelope: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[SignedReference, ...]:
    """The References of the ds:Signature in an envelope we signed (what a signed Ack must echo)."""
    root = parse(envelope, max_bytes=max_bytes, what="signed SOAP envelope")
    signed_info = root.find(f"{{{SOAP_ENV}}}Header/{_ds('Signature')}/{_ds('SignedInfo')}")
    if signed_info is None:
        raise XmlError("the envelope has no ds:Signature in its SOAP Header")
    result = []
    for reference in signed_info.iterchildren(_ds("Reference")):
        method = reference.find(_ds("DigestMethod"))
        value = reference.find(_ds("DigestValue"))
        result.append(
            SignedReference(
                reference.get("URI", ""),
                method.get("Algorithm", "") if method is not None else "",
                (value.text or "").strip() if value is not None else "",
            )
        )
    return tuple(result)


def check_ack_references(ack: Acknowledgment, sent_references: Sequence[SignedReference]) -> None:
    """A signed Ack must echo exactly the References we signed: URI and DigestValue (ebMS 2.0 §6.3).

    Compared as multisets of (URI, decoded digest), so base64 line breaks and order do not matter.
    Raises ``EbmsError(SecurityFailure)``; the sender then ignores the Ack and keeps retrying.
    """
    location = "//Header/Acknowledgment/Reference"
    if not ack.references:
        raise _security_failure(location, "Acknowledgment echoes no Reference.")
    received = sorted((r.uri or "", _b64(r.digest_value or "")) for r in ack.references)
    sent = sorted((r.uri, _b64(r.digest_value)) for r in sent_references)
    if received != sent:
        raise _security_failure(location, "Acknowledgment References do not match the signed message.")


# --- shared helpers ------------------------------------------------------------------------------------


def _part_map(attachments: Sequence[MimePart]) -> dict[str, bytes]:
    parts: dict[str, bytes] = {}
    for part in attachments:
        if not part.content_id:
            raise MimeError("a payload part without Content-ID cannot be signed (cid: Reference)")
        if part.content_id in parts:
            raise MimeError(f"duplicate Content-ID <{part.content_id}>")
        parts[part.content_id] = part.materialized().data  # a spooled part is read whole here
    return parts


def _part_map_received(attachments: Sequence[MimePart]) -> dict[str, bytes]:
    try:
        return _part_map(attachments)
    except MimeError:
        raise _security_failure(
            _SIGNATURE, "MIME part without a unique Content-ID cannot be verified."
        ) from None


def _enable_transforms(
    context: xmlsec.SignatureContext, *, signature_methods: Collection[str], digests: Collection[str]
) -> None:
    """Allow xmlsec exactly the transforms of our layout; XSLT, XPointer and the rest stay off."""
    known = _xmlsec_transforms()
    c14n = [xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformExclC14N]
    reference_steps = [xmlsec.constants.TransformEnveloped, xmlsec.constants.TransformXPath, *c14n]
    for uri in digests:
        if uri in known:
            reference_steps.append(known[uri])
    for step in reference_steps:
        context.enable_reference_transform(step)
    for step in c14n:
        context.enable_signature_transform(step)
    for uri in signature_methods:
        if uri in known:
            context.enable_signature_transform(known[uri])


@cache
def _xmlsec_transforms() -> Mapping[str, Any]:
    """xmlsec's transform classes by algorithm URI (the stubs do not export the class type).

    Computed once: the table is fixed for the process, and walking ``xmlsec.constants`` cost a
    fifth of a fast verification.
    """
    found: dict[str, Any] = {}
    for name in dir(xmlsec.constants):
        value = getattr(xmlsec.constants, name)
        href = getattr(value, "href", None) if name.startswith("Transform") else None
        if isinstance(href, str) and href:
            found.setdefault(href, value)
    return found


def _xmlsec_reason(exc: xmlsec.Error) -> str:
    args = exc.args
    return str(args[-1]) if args else type(exc).__name__


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _child(parent: etree._Element, local: str, location: str, description: str) -> etree._Element:
    found = parent.find(_ds(local))
    if found is None:
        raise _security_failure(location, description)
    return found


def _literal(value: str) -> str:
    """An XPath 1.0 string literal for ``value`` (for error locations)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return "concat('" + "', \"'\", '".join(value.split("'")) + "')"
