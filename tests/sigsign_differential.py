"""Generated envelopes to sign, and ``sign_envelope`` run with and without the fast signer.

docs/signing.md "Fast signing": RSA PKCS#1 v1.5 is deterministic, so for every envelope the fast
signer must write the very bytes libxmlsec's ``sign`` writes over the same template. The cases
are what our MSH signs (ebMS 2.0 §4.1.3, §6.3): business messages with zero to three parts,
Acknowledgments (unsigned echo and the signed echo with its copied ds:References, ebMS 2.0 §6.3,
KVS ch. 5), MessageErrors (ebMS 2.0 §4.2), and free envelopes under other SOAP prefixes; into each
go generated header and Body blocks from ``xmldsig_differential.blocks`` (the SOAP actor in every
position, prefix rebinding, default namespaces, comments, processing instructions, CDATA,
character references, non-ASCII text), optional indentation and a prolog, with every RSA
signature method and digest of the signature policy (SIGN003/SIGN004, SHA-1 behind the legacy
switch).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from unittest import mock

from hypothesis import strategies as st
from lxml import etree

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.ebms.build import build_acknowledgment, build_business_message, build_message_error
from ggk_ebms.ebms.model import PartyId
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import EbmsError, ErrorCode, GgkEbmsError
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import ACTOR_NEXT_MSH, DS, EB, SOAP_ACTOR_NEXT, SOAP_ENV
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security import xmldsig
from xmldsig_differential import XMLSEC1, Block, blocks
from xmlsec_support import certificate_der, certificate_pem_path, private_key

KINDS: Final = ("business", "ack", "signed-ack", "error", "free")
PARTIES: Final = ("gemeente", "rinis")
SIGNATURE_METHODS: Final = (alg.RSA_SHA256, alg.RSA_SHA384, alg.RSA_SHA512, alg.RSA_SHA1)
DIGEST_METHODS: Final = (alg.SHA256, alg.SHA384, alg.SHA512, alg.SHA1)
# Text for ids, descriptions and free content: non-ASCII, markup characters, whitespace.
WORDS: Final = ("bericht", "Ærø-€", "a&b<c>", "  spatie\t", "ĳsbeer", "中文", "x\r\ny")
_CLOCK: Final = FixedClock(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
_OIN: Final = {"gemeente": "00000099000003630000", "rinis": "00000099000001000000"}


@dataclass(frozen=True)
class Case:
    """One envelope to sign and how."""

    kind: str
    party: str
    methods: tuple[str, str]
    word: str
    parts: tuple[bytes, ...]
    soap_prefix: str  # used by the "free" kind; the builders write SOAP
    header_blocks: tuple[Block, ...]
    body_blocks: tuple[Block, ...]
    indent: bool
    prolog: str
    envelope_actor: bool  # the document element filtered out: libxmlsec signs
    header_lookalike: bool  # a second "</x:Header>" in the bytes: the slot path places the template


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(KINDS))
    soap_prefix = draw(st.sampled_from(("soapenv", "s", "SOAP"))) if kind == "free" else "SOAP"
    return Case(
        kind=kind,
        party=draw(st.sampled_from(PARTIES)),
        # Mostly what the dev CPAs name (RSA-SHA256, SHA-256); every other pair often enough.
        methods=draw(
            st.one_of(
                st.just((alg.RSA_SHA256, alg.SHA256)),
                st.tuples(st.sampled_from(SIGNATURE_METHODS), st.sampled_from(DIGEST_METHODS)),
            )
        ),
        word=draw(st.sampled_from(WORDS)),
        parts=tuple(draw(st.lists(st.binary(max_size=200), max_size=3))),
        soap_prefix=soap_prefix,
        header_blocks=tuple(draw(st.lists(blocks(soap_prefix), max_size=3))),
        body_blocks=tuple(draw(st.lists(blocks(soap_prefix), max_size=2))),
        indent=draw(st.booleans()),
        prolog=draw(st.sampled_from(("", "", "<!-- voor -->\n", "<?verwerk dit?>\n"))),
        # Rare on purpose; True last, as hypothesis favours the first of a sample.
        envelope_actor=draw(st.sampled_from((False,) * 15 + (True,))),
        header_lookalike=draw(st.sampled_from((False,) * 7 + (True,))),
    )


def parts_of(case: Case) -> list[MimePart]:
    return [
        MimePart(f"deel{i}-{case.word.strip()[:2]}@gemeente.example", "application/octet-stream", data)
        for i, data in enumerate(case.parts)
    ]


def envelope_of(case: Case, parts: Sequence[MimePart]) -> bytes:
    """The unsigned envelope of ``case`` (UTF-8 bytes, as our builders write them)."""
    content_ids = [part.content_id or "" for part in parts]
    if case.kind == "free":
        base = _free_envelope(case)
    elif case.kind == "business":
        base = _business(case, content_ids).decode("utf-8")
    elif case.kind == "error":
        received = parse_envelope(_business(case, content_ids), max_bytes=1 << 20)
        error = EbmsError(ErrorCode.SECURITY_FAILURE, "//Header/Signature", f"Ongeldig: {case.word}")
        base = build_message_error(
            received, [error], ids=SequenceIdGenerator(), clock=_CLOCK
        ).envelope.decode("utf-8")
    else:
        base = _acknowledgment(case, parts, content_ids).decode("utf-8")
    return _decorated(base, case).encode("utf-8")


def _business(case: Case, content_ids: Sequence[str]) -> bytes:
    return build_business_message(
        cpa_id=f"cpa-{case.word}",
        from_party=PartyId(_OIN[case.party], "urn:osb:oin"),
        from_role="Gemeente",
        to_party=PartyId(_OIN["rinis" if case.party == "gemeente" else "gemeente"], "urn:osb:oin"),
        to_role="GGk",
        service="ggk:berichtenverkeer:1.0",
        service_type="urn:osb:services",
        action="envelopHeenbericht-ggk_Di01",
        conversation_id=f"gesprek {case.word}",
        message_id=f"m-{len(case.parts)}@gemeente.example",
        timestamp=_CLOCK.now(),
        time_to_live=None,
        ack_requested=len(case.parts) != 1,
        ack_signed=case.kind == "signed-ack",
        duplicate_elimination=True,
        sync_reply=len(case.parts) % 2 == 0,
        content_ids=content_ids,
    ).envelope


def _acknowledgment(case: Case, parts: Sequence[MimePart], content_ids: Sequence[str]) -> bytes:
    received_bytes = _business(case, content_ids)
    references: list[etree._Element] = []
    if case.kind == "signed-ack":
        # The echo of a signed message's ds:References (ebMS 2.0 §6.3): ds:XPath with xmlns:SOAP
        # and DigestValues inside eb:Acknowledgment, signed once more by the Ack's own Signature.
        received_bytes = sign_with(case, received_bytes, parts)
        signed_info = etree.fromstring(received_bytes).find(f".//{{{DS}}}SignedInfo")
        assert signed_info is not None
        references = list(signed_info.iterchildren(f"{{{DS}}}Reference"))
    received = parse_envelope(received_bytes, max_bytes=1 << 20)
    return build_acknowledgment(
        received,
        ids=SequenceIdGenerator(),
        clock=_CLOCK,
        our_party=PartyId(_OIN[case.party], "urn:osb:oin"),
        references=references,
    ).envelope


def _free_envelope(case: Case) -> str:
    s = case.soap_prefix
    return (
        f'<{s}:Envelope xmlns:{s}="{SOAP_ENV}" xmlns:eb="{EB}" xml:lang="nl">\n'
        f'  <{s}:Header>\n    <eb:MessageHeader eb:version="2.0" {s}:mustUnderstand="1">'
        f"<eb:CPAId>{_escaped(case.word)}</eb:CPAId></eb:MessageHeader>\n"
        f'    <eb:SyncReply eb:version="2.0" {s}:actor="{SOAP_ACTOR_NEXT}"/>\n  </{s}:Header>\n'
        f"  <{s}:Body>{_escaped(case.word)}</{s}:Body>\n</{s}:Envelope>"
    )


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _decorated(base: str, case: Case) -> str:
    """``base`` with the generated blocks, indentation, prolog and the rare envelope actor."""
    s = case.soap_prefix
    text = re.sub(r"^<\?xml[^>]*\?>\s*", "", base)
    header_end = text.rindex(f"</{s}:Header>")
    text = text[:header_end] + "".join(b.xml() for b in case.header_blocks) + text[header_end:]
    body_start = re.search(rf"<{s}:Body>", text)
    body_at = body_start.end() if body_start is not None else text.rindex(f"<{s}:Body/>")
    extra_body = "".join(b.xml() for b in case.body_blocks)
    if case.header_lookalike:
        extra_body += '<x:Header xmlns:x="urn:x-ggk-test:other">lijkt op een Header</x:Header>'
    if body_start is not None:
        text = text[:body_at] + extra_body + text[body_at:]
    else:
        text = text[:body_at] + f"<{s}:Body>{extra_body}</{s}:Body>" + text[body_at + len(f"<{s}:Body/>") :]
    if case.envelope_actor:
        text = text.replace(f"<{s}:Envelope ", f'<{s}:Envelope {s}:actor="{ACTOR_NEXT_MSH}" ', 1)
    if case.indent:
        tree = etree.fromstring(text.encode("utf-8"))
        etree.indent(tree, space="  ")  # whitespace text only where there was none
        text = etree.tostring(tree, encoding="unicode")
    return case.prolog + text


def sign_with(case: Case, envelope: bytes, parts: Sequence[MimePart]) -> bytes:
    signature_method, digest_method = case.methods
    return xmldsig.sign_envelope(
        envelope,
        parts,
        key=private_key(case.party),
        certificate_der=certificate_der(case.party),
        signature_algorithm=signature_method,
        digest_algorithm=digest_method,
    )


@dataclass
class Counts:
    fast: int = 0
    libxmlsec: int = 0
    xmlsec1_runs: int = 0


@contextmanager
def counting_fast_signer(counts: Counts) -> Iterator[None]:
    real = xmldsig._signed_without_xpath

    def counted(*args: object, **kwargs: object) -> bool:
        signed = real(*args, **kwargs)  # type: ignore[arg-type]
        if signed:
            counts.fast += 1
        else:
            counts.libxmlsec += 1
        return signed

    with mock.patch.object(xmldsig, "_signed_without_xpath", counted):
        yield


@contextmanager
def libxmlsec_signs() -> Iterator[None]:
    with mock.patch.object(xmldsig, "_signed_without_xpath", return_value=False):
        yield


def signed_or_refused(case: Case, envelope: bytes, parts: Sequence[MimePart]) -> bytes | str:
    """The signed bytes, or the refusal (type and text) when sign_envelope raises."""
    try:
        return sign_with(case, envelope, parts)
    except GgkEbmsError as exc:
        return f"{type(exc).__name__}: {exc}"


def xmlsec1_verifies(signed: bytes, parts: Sequence[MimePart], party: str) -> bool:
    """``xmlsec1 --verify`` with the party's certificate as the key and the parts as cid: files."""
    assert XMLSEC1 is not None
    with tempfile.TemporaryDirectory(prefix="ggk-sigsign-") as folder:
        path = Path(folder) / "signed.xml"
        path.write_bytes(signed)
        arguments = [XMLSEC1, "--verify", "--pubkey-cert-pem", str(certificate_pem_path(party))]
        arguments += ["--enabled-reference-uris", "empty,remote"]
        for index, part in enumerate(parts):
            part_path = Path(folder) / f"part{index}.bin"
            part_path.write_bytes(part.data)
            arguments += [f"--url-map:cid:{part.content_id}", str(part_path)]
        result = subprocess.run([*arguments, str(path)], capture_output=True, timeout=60, check=False)
    return result.returncode == 0
