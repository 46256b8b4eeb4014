"""XML Encryption of payload parts: round trips per algorithm, the layout, and every refusal.

Parts are encrypted to the RINIS dev client certificate (its encryption certificate in the dev
CPAs) and decrypted with its key, as in the -e profiles from
the gemeente to RINIS (ebMS 2.0 §4.1.4, XML Encryption 1.0).
"""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
import xmlsec
from cryptography import x509
from lxml import etree

from conftest import PROJECT_ROOT
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import ConfigError, EbmsError, ErrorCode, MimeError
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import DS, XENC
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security.xmlenc import (
    admit_decryption,
    decrypt_part,
    encrypt_part,
    is_encrypted_part,
    not_encrypted,
    try_decrypt_part,
)
from xmlsec_support import business_envelope, certificate_der, payload_parts, private_key, sign, verify

PART = MimePart(
    "payload-1@gemeente.example", "application/xml", b"<bericht>" + b"inhoud " * 500 + b"</bericht>"
)

# (data cipher, key transport, legacy switch needed)
ALGORITHMS = [
    (alg.AES128_GCM, alg.RSA_OAEP_MGF1P, False),
    (alg.AES256_GCM, alg.RSA_OAEP_MGF1P, False),
    (alg.AES256_GCM, alg.RSA_OAEP, False),
    (alg.AES128_CBC, alg.RSA_OAEP_MGF1P, False),  # accepted because the CPA names it
    (alg.AES256_CBC, alg.RSA_OAEP, False),
    (alg.AES256_GCM, alg.RSA_1_5, True),
    (alg.AES256_CBC, alg.RSA_1_5, True),
]


def _xenc(local: str) -> str:
    return f"{{{XENC}}}{local}"


def _encrypt(
    part: MimePart = PART, data: str = alg.AES256_GCM, transport: str = alg.RSA_OAEP_MGF1P
) -> MimePart:
    return encrypt_part(
        part,
        recipient_certificate_der=certificate_der("rinis"),
        data_algorithm=data,
        key_transport=transport,
        legacy=transport == alg.RSA_1_5,
    )


def _decrypt(
    part: MimePart, cpa_algorithm: str | None = None, *, legacy: bool = False, party: str = "rinis"
) -> MimePart:
    policy = alg.encryption_policy(cpa_algorithm, legacy=legacy)
    return decrypt_part(
        part, key=private_key(party), allowed_algorithms=policy.accepted, legacy=policy.legacy
    )


def _refusal(
    part: MimePart, cpa_algorithm: str | None = None, *, legacy: bool = False, party: str = "rinis"
) -> EbmsError:
    with pytest.raises(EbmsError) as caught:
        _decrypt(part, cpa_algorithm, legacy=legacy, party=party)
    return caught.value


@pytest.mark.parametrize(("data", "transport", "legacy"), ALGORITHMS)
def test_round_trip(data: str, transport: str, legacy: bool) -> None:
    encrypted = _encrypt(data=data, transport=transport)
    assert PART.data not in encrypted.data
    decrypted = _decrypt(encrypted, data, legacy=legacy)
    assert (decrypted.content_id, decrypted.content_type, decrypted.data) == (
        PART.content_id,
        PART.content_type,
        PART.data,
    )


def test_binary_and_empty_parts_survive() -> None:
    binary = MimePart("bin@x", "application/pdf", bytes(range(256)) * 40)
    assert _decrypt(_encrypt(binary)).data == binary.data
    empty = MimePart("empty@x", "text/plain", b"")
    assert _decrypt(_encrypt(empty, data=alg.AES256_CBC), alg.AES256_CBC).data == b""


def test_empty_part_under_gcm_is_refused_not_sent_in_clear() -> None:
    with pytest.raises(MimeError, match="empty"):
        _encrypt(MimePart("empty@x", "text/plain", b""))


def test_layout_follows_digest_7_5() -> None:
    encrypted = _encrypt()
    assert encrypted.content_id == PART.content_id
    assert encrypted.content_type == "application/xml"
    root = etree.fromstring(encrypted.data)
    assert root.tag == _xenc("EncryptedData")
    assert root.get("Id") == PART.content_id
    assert root.get("MimeType") == PART.content_type
    assert root.get("Type") == f"{XENC}Element"
    assert root.find(_xenc("EncryptionMethod")).get("Algorithm") == alg.AES256_GCM  # type: ignore[union-attr]
    encrypted_key = root.find(f"{{{DS}}}KeyInfo/{_xenc('EncryptedKey')}")
    assert encrypted_key is not None
    assert encrypted_key.find(_xenc("EncryptionMethod")).get("Algorithm") == alg.RSA_OAEP_MGF1P  # type: ignore[union-attr]
    subject = x509.load_der_x509_certificate(certificate_der("rinis")).subject.rfc4514_string()
    assert encrypted_key.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}KeyName") == subject
    assert is_encrypted_part(encrypted)
    assert not is_encrypted_part(PART)


def test_every_encryption_uses_a_fresh_key_and_iv() -> None:
    assert _encrypt().data != _encrypt().data


def test_wrong_key_is_refused() -> None:
    error = _refusal(_encrypt(), party="gemeente")
    assert (error.code, error.location, error.description) == (
        ErrorCode.SECURITY_FAILURE,
        f"cid:{PART.content_id}",
        "Decryption failed.",
    )


def _edit_cipher_value(part: MimePart, change: bytes | None = None, cut: int = 0) -> MimePart:
    root = etree.fromstring(part.data)
    value = root.find(f"{_xenc('CipherData')}/{_xenc('CipherValue')}")
    assert value is not None
    raw = bytearray(base64.b64decode("".join((value.text or "").split())))
    if cut:
        raw = raw[:-cut]
    if change is not None:
        raw[-1] ^= change[0]
    value.text = base64.b64encode(bytes(raw)).decode()
    return replace(part, data=etree.tostring(root))


@pytest.mark.parametrize("data", [alg.AES128_GCM, alg.AES256_GCM, alg.AES256_CBC])
def test_truncated_ciphertext_is_refused(data: str) -> None:
    error = _refusal(_edit_cipher_value(_encrypt(data=data), cut=20), data)
    assert error.description == "Decryption failed."


def test_gcm_tag_altered_is_refused() -> None:
    """The last 16 bytes of an xmlenc11 GCM CipherValue are the tag (xmlenc11 §5.2.4)."""
    error = _refusal(_edit_cipher_value(_encrypt(), change=b"\x01"))
    assert error.description == "Decryption failed."


def test_gcm_ciphertext_byte_altered_is_refused() -> None:
    encrypted = _encrypt()
    root = etree.fromstring(encrypted.data)
    value = root.find(f"{_xenc('CipherData')}/{_xenc('CipherValue')}")
    assert value is not None
    raw = bytearray(base64.b64decode("".join((value.text or "").split())))
    raw[20] ^= 0x80
    value.text = base64.b64encode(bytes(raw)).decode()
    assert _refusal(replace(encrypted, data=etree.tostring(root))).description == "Decryption failed."


@pytest.mark.parametrize(
    ("data", "transport", "cpa_algorithm", "legacy"),
    [
        (alg.AES256_CBC, alg.RSA_OAEP_MGF1P, None, False),  # CBC without the CPA naming it
        (alg.AES128_CBC, alg.RSA_OAEP_MGF1P, alg.AES256_CBC, False),  # another CBC than the CPA's
        (alg.AES256_GCM, alg.RSA_1_5, None, False),  # RSA v1.5 without the legacy switch
    ],
)
def test_algorithm_outside_the_policy_is_refused(
    data: str, transport: str, cpa_algorithm: str | None, legacy: bool
) -> None:
    error = _refusal(_encrypt(data=data, transport=transport), cpa_algorithm, legacy=legacy)
    assert error.code == ErrorCode.SECURITY_FAILURE
    assert error.description in {"Encryption algorithm not allowed.", "Key transport algorithm not allowed."}


def test_legacy_algorithms_need_the_switch_even_when_listed() -> None:
    encrypted = _encrypt(transport=alg.RSA_1_5)
    with pytest.raises(EbmsError, match="Key transport algorithm not allowed"):
        decrypt_part(encrypted, key=private_key("rinis"), allowed_algorithms={alg.AES256_GCM, alg.RSA_1_5})


def test_tripledes_is_decrypt_only() -> None:
    with pytest.raises(ConfigError, match="ENC003"):
        _encrypt(data=alg.TRIPLEDES_CBC)
    with pytest.raises(ConfigError, match="decrypt-only"):
        alg.encryption_policy(alg.TRIPLEDES_CBC)


def test_unencrypted_part_is_refused() -> None:
    for part in (PART, MimePart("p@x", "application/octet-stream", b"\x00\x01 not xml")):
        error = _refusal(part)
        assert (error.location, error.description) == (
            f"cid:{part.content_id}",
            "MIME part is not encrypted.",
        )


def _restructured(change: str) -> MimePart:
    root = etree.fromstring(_encrypt().data)
    cipher_data = root.find(_xenc("CipherData"))
    assert cipher_data is not None
    if change == "cipher-reference":
        for child in list(cipher_data):
            cipher_data.remove(child)
        etree.SubElement(cipher_data, _xenc("CipherReference"), URI="file:///etc/hostname")
    elif change == "two-keys":
        key_info = root.find(f"{{{DS}}}KeyInfo")
        assert key_info is not None
        key_info.append(etree.fromstring(etree.tostring(key_info[0])))
    elif change == "oaep-odd-digest":
        method = root.find(f".//{_xenc('EncryptedKey')}/{_xenc('EncryptionMethod')}")
        assert method is not None
        etree.SubElement(
            method, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmldsig-more#md5"
        )
    return MimePart(PART.content_id, "application/xml", etree.tostring(root))


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ("cipher-reference", "Invalid CipherData."),
        ("two-keys", "Invalid EncryptedData."),
        ("oaep-odd-digest", "Key transport algorithm not allowed."),
    ],
)
def test_unusual_structures_are_refused(change: str, description: str) -> None:
    assert _refusal(_restructured(change)).description == description


def test_invalid_mime_type_is_a_mime_problem() -> None:
    encrypted = _encrypt(replace(PART, content_type="no media type"))
    error = _refusal(encrypted)
    assert (error.code, error.description) == (ErrorCode.MIME_PROBLEM, "Invalid MimeType.")


def test_sign_then_encrypt_then_decrypt_then_verify() -> None:
    """ebMS 2.0 §4.1.3, §4.1.4, XML Encryption 1.0: the cid:
    digests are over the plaintext; decrypt before verifying."""
    parts = payload_parts(3)
    signed = sign(business_envelope(parts), parts)
    on_the_wire = [_encrypt(p) for p in parts]
    with pytest.raises(EbmsError, match="Digest of the MIME part"):
        verify(signed, on_the_wire)
    verify(signed, [_decrypt(p) for p in on_the_wire])


@pytest.mark.parametrize("profile", ["osb-be-e", "osb-rm-e"])
def test_dev_cpa_encryption_certificate(profile: str) -> None:
    """Encrypt to the receiver's EncryptionCertificateRef of the dev CPA, with its algorithm."""
    agreement = parse_agreement((PROJECT_ROOT / "cpa" / f"dev-{profile}.xml").read_bytes())
    gemeente = lookup.own_party(agreement, ["00000099000003630000"])
    binding = next(b for b in gemeente.bindings if b.direction == "send")
    route = lookup.sending_route(
        agreement,
        gemeente,
        role=binding.role,
        service=binding.service,
        service_type=binding.service_type,
        action=binding.action,
    )
    peer = route.peer_channel
    assert peer.encryption_certificate is not None
    assert peer.encryption_certificate.der is not None
    policy = alg.encryption_policy(peer.encryption_algorithm)
    encrypted = encrypt_part(
        PART,
        recipient_certificate_der=peer.encryption_certificate.der,
        data_algorithm=policy.data_algorithm,
        key_transport=policy.key_transport,
    )
    decrypted = decrypt_part(encrypted, key=private_key("rinis"), allowed_algorithms=policy.accepted)
    assert decrypted.data == PART.data


def _peer_encrypted(data_algorithm: str, key_transport: str, plaintext: bytes) -> MimePart:
    """An EncryptedData made with xmlsec directly, the way a legacy peer would (no code of ours)."""
    encrypted = etree.Element(_xenc("EncryptedData"), nsmap={"xenc": XENC, "ds": DS}, MimeType="text/plain")
    etree.SubElement(encrypted, _xenc("EncryptionMethod"), Algorithm=data_algorithm)
    encrypted_key = etree.SubElement(etree.SubElement(encrypted, f"{{{DS}}}KeyInfo"), _xenc("EncryptedKey"))
    etree.SubElement(encrypted_key, _xenc("EncryptionMethod"), Algorithm=key_transport)
    etree.SubElement(etree.SubElement(encrypted_key, _xenc("CipherData")), _xenc("CipherValue"))
    etree.SubElement(etree.SubElement(encrypted, _xenc("CipherData")), _xenc("CipherValue"))
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(certificate_der("rinis"), xmlsec.constants.KeyDataFormatCertDer))
    context = xmlsec.EncryptionContext(manager)
    triple_des = data_algorithm == alg.TRIPLEDES_CBC
    klass = xmlsec.constants.KeyDataDes if triple_des else xmlsec.constants.KeyDataAes
    context.key = xmlsec.Key.generate(klass, 192 if triple_des else 256, xmlsec.constants.KeyDataTypeSession)
    return MimePart(
        "legacy@peer.example", "application/xml", etree.tostring(context.encrypt_binary(encrypted, plaintext))
    )


def test_tripledes_from_a_legacy_peer_decrypts_only_behind_the_switch() -> None:
    part = _peer_encrypted(alg.TRIPLEDES_CBC, alg.RSA_1_5, b"oud bericht")
    assert _decrypt(part, legacy=True).data == b"oud bericht"
    assert _refusal(part).description == "Encryption algorithm not allowed."


def test_peer_encrypted_gcm_part_decrypts() -> None:
    part = _peer_encrypted(alg.AES256_GCM, alg.RSA_OAEP_MGF1P, b"nieuw bericht")
    decrypted = _decrypt(part)
    assert (decrypted.data, decrypted.content_type) == (b"nieuw bericht", "text/plain")


# --- one decryption judged again under a stricter policy (decrypt once per request) -------------------

LOOSE = frozenset(alg.WRITABLE_CIPHERS | alg.OAEP_KEY_TRANSPORTS)


@pytest.mark.parametrize(
    ("data", "transport", "cpa_algorithm"),
    [
        (alg.AES256_GCM, alg.RSA_OAEP_MGF1P, None),  # admitted by both
        (alg.AES128_CBC, alg.RSA_OAEP_MGF1P, None),  # CBC the CPA does not name
        (alg.AES128_CBC, alg.RSA_OAEP, alg.AES128_CBC),  # CBC the CPA names
        (alg.AES256_GCM, alg.RSA_1_5, None),  # RSA v1.5 without the legacy switch
    ],
)
def test_an_attempt_judged_again_gives_what_decrypt_part_gives(
    data: str, transport: str, cpa_algorithm: str | None
) -> None:
    encrypted = _encrypt(data=data, transport=transport)
    attempt = try_decrypt_part(encrypted, key=private_key("rinis"), allowed_algorithms=LOOSE)
    policy = alg.encryption_policy(cpa_algorithm)
    try:
        expected: MimePart | tuple[str, str, str] = _decrypt(encrypted, cpa_algorithm)
    except EbmsError as exc:
        expected = (exc.code, exc.location, exc.description)
    try:
        judged: MimePart | tuple[str, str, str] = admit_decryption(
            attempt, allowed_algorithms=policy.accepted, legacy=policy.legacy
        )
    except EbmsError as exc:
        judged = (exc.code, exc.location, exc.description)
    assert judged == expected
    # The fingerprint's attempt decrypts whatever we could accept on any channel.
    assert (attempt.error is None) == (transport != alg.RSA_1_5)
    assert attempt.data_algorithm == data and attempt.key_transport == transport


def test_an_attempt_on_a_part_that_is_not_encrypted_keeps_the_refusal() -> None:
    attempt = try_decrypt_part(PART, key=private_key("rinis"), allowed_algorithms=LOOSE)
    assert attempt.part is PART and attempt.data_algorithm is None
    with pytest.raises(EbmsError) as caught:
        admit_decryption(attempt, allowed_algorithms=LOOSE)
    assert caught.value.description == _refusal(PART).description == not_encrypted(PART).description
