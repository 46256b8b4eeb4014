"""Which XML Signature and XML Encryption algorithms we
write and accept (Digikoppeling BEV ch. 5; docs/signing.md).

The verdict of each algorithm URI (SIGN001-004, ENC001-004) lives in ``ggk_ebms.cpa.algorithms``,
which also judges CPAs at import; this module turns those verdicts and the CPA's choice into the
policy the signer, verifier, encrypter and decrypter apply to one channel:

- signing: the CPA's HashFunction and SignatureAlgorithm are written and, on receipt, demanded
  exactly ("Invalid DigestMethod." / "Invalid SignatureMethod.", ebMS 2.0 §4.1.3); SHA-1 only behind
  the ``allow_sha1`` legacy switch (docs/signing.md "digest");
- encryption: we write the CPA's EncryptionAlgorithm (AES-256-GCM when it names none) with
  RSA-OAEP key transport; we accept GCM always, AES-CBC only when the CPA names it, and RSA v1.5
  key transport and 3DES (decrypt only) only behind the per-CPA legacy switch (docs/signing.md "key
  transport", "data cipher").

Pure: URIs and switches in, frozen values out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from ggk_ebms.cpa import algorithms as verdicts
from ggk_ebms.errors import ConfigError
from ggk_ebms.ns import DS, XENC, XENC11

# --- XMLDSig (ebMS 2.0 §4.1.3) ---------------------------------------------------------------------------

C14N_INCLUSIVE: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_EXCLUSIVE: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
# docs/rules.md "Canonicalisation": we send inclusive C14N 1.0
# and accept inclusive or exclusive, both without comments.
ACCEPTED_C14N: Final = frozenset({C14N_INCLUSIVE, C14N_EXCLUSIVE})
ENVELOPED_SIGNATURE: Final = f"{DS}enveloped-signature"
XPATH_FILTER: Final = "http://www.w3.org/TR/1999/REC-xpath-19991116"
# OASIS ebMS 2.0 §4.1.3: leave out what intermediaries may change (SyncReply, nextMSH blocks).
EBMS_ACTOR_FILTER: Final = (
    'not(ancestor-or-self::node()[@SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"]'
    ' | ancestor-or-self::node()[@SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"])'
)

SHA1: Final = f"{DS}sha1"
SHA256: Final = f"{XENC}sha256"
SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512: Final = f"{XENC}sha512"
RSA_SHA1: Final = f"{DS}rsa-sha1"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"

# --- XML Encryption (ebMS 2.0 §4.1.4, XML Encryption 1.0)
# ----------------------------------------------------------------------

AES128_GCM: Final = f"{XENC11}aes128-gcm"
AES256_GCM: Final = f"{XENC11}aes256-gcm"
AES128_CBC: Final = f"{XENC}aes128-cbc"
AES256_CBC: Final = f"{XENC}aes256-cbc"
TRIPLEDES_CBC: Final = f"{XENC}tripledes-cbc"
RSA_OAEP_MGF1P: Final = f"{XENC}rsa-oaep-mgf1p"
RSA_OAEP: Final = f"{XENC11}rsa-oaep"
RSA_1_5: Final = f"{XENC}rsa-1_5"
ENCRYPTED_ELEMENT_TYPE: Final = f"{XENC}Element"

# ENC003: the data ciphers we can write; 3DES is decrypt-only and never written.
WRITABLE_CIPHERS: Final = frozenset({AES128_GCM, AES256_GCM, AES128_CBC, AES256_CBC})
# ENC004: RSA-OAEP in both spellings; RSA v1.5 only behind the legacy switch.
OAEP_KEY_TRANSPORTS: Final = frozenset({RSA_OAEP_MGF1P, RSA_OAEP})
# Algorithms no CPA value can switch on; only the legacy switch can (docs/signing.md).
LEGACY_ONLY: Final = frozenset({RSA_1_5, TRIPLEDES_CBC})


def accepted_digests(*, allow_sha1: bool) -> frozenset[str]:
    """SIGN003 digest methods, plus SHA-1 when the legacy switch is on."""
    return _accepted(verdicts.DIGESTS, allow_sha1)


def accepted_signature_methods(*, allow_sha1: bool) -> frozenset[str]:
    """SIGN004 signature methods, plus the SHA-1 ones when the legacy switch is on."""
    return _accepted(verdicts.SIGNATURES, allow_sha1)


def _accepted(table: dict[str, verdicts.Verdict], allow_sha1: bool) -> frozenset[str]:
    return frozenset(
        uri for uri, verdict in table.items() if verdict == "ok" or (verdict == "sha1" and allow_sha1)
    )


def is_sha1(uri: str) -> bool:
    """True for a SHA-1 digest or signature method (SIGN001 forbids them)."""
    return uri in (SHA1, RSA_SHA1) or verdicts.SIGNATURES.get(uri) == "sha1"


@dataclass(frozen=True)
class SignaturePolicy:
    """What one channel signs with and what its received signatures must use.

    ``signature_method`` / ``digest_method`` are written on sending and demanded exactly on receipt
    (ebMS 2.0 §4.1.3); the ``accepted_*`` sets are the outer bound every value must also be in.
    """

    signature_method: str
    digest_method: str
    accepted_signature_methods: frozenset[str]
    accepted_digests: frozenset[str]
    allow_sha1: bool


def signature_policy(
    signature_algorithm: str | None, hash_function: str | None, *, allow_sha1: bool = False
) -> SignaturePolicy:
    """The policy for a channel whose CPA names ``signature_algorithm`` and ``hash_function``.

    A CPA without them gets the defaults we write into CPAs (rsa-sha256, sha256). A CPA naming an
    algorithm outside the accepted set is a configuration fault: signing with it would break
    SIGN001-004 and every message from the peer would be refused anyway.
    """
    signature = (signature_algorithm or verdicts.DEFAULT_SIGNATURE).strip()
    digest = (hash_function or verdicts.DEFAULT_DIGEST).strip()
    signatures = accepted_signature_methods(allow_sha1=allow_sha1)
    digests = accepted_digests(allow_sha1=allow_sha1)
    if signature not in signatures:
        raise ConfigError(
            f"CPA SignatureAlgorithm {signature} is not allowed (SIGN004{_sha1_hint(signature)})"
        )
    if digest not in digests:
        raise ConfigError(f"CPA HashFunction {digest} is not allowed (SIGN003{_sha1_hint(digest)})")
    return SignaturePolicy(signature, digest, signatures, digests, allow_sha1)


def _sha1_hint(uri: str) -> str:
    return "; SHA-1 needs the allow_sha1 legacy switch" if is_sha1(uri) else ""


@dataclass(frozen=True)
class EncryptionPolicy:
    """What one channel encrypts with and which encrypted parts it
    accepts (ebMS 2.0 §4.1.4, XML Encryption 1.0; docs/signing.md).

    ``accepted`` holds data ciphers and key transports alike; ``legacy`` is the per-CPA switch
    that also admits RSA v1.5 and 3DES on receipt (and RSA v1.5 on sending, when asked for).
    """

    data_algorithm: str
    key_transport: str
    accepted: frozenset[str]
    legacy: bool


def encryption_policy(
    encryption_algorithm: str | None, *, legacy: bool = False, key_transport: str | None = None
) -> EncryptionPolicy:
    """The policy for a channel whose CPA names ``encryption_algorithm`` (or none).

    The CPA's algorithm wins (docs/signing.md): AES-CBC is written when the CPA names it, and then also
    accepted; GCM is accepted in any case. ``key_transport`` overrides RSA-OAEP-MGF1P for sending;
    RSA v1.5 there needs ``legacy``.
    """
    data = (encryption_algorithm or verdicts.DEFAULT_CIPHER).strip()
    if data not in WRITABLE_CIPHERS:
        raise ConfigError(
            f"CPA EncryptionAlgorithm {data} cannot be used for sending (ENC003: AES-GCM, or AES-CBC "
            "where the CPA names it; 3DES is decrypt-only)"
        )
    transport = (key_transport or verdicts.DEFAULT_KEY_TRANSPORT).strip()
    if transport not in OAEP_KEY_TRANSPORTS and not (legacy and transport == RSA_1_5):
        raise ConfigError(f"key transport {transport} is not allowed (ENC004: RSA-OAEP)")
    accepted = {AES128_GCM, AES256_GCM, data, *OAEP_KEY_TRANSPORTS}
    if legacy:
        accepted |= LEGACY_ONLY
    return EncryptionPolicy(data, transport, frozenset(accepted), legacy)


def algorithm_admitted(uri: str, accepted: Collection[str], *, legacy: bool) -> bool:
    """True when ``uri`` is in ``accepted`` and, if it is legacy-only, the legacy switch is on."""
    return uri in accepted and (uri not in LEGACY_ONLY or legacy)
