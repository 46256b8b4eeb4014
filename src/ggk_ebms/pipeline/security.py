"""Apply a channel's Digikoppeling security profile to messages in and out (docs/signing.md).

Which channel decides (ebMS 2.0 §4.1; CPPA 2.0, BP ch. 3): for a received message the sender's channel — its
SenderNonRepudiation names the signing certificate and algorithms, its DigitalEnvelope the
cipher; for what we send, our channel signs and the receiver's channel names the encryption
certificate. Signals follow the MSH signal channel of whoever sends them.

Order (ebMS 2.0 §4.1.3, §4.1.4, XML Encryption 1.0): sign then encrypt on the way out, so digests
cover the plaintext; decrypt then verify on the way in. What is stored and delivered is the verified
plaintext.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from ggk_ebms.config import Settings
from ggk_ebms.cpa.lookup import ResolvedChannel
from ggk_ebms.ebms.build import BuiltMessage
from ggk_ebms.errors import ConfigError, EbmsError, ErrorCode
from ggk_ebms.mime.related import MimePart
from ggk_ebms.security.algorithms import (
    LEGACY_ONLY,
    OAEP_KEY_TRANSPORTS,
    WRITABLE_CIPHERS,
    encryption_policy,
    signature_policy,
)
from ggk_ebms.security.keys import load_private_key
from ggk_ebms.security.revocation import RevocationChecker
from ggk_ebms.security.xmldsig import VerifiedSignature, sign_envelope, verify_envelope
from ggk_ebms.security.xmlenc import (
    Decryption,
    admit_decryption,
    encrypt_part,
    not_encrypted,
    try_decrypt_part,
)


@dataclass(frozen=True)
class Decrypted:
    """The parts of one request as they came, with the decryption attempt of each one that looked
    encrypted (None: not encrypted)."""

    received: tuple[MimePart, ...]
    attempts: tuple[Decryption | None, ...]

    @classmethod
    def unencrypted(cls, parts: Sequence[MimePart] = ()) -> Decrypted:
        """Parts known to carry no encryption (a signal has no payload parts at all)."""
        return cls(tuple(parts), tuple(None for _ in parts))

    def fingerprint_parts(self) -> list[MimePart]:
        """Plaintext where decryption worked, else the part as it came (for the duplicate digest)."""
        return [
            a.part if a is not None and a.error is None else p
            for p, a in zip(self.received, self.attempts, strict=True)
        ]


@dataclass(frozen=True)
class Opened:
    """A received message after decryption and verification."""

    parts: list[MimePart]
    signature: VerifiedSignature | None


class MessageSecurity:
    """Signs, verifies, encrypts and decrypts with our keys from the settings, loaded once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._signing_key: PrivateKeyTypes | None = None
        self._encryption_key: PrivateKeyTypes | None = None
        self._revocation: RevocationChecker | None = None

    def _checker(self) -> RevocationChecker:
        with self._lock:
            if self._revocation is None:
                self._revocation = RevocationChecker.from_settings(self._settings)
            return self._revocation

    def _key(self, which: str) -> PrivateKeyTypes:
        with self._lock:
            if which == "signing" and self._signing_key is None:
                self._signing_key = self._load(self._settings.signing_key)
            if which == "encryption" and self._encryption_key is None:
                self._encryption_key = self._load(self._settings.encryption_key)
            key = self._signing_key if which == "signing" else self._encryption_key
        assert key is not None
        return key

    def _load(self, path: Path) -> PrivateKeyTypes:
        s = self._settings
        return load_private_key(
            path,
            passphrase_env=s.key_passphrase_env,
            passphrase_file=s.key_passphrase_file,
        )

    # -- in -------------------------------------------------------------------------------------

    def decrypt_received(self, parts: Sequence[MimePart], *, legacy: bool) -> Decrypted:
        """Decrypt, once per request, every part that is encrypted to us.

        The plaintext serves twice: for the duplicate fingerprint, which must be over the plaintext
        because a sender that re-encrypts its resend sends other bytes for the same message (ebMS 2.0
        §6.5.3, docs/rules.md: identical means the same payloads), also for a message that is then
        refused; and for ``open_inbound``, which judges the same attempts again under the sender
        channel's policy (``admit_decryption``) instead of decrypting a second time. The attempt
        admits every cipher we could accept on any channel; it decides nothing by itself.
        """
        if not any(_may_be_encrypted(p) for p in parts):
            return Decrypted.unencrypted(parts)
        accepted = frozenset(
            WRITABLE_CIPHERS | OAEP_KEY_TRANSPORTS | (LEGACY_ONLY if legacy else frozenset())
        )
        key = self._key("encryption")
        attempts = tuple(
            try_decrypt_part(p, key=key, allowed_algorithms=accepted, legacy=legacy)
            if _may_be_encrypted(p)
            else None
            for p in parts
        )
        return Decrypted(tuple(parts), attempts)

    def open_inbound(
        self,
        soap: bytes | etree._Element,
        decrypted: Decrypted,
        *,
        sender: ResolvedChannel,
        timestamp: datetime,
        legacy: bool = False,
    ) -> Opened:
        """Decrypt (-e) and verify (-s, -e) per the sender's channel; EbmsError SecurityFailure.

        ``soap`` is the envelope as parsed once for this request (or its bytes); ``decrypted`` the
        result of ``decrypt_received`` for its parts. ``legacy`` is the per-CPA switch (setting
        legacy_crypto_cpas) that admits RSA v1.5 and 3DES from a legacy peer (docs/signing.md).
        """
        profile = sender.profile
        plain = list(decrypted.received)
        if profile.encrypted:
            policy = encryption_policy(sender.encryption_algorithm, legacy=legacy)
            plain = []
            for part, attempt in zip(decrypted.received, decrypted.attempts, strict=True):
                if attempt is None:
                    raise not_encrypted(part)
                plain.append(
                    admit_decryption(attempt, allowed_algorithms=policy.accepted, legacy=policy.legacy)
                )
        elif profile.signed:
            # The signature check reads each part whole: a spooled part (ggk_ebms/spool.py) is
            # read into memory here, and only on signing channels.
            plain = [p.materialized() for p in plain]
        if not profile.signed:
            return Opened(plain, None)
        certificate = sender.signing_certificate
        if certificate is None or certificate.der is None:
            # The CPA promises signed messages but names no certificate to check them with.
            raise EbmsError(
                ErrorCode.SECURITY_FAILURE, "//Header/Signature", "No signing certificate in the CPA."
            )
        # A pinned certificate is still only as good as its CA says (PKI001): its chain to the
        # trust store and its revocation status (security/revocation.py) come first.
        verdict = self._checker().check_der(
            certificate.der, what="signing certificate", chain=self._settings.signing_chain_check
        )
        if not verdict.ok:
            raise EbmsError(
                ErrorCode.SECURITY_FAILURE,
                "//Header/Signature",
                f"Signing certificate refused: {verdict.reason}",
            )
        policy_s = signature_policy(
            sender.signature_algorithm, sender.hash_function, allow_sha1=self._settings.allow_sha1
        )
        verified = verify_envelope(
            soap,
            plain,
            certificate_der=certificate.der,
            allowed_signature_algorithms=policy_s.accepted_signature_methods,
            allowed_digest_algorithms=policy_s.accepted_digests,
            expected_digest=sender.hash_function,
            expected_signature=sender.signature_algorithm,
            allow_sha1=self._settings.allow_sha1,
            at=timestamp,
        )
        return Opened(plain, verified)

    # -- out ------------------------------------------------------------------------------------

    def seal(
        self,
        envelope: bytes,
        parts: Sequence[MimePart],
        *,
        ours: ResolvedChannel,
        peer: ResolvedChannel | None,
    ) -> tuple[bytes, list[MimePart]]:
        """Sign per our channel, then encrypt each part to the receiver's certificate (-e)."""
        sealed_parts = list(parts)
        if ours.profile.signed:
            envelope = self.sign(envelope, sealed_parts, ours)
        if ours.profile.encrypted:
            target = peer if peer is not None else ours
            certificate = target.encryption_certificate
            if certificate is None or certificate.der is None:
                raise ConfigError(
                    f"CPA channel {target.channel.channel_id} names no encryption certificate to encrypt to"
                )
            policy = encryption_policy(target.encryption_algorithm or ours.encryption_algorithm)
            sealed_parts = [
                encrypt_part(
                    p,
                    recipient_certificate_der=certificate.der,
                    data_algorithm=policy.data_algorithm,
                    key_transport=policy.key_transport,
                )
                for p in sealed_parts
            ]
        return envelope, sealed_parts

    def sign(self, envelope: bytes, parts: Sequence[MimePart], ours: ResolvedChannel) -> bytes:
        certificate = ours.signing_certificate
        if certificate is None or certificate.der is None:
            raise ConfigError(f"CPA channel {ours.channel.channel_id} names no signing certificate")
        policy = signature_policy(
            ours.signature_algorithm, ours.hash_function, allow_sha1=self._settings.allow_sha1
        )
        return sign_envelope(
            envelope,
            parts,
            key=self._key("signing"),
            certificate_der=certificate.der,
            signature_algorithm=policy.signature_method,
            digest_algorithm=policy.digest_method,
        )

    def sign_signal(self, built: BuiltMessage, ours: ResolvedChannel) -> BuiltMessage:
        """Signals are signed when our MSH signal channel signs (ebMS 2.0 §6.3, KVS ch. 5; our choice in
        docs/rules.md)."""
        if not ours.profile.signed:
            return built
        return BuiltMessage(
            header=built.header, kind=built.kind, envelope=self.sign(built.envelope, (), ours)
        )


def _may_be_encrypted(part: MimePart) -> bool:
    # The same cheap test as xmlenc.is_encrypted_part, without its parse: the attempt parses anyway.
    return b"EncryptedData" in part.head(4096)
