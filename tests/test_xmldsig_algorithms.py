"""The algorithm policy per channel (Digikoppeling BEV ch. 5; docs/signing.md), table-driven."""

from __future__ import annotations

import pytest

from ggk_ebms.errors import ConfigError
from ggk_ebms.security import algorithms as alg

# (CPA SignatureAlgorithm, CPA HashFunction, allow_sha1) -> what we sign with, or the refusal
SIGNATURE_TABLE = [
    (None, None, False, (alg.RSA_SHA256, alg.SHA256)),
    (alg.RSA_SHA512, alg.SHA384, False, (alg.RSA_SHA512, alg.SHA384)),
    (f"  {alg.RSA_SHA256}\n", alg.SHA256, False, (alg.RSA_SHA256, alg.SHA256)),
    (alg.RSA_SHA1, alg.SHA1, False, "SIGN004; SHA-1 needs the allow_sha1"),
    (alg.RSA_SHA256, alg.SHA1, False, "SIGN003; SHA-1 needs the allow_sha1"),
    (alg.RSA_SHA1, alg.SHA1, True, (alg.RSA_SHA1, alg.SHA1)),
    (alg.RSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#sha224", True, "SIGN003"),
    ("http://www.w3.org/2000/09/xmldsig#hmac-sha1", alg.SHA256, True, "SIGN004"),
]


@pytest.mark.parametrize(("signature", "digest", "allow_sha1", "outcome"), SIGNATURE_TABLE)
def test_signature_policy(
    signature: str | None, digest: str | None, allow_sha1: bool, outcome: tuple[str, str] | str
) -> None:
    if isinstance(outcome, str):
        with pytest.raises(ConfigError, match=outcome):
            alg.signature_policy(signature, digest, allow_sha1=allow_sha1)
        return
    policy = alg.signature_policy(signature, digest, allow_sha1=allow_sha1)
    assert (policy.signature_method, policy.digest_method) == outcome
    assert (alg.SHA1 in policy.accepted_digests) is allow_sha1
    assert (alg.RSA_SHA1 in policy.accepted_signature_methods) is allow_sha1


# (CPA EncryptionAlgorithm, legacy) -> (written cipher, accepted extras beyond GCM + OAEP)
ENCRYPTION_TABLE = [
    (None, False, alg.AES256_GCM, set()),
    (alg.AES128_GCM, False, alg.AES128_GCM, set()),
    (alg.AES256_CBC, False, alg.AES256_CBC, {alg.AES256_CBC}),
    (alg.AES128_CBC, True, alg.AES128_CBC, {alg.AES128_CBC, alg.RSA_1_5, alg.TRIPLEDES_CBC}),
    (alg.AES256_GCM, True, alg.AES256_GCM, {alg.RSA_1_5, alg.TRIPLEDES_CBC}),
]


@pytest.mark.parametrize(("cpa", "legacy", "written", "extras"), ENCRYPTION_TABLE)
def test_encryption_policy(cpa: str | None, legacy: bool, written: str, extras: set[str]) -> None:
    policy = alg.encryption_policy(cpa, legacy=legacy)
    assert policy.data_algorithm == written
    assert policy.key_transport == alg.RSA_OAEP_MGF1P
    baseline = {alg.AES128_GCM, alg.AES256_GCM, alg.RSA_OAEP_MGF1P, alg.RSA_OAEP}
    assert policy.accepted == frozenset(baseline | extras)


@pytest.mark.parametrize(
    ("cpa", "transport", "legacy", "message"),
    [
        (alg.TRIPLEDES_CBC, None, True, "decrypt-only"),
        ("http://www.w3.org/2001/04/xmlenc#kw-aes256", None, False, "ENC003"),
        (None, alg.RSA_1_5, False, "ENC004"),
    ],
)
def test_encryption_policy_refusals(
    cpa: str | None, transport: str | None, legacy: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        alg.encryption_policy(cpa, legacy=legacy, key_transport=transport)


def test_rsa_1_5_may_be_written_behind_the_switch() -> None:
    assert alg.encryption_policy(None, legacy=True, key_transport=alg.RSA_1_5).key_transport == alg.RSA_1_5


@pytest.mark.parametrize(
    ("uri", "accepted", "legacy", "admitted"),
    [
        (alg.AES256_GCM, {alg.AES256_GCM}, False, True),
        (alg.AES256_CBC, {alg.AES256_GCM}, True, False),
        (alg.RSA_1_5, {alg.RSA_1_5}, False, False),
        (alg.RSA_1_5, {alg.RSA_1_5}, True, True),
        (alg.TRIPLEDES_CBC, {alg.TRIPLEDES_CBC}, False, False),
    ],
)
def test_algorithm_admitted(uri: str, accepted: set[str], legacy: bool, admitted: bool) -> None:
    assert alg.algorithm_admitted(uri, accepted, legacy=legacy) is admitted
