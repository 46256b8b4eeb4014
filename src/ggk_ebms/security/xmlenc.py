"""Encrypt and decrypt ebMS payload parts with XML Encryption
(ebMS 2.0 §4.1.4, XML Encryption 1.0; docs/signing.md; ENC001-004).

Layout (the reference adapter's, ebMS 2.0 §4.1.4, XML Encryption 1.0): only payload parts are encrypted. Each
keeps its Content-ID and becomes ``application/xml`` holding one ``xenc:EncryptedData`` with ``Id`` = the
Content-ID, ``MimeType`` = the original Content-Type, ``Type`` = ``…xmlenc#Element``, the data
cipher in ``EncryptionMethod`` and, in ``ds:KeyInfo``, one ``xenc:EncryptedKey`` that carries the
session key wrapped for the recipient's CPA ``EncryptionCertificateRef`` certificate, named by
``ds:KeyName`` = that certificate's subject DN. Despite ``Type`` the ciphertext is the part's raw
bytes, so decryption always yields bytes and never splices XML into anything.

Sign, then encrypt (ebMS 2.0 §4.1.3): the signature's cid: digests are over the plaintext, so the receiver
decrypts every part first and verifies afterwards.

Decryption is strict before it is cryptographic: the part must be one EncryptedData with one
EncryptedKey, ciphertext inline (a ``CipherReference`` would make us fetch a URI), and every
algorithm admitted by the channel's policy (``security.algorithms.encryption_policy``): GCM
always, AES-CBC only when the CPA names it, RSA v1.5 and 3DES only behind the legacy switch. Every
failure is ``EbmsError(SecurityFailure, "cid:<id>")``; cryptographic failures (wrong key,
truncated ciphertext, altered GCM tag, bad padding) all read "Decryption failed.", so the answer
tells an attacker nothing about which step failed (docs/signing.md "uniform errors").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from ggk_ebms.errors import ConfigError, EbmsError, ErrorCode, MimeError, XmlError
from ggk_ebms.mime.related import MimePart, parse_content_type
from ggk_ebms.ns import DS, XENC, XENC11
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security import xmlsec_io
from ggk_ebms.xml import DEFAULT_MAX_BYTES, parse

__all__ = [
    "ENCRYPTED_PART_CONTENT_TYPE",
    "Decryption",
    "admit_decryption",
    "decrypt_part",
    "encrypt_part",
    "is_encrypted_part",
    "not_encrypted",
    "try_decrypt_part",
]

ENCRYPTED_PART_CONTENT_TYPE: Final = "application/xml"
_FALLBACK_MIME_TYPE: Final = "application/octet-stream"

# Session key sizes in bits (ENC003); 3DES only ever decrypted.
_CIPHER_KEY_BITS: Final = {
    alg.AES128_GCM: 128,
    alg.AES256_GCM: 256,
    alg.AES128_CBC: 128,
    alg.AES256_CBC: 256,
    alg.TRIPLEDES_CBC: 192,
}
# Parameters RSA-OAEP may carry (xmlenc §5.4.2, xmlenc11 §5.5.2): digest and mask generation.
_OAEP_DIGESTS: Final = frozenset({alg.SHA1, alg.SHA256, alg.SHA384, alg.SHA512})
_MGF1: Final = frozenset(f"{XENC11}mgf1sha{bits}" for bits in (1, 224, 256, 384, 512))
# xmlenc11#rsa-oaep written with SHA-256 for both the OAEP digest and MGF1 (no SHA-1 left to argue about).
_OAEP11_DIGEST: Final = alg.SHA256
_OAEP11_MGF: Final = f"{XENC11}mgf1sha256"


def _xenc(local: str) -> str:
    return f"{{{XENC}}}{local}"


def _ds(local: str) -> str:
    return f"{{{DS}}}{local}"


def _failure(location: str, description: str) -> EbmsError:
    return EbmsError(ErrorCode.SECURITY_FAILURE, location, description)


# --- encryption ---------------------------------------------------------------------------------------


def encrypt_part(
    part: MimePart,
    *,
    recipient_certificate_der: bytes,
    data_algorithm: str = alg.AES256_GCM,
    key_transport: str = alg.RSA_OAEP_MGF1P,
    legacy: bool = False,
) -> MimePart:
    """``part`` as an ``application/xml`` part holding its EncryptedData (ebMS 2.0 §4.1.4, XML Encryption
    1.0).

    ``data_algorithm`` is the CPA's EncryptionAlgorithm (AES-GCM by default; AES-CBC when the CPA
    names it); ``key_transport`` is RSA-OAEP in either spelling, or RSA v1.5 with ``legacy``.
    Raises ConfigError for an algorithm we do not write or a certificate without an RSA key, and
    MimeError for a part without Content-ID or an empty part under AES-GCM.
    """
    if not part.content_id:
        raise MimeError("a payload part without Content-ID cannot be encrypted")
    if data_algorithm not in alg.WRITABLE_CIPHERS:
        raise ConfigError(f"data encryption algorithm {data_algorithm} is not one we write (ENC003)")
    if key_transport not in alg.OAEP_KEY_TRANSPORTS and not (legacy and key_transport == alg.RSA_1_5):
        raise ConfigError(f"key transport {key_transport} is not allowed (ENC004; RSA v1.5 needs legacy)")
    if not part.data and data_algorithm in (alg.AES128_GCM, alg.AES256_GCM):
        # libxmlsec's GCM refuses empty input; an empty payload part carries nothing to protect
        # and no message type of ours has one, so it is refused instead of sent unencrypted.
        raise MimeError(f"payload part <{part.content_id}> is empty; AES-GCM encryption needs content")
    recipient = _recipient_key(recipient_certificate_der)
    template = _template(part, data_algorithm, key_transport, recipient.name)
    manager = xmlsec.KeysManager()
    manager.add_key(recipient)
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes, _CIPHER_KEY_BITS[data_algorithm], xmlsec.constants.KeyDataTypeSession
    )
    xmlsec_io.install()  # no default resolvers, even though encryption reads no URI
    try:
        encrypted = context.encrypt_binary(template, part.data)
    except xmlsec.Error:
        raise ConfigError("encryption failed; check the recipient's encryption certificate") from None
    data = etree.tostring(encrypted, encoding="UTF-8", xml_declaration=True)
    headers = {"content-id": f"<{part.content_id}>", "content-type": ENCRYPTED_PART_CONTENT_TYPE}
    return MimePart(part.content_id, ENCRYPTED_PART_CONTENT_TYPE, data, headers)


def _recipient_key(certificate_der: bytes) -> xmlsec.Key:
    """The recipient's public key, named by its subject DN (written as ds:KeyName)."""
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        raise ConfigError("the encryption certificate of the CPA cannot be read") from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ConfigError("the encryption certificate of the CPA has no RSA key (ENC004: RSA-OAEP)")
    try:
        key = xmlsec.Key.from_memory(certificate_der, xmlsec.constants.KeyDataFormatCertDer)
    except xmlsec.Error:
        raise ConfigError("the encryption certificate of the CPA cannot be used by xmlsec") from None
    key.name = certificate.subject.rfc4514_string()
    return key


def _template(part: MimePart, data_algorithm: str, key_transport: str, key_name: str) -> etree._Element:
    encrypted = etree.Element(
        _xenc("EncryptedData"),
        nsmap={"xenc": XENC, "ds": DS},
        Id=part.content_id or "",
        MimeType=part.content_type,
        Type=alg.ENCRYPTED_ELEMENT_TYPE,
    )
    etree.SubElement(encrypted, _xenc("EncryptionMethod"), Algorithm=data_algorithm)
    key_info = etree.SubElement(encrypted, _ds("KeyInfo"))
    encrypted_key = etree.SubElement(key_info, _xenc("EncryptedKey"))
    method = etree.SubElement(encrypted_key, _xenc("EncryptionMethod"), Algorithm=key_transport)
    if key_transport == alg.RSA_OAEP:
        etree.SubElement(method, _ds("DigestMethod"), Algorithm=_OAEP11_DIGEST)
        etree.SubElement(method, f"{{{XENC11}}}MGF", nsmap={"xenc11": XENC11}, Algorithm=_OAEP11_MGF)
    recipient_info = etree.SubElement(encrypted_key, _ds("KeyInfo"))
    etree.SubElement(recipient_info, _ds("KeyName")).text = key_name
    etree.SubElement(etree.SubElement(encrypted_key, _xenc("CipherData")), _xenc("CipherValue"))
    etree.SubElement(etree.SubElement(encrypted, _xenc("CipherData")), _xenc("CipherValue"))
    return encrypted


# --- decryption ---------------------------------------------------------------------------------------


def is_encrypted_part(part: MimePart, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bool:
    """True when ``part`` holds an xenc:EncryptedData (e.g. to refuse one on a channel without -e)."""
    if b"EncryptedData" not in part.head(4096):  # a sniff: no copy of a large spooled part
        return False
    try:
        data = part.materialized().data  # only a part that looks encrypted is read whole
        return parse(data, max_bytes=max_bytes, what="MIME part").tag == _xenc("EncryptedData")
    except XmlError:
        return False


def decrypt_part(
    part: MimePart,
    *,
    key: PrivateKeyTypes,
    allowed_algorithms: Collection[str],
    legacy: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MimePart:
    """The plaintext of an encrypted payload part, with its original Content-Type (ebMS 2.0 §4.1.4, XML
    Encryption 1.0).

    ``key`` is our private key (the one matching our CPA EncryptionCertificateRef);
    ``allowed_algorithms`` holds the admitted data ciphers and key transports, ``legacy`` the
    switch without which RSA v1.5 and 3DES are refused even when listed (both from
    ``encryption_policy``). Raises ``EbmsError(SecurityFailure)`` at ``cid:<id>``; a MimeType that
    is not a media type raises ``EbmsError(MimeProblem)`` there.
    """
    attempt = try_decrypt_part(
        part, key=key, allowed_algorithms=allowed_algorithms, legacy=legacy, max_bytes=max_bytes
    )
    return admit_decryption(attempt, allowed_algorithms=allowed_algorithms, legacy=legacy)


@dataclass(frozen=True)
class Decryption:
    """One attempt to decrypt a part, kept so that the plaintext is computed once per request.

    ``part`` is the plaintext when ``error`` is None, else the part as it came. ``data_algorithm``
    and ``key_transport`` are the URIs the EncryptedData names (None when its shape was refused
    before they were read), so ``admit_decryption`` can judge the same attempt again under a
    stricter policy without decrypting twice.
    """

    part: MimePart
    data_algorithm: str | None
    key_transport: str | None
    error: EbmsError | None


def try_decrypt_part(
    part: MimePart,
    *,
    key: PrivateKeyTypes,
    allowed_algorithms: Collection[str],
    legacy: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Decryption:
    """``decrypt_part`` that returns its refusal instead of raising it (see ``Decryption``)."""
    location = _location(part)
    data_algorithm: str | None = None
    key_transport: str | None = None
    try:
        encrypted = _encrypted_data(part, location, max_bytes)
        data_method, encrypted_key = _check_shape(encrypted, location)
        data_algorithm = data_method.get("Algorithm", "")
        key_transport = encrypted_key[0].get("Algorithm", "")
        if not alg.algorithm_admitted(data_algorithm, allowed_algorithms, legacy=legacy):
            raise _failure(location, "Encryption algorithm not allowed.")
        _check_key_transport(encrypted_key, location, allowed_algorithms, legacy)
        plain = _decrypt(part, encrypted, encrypted_key, data_algorithm, key, location)
    except EbmsError as exc:
        return Decryption(part, data_algorithm, key_transport, exc)
    return Decryption(plain, data_algorithm, key_transport, None)


def admit_decryption(
    attempt: Decryption, *, allowed_algorithms: Collection[str], legacy: bool = False
) -> MimePart:
    """The plaintext of ``attempt`` if ``decrypt_part`` under this policy would have returned it;
    else the ``EbmsError`` it would have raised, checked in the same order (shape, data cipher,
    key transport, then what the attempt itself ran into)."""
    location = _location(attempt.part)
    if attempt.data_algorithm is None or attempt.key_transport is None:
        assert attempt.error is not None
        raise attempt.error
    if not alg.algorithm_admitted(attempt.data_algorithm, allowed_algorithms, legacy=legacy):
        raise _failure(location, "Encryption algorithm not allowed.")
    if attempt.key_transport not in alg.OAEP_KEY_TRANSPORTS | {alg.RSA_1_5} or not alg.algorithm_admitted(
        attempt.key_transport, allowed_algorithms, legacy=legacy
    ):
        raise _failure(location, "Key transport algorithm not allowed.")
    if attempt.error is not None:
        raise attempt.error
    return attempt.part


def not_encrypted(part: MimePart) -> EbmsError:
    """The refusal of a part that should be encrypted and is not (what ``decrypt_part`` raises)."""
    return _failure(_location(part), "MIME part is not encrypted.")


def _location(part: MimePart) -> str:
    return f"cid:{part.content_id}" if part.content_id else "//Body/Manifest"


def _decrypt(
    part: MimePart,
    encrypted: etree._Element,
    encrypted_key: etree._Element,
    data_algorithm: str,
    key: PrivateKeyTypes,
    location: str,
) -> MimePart:
    # ebMS 2.0 §4.1.4, XML Encryption 1.0: the content is the raw part even though Type says Element; without
    # Type xmlsec hands back bytes instead of parsing the plaintext into the tree.
    encrypted.attrib.pop("Type", "")
    private_key = _xmlsec_private_key(key)
    xmlsec_io.install()
    try:
        unwrap = xmlsec.EncryptionContext()
        unwrap.key = private_key
        session_key = unwrap.decrypt(encrypted_key)
        if not isinstance(session_key, bytes) or len(session_key) * 8 != _CIPHER_KEY_BITS[data_algorithm]:
            raise _failure(location, "Decryption failed.")
        klass = (
            xmlsec.constants.KeyDataDes
            if data_algorithm == alg.TRIPLEDES_CBC
            else xmlsec.constants.KeyDataAes
        )
        decrypt = xmlsec.EncryptionContext()
        decrypt.key = xmlsec.Key.from_binary_data(klass, session_key)
        plaintext = decrypt.decrypt(encrypted)
    except xmlsec.Error:
        raise _failure(location, "Decryption failed.") from None
    if not isinstance(plaintext, bytes):
        raise _failure(location, "Decryption failed.")
    content_type = _mime_type(encrypted, location)
    headers = dict(part.headers)
    headers["content-type"] = content_type
    return MimePart(part.content_id, content_type, plaintext, headers)


def _encrypted_data(part: MimePart, location: str, max_bytes: int) -> etree._Element:
    try:
        root = parse(part.materialized().data, max_bytes=max_bytes, what="encrypted MIME part")
    except XmlError:
        raise _failure(location, "MIME part is not encrypted.") from None
    if root.tag != _xenc("EncryptedData"):
        raise _failure(location, "MIME part is not encrypted.")
    return root


def _check_shape(encrypted: etree._Element, location: str) -> tuple[etree._Element, etree._Element]:
    """EncryptionMethod, ds:KeyInfo holding one EncryptedKey, inline CipherValue (xmlenc §3.1)."""
    children = list(encrypted.iterchildren(tag=etree.Element))
    names = [child.tag for child in children]
    if names != [_xenc("EncryptionMethod"), _ds("KeyInfo"), _xenc("CipherData")] or len(children[0]):
        raise _failure(location, "Invalid EncryptedData.")
    key_info = list(children[1].iterchildren(tag=etree.Element))
    if len(key_info) != 1 or key_info[0].tag != _xenc("EncryptedKey"):
        raise _failure(location, "Invalid EncryptedData.")
    _inline_cipher_value(children[2], location)
    encrypted_key = key_info[0]
    key_parts = list(encrypted_key.iterchildren(tag=etree.Element))
    if not key_parts or key_parts[0].tag != _xenc("EncryptionMethod"):
        raise _failure(location, "Invalid EncryptedKey.")
    cipher_data = [c for c in key_parts if c.tag == _xenc("CipherData")]
    allowed = {_xenc("EncryptionMethod"), _ds("KeyInfo"), _xenc("CipherData"), _xenc("CarriedKeyName")}
    if len(cipher_data) != 1 or any(c.tag not in allowed for c in key_parts):
        raise _failure(location, "Invalid EncryptedKey.")
    _inline_cipher_value(cipher_data[0], location)
    return children[0], encrypted_key


def _inline_cipher_value(cipher_data: etree._Element, location: str) -> None:
    """Only CipherValue: a CipherReference names a URI we will not fetch."""
    values = list(cipher_data.iterchildren(tag=etree.Element))
    if len(values) != 1 or values[0].tag != _xenc("CipherValue"):
        raise _failure(location, "Invalid CipherData.")


def _check_key_transport(
    encrypted_key: etree._Element, location: str, allowed: Collection[str], legacy: bool
) -> None:
    """ENC004: RSA-OAEP (v1.5 behind the legacy switch), with only the OAEP parameters xmlenc knows."""
    method = encrypted_key[0]
    uri = method.get("Algorithm", "")
    if uri not in alg.OAEP_KEY_TRANSPORTS | {alg.RSA_1_5} or not alg.algorithm_admitted(
        uri, allowed, legacy=legacy
    ):
        raise _failure(location, "Key transport algorithm not allowed.")
    for parameter in method.iterchildren(tag=etree.Element):
        value = parameter.get("Algorithm", "")
        oaep_parameter = (
            (parameter.tag == _ds("DigestMethod") and value in _OAEP_DIGESTS)
            or (parameter.tag == f"{{{XENC11}}}MGF" and uri == alg.RSA_OAEP and value in _MGF1)
            or parameter.tag == _xenc("OAEPparams")
        )
        if uri == alg.RSA_1_5 or not oaep_parameter:  # RSA v1.5 takes no parameters at all
            raise _failure(location, "Key transport algorithm not allowed.")


def _mime_type(encrypted: etree._Element, location: str) -> str:
    value = encrypted.get("MimeType")
    if value is None or not value.strip():
        return _FALLBACK_MIME_TYPE
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise EbmsError(ErrorCode.MIME_PROBLEM, location, "Invalid MimeType.")
    try:
        parse_content_type(value)
    except MimeError:
        raise EbmsError(ErrorCode.MIME_PROBLEM, location, "Invalid MimeType.") from None
    return value.strip()


def _xmlsec_private_key(key: PrivateKeyTypes) -> xmlsec.Key:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("the decryption key must be an RSA key (ENC004: RSA key transport)")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    except xmlsec.Error:
        raise ConfigError("the decryption key cannot be used by xmlsec") from None
