"""Interop with the independent command-line signer/verifier ``xmlsec1`` (Debian package xmlsec1).

Both directions of signing (docs/signing.md): xmlsec1 verifies what we sign, the cid: attachment digests
checked through ``--url-map`` (each part written to a file), and we verify what xmlsec1 signs over an
envelope written by hand here, with other prefixes and layout than our builder uses. The tests skip
with a visible reason when xmlsec1 is not installed (``apt-get install xmlsec1``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from ggk_ebms.errors import EbmsError
from ggk_ebms.mime.related import MimePart
from ggk_ebms.security import algorithms as alg
from xmlsec_support import DEV_CERTS, business_envelope, certificate_pem_path, payload_parts, sign, verify

XMLSEC1 = shutil.which("xmlsec1")
if XMLSEC1 is None and os.environ.get("GGK_EBMS_REQUIRE_XMLSEC1") == "1":
    # CI (.ci/run) installs xmlsec1 and demands it: the interop proof must not silently skip.
    raise RuntimeError("xmlsec1 not installed, and GGK_EBMS_REQUIRE_XMLSEC1=1 demands it")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 not installed (Debian package xmlsec1)")


def _url_maps(parts: Sequence[MimePart], folder: Path) -> list[str]:
    """``--url-map:cid:<id> <file>`` for every part: xmlsec1 reads the cid: parts from files."""
    arguments: list[str] = []
    for index, part in enumerate(parts):
        path = folder / f"part{index}.bin"
        path.write_bytes(part.data)
        arguments += [f"--url-map:cid:{part.content_id}", str(path)]
    return arguments


def _xmlsec1(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1 is not None
    return subprocess.run([XMLSEC1, *arguments], capture_output=True, text=True, timeout=60, check=False)


def _xmlsec1_verify(
    envelope: bytes, parts: Sequence[MimePart], folder: Path
) -> subprocess.CompletedProcess[str]:
    path = folder / "signed.xml"
    path.write_bytes(envelope)
    return _xmlsec1(
        "--verify",
        "--pubkey-cert-pem",
        str(certificate_pem_path("gemeente")),
        "--enabled-reference-uris",
        "empty,remote",
        *_url_maps(parts, folder),
        str(path),
    )


@pytest.mark.parametrize(
    ("signature_method", "digest_method"),
    [(alg.RSA_SHA256, alg.SHA256), (alg.RSA_SHA512, alg.SHA384)],
)
def test_xmlsec1_verifies_our_signature_with_attachments(
    tmp_path: Path, signature_method: str, digest_method: str
) -> None:
    parts = payload_parts(3)
    signed = sign(
        business_envelope(parts), parts, signature_algorithm=signature_method, digest_algorithm=digest_method
    )
    result = _xmlsec1_verify(signed, parts, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 4/4" in result.stderr + result.stdout


def test_xmlsec1_refuses_our_signature_when_a_part_changed(tmp_path: Path) -> None:
    """The control for the test above: xmlsec1 really digests the cid: parts."""
    parts = payload_parts(2)
    signed = sign(business_envelope(parts), parts)
    changed = [parts[0], MimePart(parts[1].content_id, parts[1].content_type, parts[1].data + b"!")]
    result = _xmlsec1_verify(signed, changed, tmp_path)
    assert result.returncode != 0


# A SOAP envelope written by hand: prefixes soapenv/ebxml/dsig, indentation, a nextMSH header
# block and SyncReply outside the signature, and a payload part named by a Manifest.
HAND_WRITTEN = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:ebxml="http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
    xmlns:xl="http://www.w3.org/1999/xlink">
  <soapenv:Header>
    <ebxml:MessageHeader ebxml:version="2.0" soapenv:mustUnderstand="1">
      <ebxml:From><ebxml:PartyId ebxml:type="urn:osb:oin">00000099000003630000</ebxml:PartyId>
        <ebxml:Role>Gemeente</ebxml:Role></ebxml:From>
      <ebxml:To><ebxml:PartyId ebxml:type="urn:osb:oin">00000099000001000000</ebxml:PartyId>
        <ebxml:Role>GGk</ebxml:Role></ebxml:To>
      <ebxml:CPAId>dev-osb-rm-s</ebxml:CPAId>
      <ebxml:ConversationId>hand-1</ebxml:ConversationId>
      <ebxml:Service ebxml:type="urn:osb:services">ggk:berichtenverkeer:1.0</ebxml:Service>
      <ebxml:Action>envelopHeenbericht-ggk_Di01</ebxml:Action>
      <ebxml:MessageData>
        <ebxml:MessageId>hand-1@peer.example</ebxml:MessageId>
        <ebxml:Timestamp>2026-03-02T09:30:00Z</ebxml:Timestamp>
      </ebxml:MessageData>
      <ebxml:DuplicateElimination/>
    </ebxml:MessageHeader>
    <ebxml:SyncReply ebxml:version="2.0" soapenv:mustUnderstand="1"
        soapenv:actor="http://schemas.xmlsoap.org/soap/actor/next"/>
    <ebxml:AckRequested ebxml:version="2.0" soapenv:mustUnderstand="1"
        soapenv:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH" ebxml:signed="false"/>
    <dsig:Signature xmlns:dsig="http://www.w3.org/2000/09/xmldsig#">
      <dsig:SignedInfo>
        <dsig:CanonicalizationMethod Algorithm="{c14n}"/>
        <dsig:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
        <dsig:Reference URI="">
          <dsig:Transforms>
            <dsig:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
            <dsig:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116">
              <dsig:XPath xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/">not(ancestor-or-self::node()[@SOAP:actor='urn:oasis:names:tc:ebxml-msg:actor:nextMSH']
                | ancestor-or-self::node()[@SOAP:actor='http://schemas.xmlsoap.org/soap/actor/next'])</dsig:XPath>
            </dsig:Transform>
            <dsig:Transform Algorithm="{c14n}"/>
          </dsig:Transforms>
          <dsig:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
          <dsig:DigestValue/>
        </dsig:Reference>
        <dsig:Reference URI="cid:attachment-1@peer.example">
          <dsig:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
          <dsig:DigestValue/>
        </dsig:Reference>
      </dsig:SignedInfo>
      <dsig:SignatureValue/>
      <dsig:KeyInfo><dsig:X509Data><dsig:X509Certificate/></dsig:X509Data></dsig:KeyInfo>
    </dsig:Signature>
  </soapenv:Header>
  <soapenv:Body>
    <ebxml:Manifest ebxml:version="2.0">
      <ebxml:Reference xl:href="cid:attachment-1@peer.example" xl:type="simple"/>
    </ebxml:Manifest>
  </soapenv:Body>
</soapenv:Envelope>
"""
ATTACHMENT = MimePart("attachment-1@peer.example", "application/xml", b"<bericht>van de peer</bericht>\n")


def _signed_by_xmlsec1(folder: Path, c14n: str) -> bytes:
    template = folder / "template.xml"
    template.write_text(HAND_WRITTEN.replace("{c14n}", c14n), encoding="utf-8")
    output = folder / "signed-by-xmlsec1.xml"
    key = DEV_CERTS / "gemeente" / "client-key.pem"
    result = _xmlsec1(
        "--sign",
        "--privkey-pem",
        f"{key},{certificate_pem_path('gemeente')}",
        *_url_maps([ATTACHMENT], folder),
        "--output",
        str(output),
        str(template),
    )
    assert result.returncode == 0, result.stderr
    return output.read_bytes()


@pytest.mark.parametrize("c14n", [alg.C14N_INCLUSIVE, alg.C14N_EXCLUSIVE])
def test_we_verify_a_signature_made_by_xmlsec1(tmp_path: Path, c14n: str) -> None:
    signed = _signed_by_xmlsec1(tmp_path, c14n)
    verified = verify(signed, [ATTACHMENT])
    assert [r.uri for r in verified.references] == ["", "cid:attachment-1@peer.example"]


def test_we_refuse_an_xmlsec1_signature_over_a_changed_message(tmp_path: Path) -> None:
    signed = _signed_by_xmlsec1(tmp_path, alg.C14N_INCLUSIVE)
    forged = signed.replace(b"<ebxml:Action>envelopHeenbericht", b"<ebxml:Action>envelopRetourbericht")
    assert forged != signed
    with pytest.raises(EbmsError, match="Invalid Signature"):
        verify(forged, [ATTACHMENT])
    with pytest.raises(EbmsError, match="Digest of the MIME part"):
        verify(
            signed, [MimePart(ATTACHMENT.content_id, ATTACHMENT.content_type, b"<bericht>vervalst</bericht>")]
        )
