"""The fast signer against libxmlsec's ``sign``: byte-identical output, or the test fails.

docs/signing.md "Fast signing". RSA PKCS#1 v1.5 signatures are deterministic (RFC 8017 §8.2), so
for each generated envelope (tests/sigsign_differential.py) ``sign_envelope`` as it runs in
production and ``sign_envelope`` with libxmlsec filling the template must return the same bytes
(or the same refusal). Where the fast signer signed, a sample of the outputs goes to the
independent ``xmlsec1 --verify``, which must accept it. The small run is part of the fast suite
(xmlsec1 on every 4th document); the 10,000-document run is marked slow (xmlsec1 on every 40th).
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, given, settings

from ggk_ebms.security import algorithms as alg
from sigsign_differential import (
    Case,
    Counts,
    cases,
    counting_fast_signer,
    envelope_of,
    libxmlsec_signs,
    parts_of,
    signed_or_refused,
    xmlsec1_verifies,
)
from xmldsig_differential import XMLSEC1

if XMLSEC1 is None and os.environ.get("GGK_EBMS_REQUIRE_XMLSEC1") == "1":
    # CI installs xmlsec1 and demands it: the proof must not silently lose its independent check.
    raise RuntimeError("xmlsec1 not installed, and GGK_EBMS_REQUIRE_XMLSEC1=1 demands it")


def _compare(case: Case, counts: Counts, ask_xmlsec1: bool) -> None:
    parts = parts_of(case)
    envelope = envelope_of(case, parts)
    fast_before = counts.fast
    with counting_fast_signer(counts):
        fast = signed_or_refused(case, envelope, parts)
    with libxmlsec_signs():
        full = signed_or_refused(case, envelope, parts)
    assert fast == full, (envelope, case)
    if ask_xmlsec1 and XMLSEC1 is not None and counts.fast > fast_before:
        assert isinstance(fast, bytes)
        counts.xmlsec1_runs += 1
        assert xmlsec1_verifies(fast, parts, case.party), (fast, case)


def _run(examples: int, xmlsec1_every: int) -> Counts:
    counts = Counts()
    seen = [0]

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(case=cases())
    def check(case: Case) -> None:
        seen[0] += 1
        _compare(case, counts, seen[0] % xmlsec1_every == 0)

    check()
    return counts


def test_fast_signer_writes_what_libxmlsec_writes() -> None:
    counts = _run(examples=100, xmlsec1_every=4)
    # The fast signer must have signed most documents, and xmlsec1 checked a sample of them.
    assert counts.fast > 50
    if XMLSEC1 is not None:
        assert counts.xmlsec1_runs > 5


def _fixed_case(**changes: object) -> Case:
    plain = Case(
        kind="business",
        party="gemeente",
        methods=(alg.RSA_SHA256, alg.SHA256),
        word="Ærø-€",
        parts=(b"een", bytes(range(256)), b""),
        soap_prefix="SOAP",
        header_blocks=(),
        body_blocks=(),
        indent=True,
        prolog="",
        envelope_actor=False,
        header_lookalike=False,
    )
    return dataclasses.replace(plain, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "methods",
    [
        (signature, digest)
        for signature in (alg.RSA_SHA1, alg.RSA_SHA256, alg.RSA_SHA384, alg.RSA_SHA512)
        for digest in (alg.SHA1, alg.SHA256, alg.SHA384, alg.SHA512)
    ],
)
def test_every_rsa_method_and_digest_is_byte_identical(methods: tuple[str, str]) -> None:
    counts = Counts()
    _compare(_fixed_case(methods=methods), counts, ask_xmlsec1=True)
    assert counts.fast == 1


def test_a_filtered_out_document_element_is_left_to_libxmlsec() -> None:
    # The node set is then the root node alone, which envelope_octets cannot express (actor_filter).
    counts = Counts()
    _compare(_fixed_case(envelope_actor=True), counts, ask_xmlsec1=False)
    assert (counts.fast, counts.libxmlsec) == (0, 1)


@pytest.mark.parametrize("kind", ["ack", "signed-ack", "error", "free"])
def test_a_prolog_processing_instruction_is_kept_and_signed(kind: str) -> None:
    # URI="" covers a processing instruction before the document element; sign_envelope wrote the
    # element alone before, dropping signed content (the generated run found that).
    case = _fixed_case(kind=kind, prolog="<?verwerk dit?>\n", header_lookalike=True)
    parts = parts_of(case)
    counts = Counts()
    _compare(case, counts, ask_xmlsec1=True)
    assert counts.fast == 1
    signed = signed_or_refused(case, envelope_of(case, parts), parts)
    assert isinstance(signed, bytes)
    assert b"<?verwerk dit?>" in signed


@pytest.mark.slow
def test_fast_signer_on_ten_thousand_documents() -> None:
    counts = _run(examples=10_000, xmlsec1_every=40)
    assert counts.fast > 8_000
    assert counts.libxmlsec > 0
    if XMLSEC1 is not None:
        assert counts.xmlsec1_runs >= 200
