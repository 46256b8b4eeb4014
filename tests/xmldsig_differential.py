"""Generated signed ebMS envelopes and the three verdicts the differential test compares.

docs/signing.md "Fast signature check": the fast check must say valid exactly when libxmlsec's full
verification and the command-line ``xmlsec1 --verify`` say valid. The generator writes SOAP
envelopes with the ebMS actor attribute (ebMS 2.0 §4.1.3) on header blocks, nested elements and
Body children, under several prefixes and with prefix rebinding, with comments, processing
instructions, CDATA, character references and default-namespace games; signs them with libxmlsec
through a template in one of several shapes (Signature anywhere among the Header blocks, inclusive
or exclusive C14N, filter spellings the fast check takes and some it leaves to libxmlsec, ds as
prefix or default namespace, an actor on the Signature itself); then mutates the signed bytes:
edits inside and outside the filtered subtrees, added or removed actors, comments, processing
instructions, namespace declarations, whitespace, a moved or duplicated Body, duplicated ids,
reflowed or broken base64.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from unittest import mock

import xmlsec
from cryptography.hazmat.primitives import serialization
from hypothesis import strategies as st
from lxml import etree

from ggk_ebms.errors import EbmsError
from ggk_ebms.mime.related import MimePart
from ggk_ebms.ns import ACTOR_NEXT_MSH, ACTOR_TO_PARTY_MSH, DS, EB, SOAP_ACTOR_NEXT, SOAP_ENV
from ggk_ebms.security import algorithms as alg
from ggk_ebms.security import xmldsig, xmlsec_io
from xmlsec_support import certificate_der, certificate_pem_path, private_key

XMLSEC1: Final = shutil.which("xmlsec1")
OTHER_NS: Final = "urn:x-ggk-test:other"
ACTOR_VALUES: Final = (
    ACTOR_NEXT_MSH,
    SOAP_ACTOR_NEXT,
    ACTOR_TO_PARTY_MSH,
    ACTOR_NEXT_MSH + " ",
    "URN:OASIS:NAMES:TC:EBXML-MSG:ACTOR:NEXTMSH",
    "urn:oasis:names:tc:ebxml-msg:actor:nextMS&#72;",  # a character reference: still nextMSH
)
TEXTS: Final = ("tekst", " ", "\n    ", "&amp;&lt;&gt;", "&#13;", "<![CDATA[x<y&z]]>", "é€", "")
# Filter spellings: the first four are taken by the fast check, the rest go to libxmlsec.
_NEXT_MSH_TEST = "ancestor-or-self::node()[@SOAP:actor={q}urn:oasis:names:tc:ebxml-msg:actor:nextMSH{q}]"
_NEXT_TEST = "ancestor-or-self::node()[@SOAP:actor={q}http://schemas.xmlsoap.org/soap/actor/next{q}]"
FILTERS: Final = (
    alg.EBMS_ACTOR_FILTER,
    f"not({_NEXT_MSH_TEST} | {_NEXT_TEST})".format(q="'"),
    f"\n  not({_NEXT_MSH_TEST}\n    |\t{_NEXT_TEST})  \n".format(q='"'),
    f"not({_NEXT_MSH_TEST}|{_NEXT_TEST})".format(q='"'),
    f"not({_NEXT_TEST} | {_NEXT_MSH_TEST})".format(q='"'),
    f"not( {_NEXT_MSH_TEST} | {_NEXT_TEST} )".format(q='"'),
    f"not({_NEXT_MSH_TEST} | {_NEXT_TEST})".format(q='"').replace("::", " :: "),
)
C14NS: Final = (alg.C14N_INCLUSIVE, alg.C14N_EXCLUSIVE)
METHODS: Final = ((alg.RSA_SHA256, alg.SHA256), (alg.RSA_SHA512, alg.SHA512), (alg.RSA_SHA256, alg.SHA512))


# --- envelopes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One element of generated content: its name, attributes, declarations and children."""

    namespace: str | None
    local: str
    attributes: tuple[str, ...]  # serialised attributes, prefixes resolved by ``declarations``
    declarations: tuple[str, ...]
    children: tuple[Block | str, ...]  # a str is serialised markup: text, comment, PI, CDATA

    def xml(self) -> str:
        if self.namespace is not None:
            tag, own = f"q:{self.local}", f'xmlns:q="{self.namespace}"'
        elif any(d.startswith("xmlns=") for d in self.declarations):
            tag, own = self.local, ""  # the element takes the declared default namespace
        else:
            tag, own = self.local, 'xmlns=""'
        start = " ".join(filter(None, (tag, own, *self.declarations, *self.attributes)))
        body = "".join(c if isinstance(c, str) else c.xml() for c in self.children)
        return f"<{start}>{body}</{tag}>"


def _actor_attribute(prefix: str) -> st.SearchStrategy[str]:
    return st.sampled_from(ACTOR_VALUES).map(lambda value: f'{prefix}:actor="{value}"')


def _attributes(soap_prefix: str) -> st.SearchStrategy[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(attributes, extra declarations): the actor under the envelope's prefix, under another
    prefix bound to the SOAP namespace, without namespace, in another namespace; ids; xml:lang."""
    one = st.one_of(
        _actor_attribute(soap_prefix).map(lambda a: (a, "")),
        _actor_attribute("alt").map(lambda a: (a, f'xmlns:alt="{SOAP_ENV}"')),
        st.just((f'actor="{ACTOR_NEXT_MSH}"', "")),
        st.just((f'o:actor="{ACTOR_NEXT_MSH}"', 'xmlns:o="urn:x-ggk-test:actor"')),
        st.just(('Id="dup"', "")),
        st.just(('xml:lang="nl"', "")),
    )
    return st.lists(one, max_size=2, unique_by=_attribute_kind).map(
        lambda pairs: (tuple(a for a, _ in pairs), tuple(d for _, d in pairs if d))
    )


def _attribute_kind(pair: tuple[str, str]) -> str:
    """One actor in the SOAP namespace per element, whatever its prefix (else not well-formed)."""
    name = pair[0].split("=")[0]
    return "soap-actor" if name.endswith(":actor") and not name.startswith("o:") else name


def _markup() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(TEXTS),
        st.sampled_from(("<!-- opmerking -->", "<!---->", "<?verwerk dit?>", "<?leeg?>")),
    )


def blocks(soap_prefix: str, depth: int = 2) -> st.SearchStrategy[Block]:
    children: st.SearchStrategy[Block | str] = (
        st.one_of(_markup(), blocks(soap_prefix, depth - 1)) if depth > 0 else _markup()
    )
    return st.builds(
        _block,
        st.sampled_from((OTHER_NS, None, SOAP_ENV, "urn:x-ggk-test:blok")),
        st.sampled_from(("Blok", "Extra", "Routering", "Wrapper")),
        _attributes(soap_prefix),
        st.lists(
            st.sampled_from(
                (
                    'xmlns="urn:x-ggk-test:default"',
                    f'xmlns:{soap_prefix}="{OTHER_NS}"',  # the envelope's prefix rebound inside
                    'xmlns:ongebruikt="urn:x-ggk-test:unused"',
                )
            ),
            max_size=2,
            unique=True,
        ),
        st.lists(children, max_size=4),
    )


def _block(
    namespace: str | None,
    local: str,
    attributes: tuple[tuple[str, ...], tuple[str, ...]],
    declarations: list[str],
    children: list[Block | str],
) -> Block:
    values, needed = attributes
    declared = tuple(dict.fromkeys((*needed, *declarations)))
    return Block(namespace, local, values, declared, tuple(children))


@dataclass(frozen=True)
class Layout:
    """How the envelope and its Signature are written."""

    soap_prefix: str
    header_blocks: tuple[Block, ...]
    body_blocks: tuple[Block, ...]
    signature_position: int
    signed_info_c14n: str
    reference_c14n: str
    xpath: str
    methods: tuple[str, str]
    ds_prefix: str  # "" for ds as the default namespace
    signature_attributes: str
    envelope_extra: str
    header_extra: str
    prolog: str
    part_count: int


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    soap_prefix = draw(st.sampled_from(("SOAP", "soapenv", "s")))
    header_blocks = draw(st.lists(blocks(soap_prefix), max_size=3))
    return Layout(
        soap_prefix=soap_prefix,
        header_blocks=tuple(header_blocks),
        body_blocks=tuple(draw(st.lists(blocks(soap_prefix), max_size=2))),
        signature_position=draw(st.integers(0, len(header_blocks) + 2)),
        signed_info_c14n=draw(st.sampled_from(C14NS)),
        reference_c14n=draw(st.sampled_from(C14NS)),
        # Mostly spellings the fast check takes, so that it decides most documents.
        xpath=draw(
            st.one_of(st.sampled_from(FILTERS[:4]), st.sampled_from(FILTERS[:4]), st.sampled_from(FILTERS))
        ),
        methods=draw(st.sampled_from(METHODS)),
        ds_prefix=draw(st.sampled_from(("ds", "dsig", ""))),
        signature_attributes=draw(
            st.sampled_from(
                (
                    "",
                    'Id="dup"',
                    f'{soap_prefix}:actor="{ACTOR_NEXT_MSH}"',
                    f'{soap_prefix}:actor="{ACTOR_TO_PARTY_MSH}"',
                    'xmlns:ongebruikt="urn:x-ggk-test:unused"',
                )
            )
        ),
        envelope_extra=draw(
            st.sampled_from(
                ("", "", "", 'xmlns:ongebruikt="urn:x-ggk-test:unused"', 'xml:lang="nl"', 'Id="env"')
            )
        ),
        header_extra=draw(
            st.sampled_from(("", "", "", "", 'xml:space="preserve"', 'xmlns="urn:x-ggk-test:default"'))
        ),
        prolog=draw(st.sampled_from(("", "<!-- voor -->\n", "<?voor het document?>\n", "\n"))),
        part_count=draw(st.integers(0, 2)),
    )


def _message_header(eb: str) -> str:
    return (
        f'<{eb}:MessageHeader {eb}:version="2.0"><{eb}:CPAId>dev-osb-rm-s</{eb}:CPAId>'
        f"<{eb}:ConversationId>c-1</{eb}:ConversationId><{eb}:MessageData>"
        f"<{eb}:MessageId>m-1@gemeente.example</{eb}:MessageId></{eb}:MessageData></{eb}:MessageHeader>"
    )


def _signature_template(layout: Layout, parts: Sequence[MimePart]) -> str:
    p = f"{layout.ds_prefix}:" if layout.ds_prefix else ""
    declaration = f'xmlns:{layout.ds_prefix}="{DS}"' if layout.ds_prefix else f'xmlns="{DS}"'
    signature_method, digest_method = layout.methods
    references = "".join(
        f'<{p}Reference URI="cid:{part.content_id}"><{p}DigestMethod Algorithm="{digest_method}"/>'
        f"<{p}DigestValue/></{p}Reference>"
        for part in parts
    )
    xpath = layout.xpath.replace("&", "&amp;").replace("<", "&lt;")
    return (
        f"<{p}Signature {declaration} {layout.signature_attributes}><{p}SignedInfo>"
        f'<{p}CanonicalizationMethod Algorithm="{layout.signed_info_c14n}"/>'
        f'<{p}SignatureMethod Algorithm="{signature_method}"/>'
        f'<{p}Reference URI=""><{p}Transforms>'
        f'<{p}Transform Algorithm="{alg.ENVELOPED_SIGNATURE}"/>'
        f'<{p}Transform Algorithm="{alg.XPATH_FILTER}"><{p}XPath xmlns:SOAP="{SOAP_ENV}">{xpath}</{p}XPath>'
        f"</{p}Transform>"
        f'<{p}Transform Algorithm="{layout.reference_c14n}"/></{p}Transforms>'
        f'<{p}DigestMethod Algorithm="{digest_method}"/><{p}DigestValue/></{p}Reference>'
        f"{references}</{p}SignedInfo><{p}SignatureValue/>"
        f"<{p}KeyInfo><{p}X509Data><{p}X509Certificate>"
        f"{base64.b64encode(certificate_der('gemeente')).decode('ascii')}"
        f"</{p}X509Certificate></{p}X509Data></{p}KeyInfo></{p}Signature>"
    )


def parts_for(layout: Layout) -> list[MimePart]:
    return [
        MimePart(f"deel{i}@gemeente.example", "application/xml", b"<deel>%d</deel>" % i)
        for i in range(layout.part_count)
    ]


def envelope_text(layout: Layout, parts: Sequence[MimePart]) -> str:
    s = layout.soap_prefix
    header: list[str] = [_message_header("eb")]
    header += [block.xml() for block in layout.header_blocks]
    header.insert(min(layout.signature_position, len(header)), _signature_template(layout, parts))
    header.append(f'<eb:SyncReply eb:version="2.0" {s}:mustUnderstand="1" {s}:actor="{SOAP_ACTOR_NEXT}"/>')
    body = "".join(block.xml() for block in layout.body_blocks)
    return (
        f'{layout.prolog}<{s}:Envelope xmlns:{s}="{SOAP_ENV}" xmlns:eb="{EB}" {layout.envelope_extra}>\n'
        f"  <{s}:Header {layout.header_extra}>{''.join(header)}</{s}:Header>\n"
        f"  <{s}:Body>{body}</{s}:Body>\n</{s}:Envelope>"
    )


def sign(layout: Layout) -> tuple[bytes, list[MimePart]]:
    """The envelope of ``layout`` signed by libxmlsec over its own template."""
    parts = parts_for(layout)
    root = etree.fromstring(envelope_text(layout, parts).encode("utf-8"))
    signature = next(root.iter(f"{{{DS}}}Signature"))
    context = xmlsec.SignatureContext()
    context.key = _signing_key()
    with xmlsec_io.serving({part.content_id or "": part.data for part in parts}):
        context.sign(signature)
    return etree.tostring(root.getroottree()), parts


def _signing_key() -> xmlsec.Key:
    pem = private_key("gemeente").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)


# --- mutations ------------------------------------------------------------------------------------

Mutation = Callable[[etree._Element, int], None]
_MUTANT: Final = f"{{{OTHER_NS}}}mutant"


def _elements(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(etree.Element))


def _pick(root: etree._Element, choice: int) -> etree._Element:
    elements = _elements(root)
    return elements[choice % len(elements)]


def _text(root: etree._Element, choice: int) -> None:
    element = _pick(root, choice)
    element.text = (element.text or "") + "X"


def _attribute(root: etree._Element, choice: int) -> None:
    _pick(root, choice).set(_MUTANT, "1")


def _add_actor(root: etree._Element, choice: int) -> None:
    _pick(root, choice).set(f"{{{SOAP_ENV}}}actor", (ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT)[choice % 2])


def _change_or_drop_actor(root: etree._Element, choice: int) -> None:
    marked = [e for e in _elements(root) if e.get(f"{{{SOAP_ENV}}}actor") is not None]
    if marked:
        element = marked[choice % len(marked)]
        if choice % 3 == 0:
            del element.attrib[f"{{{SOAP_ENV}}}actor"]
        else:
            element.set(
                f"{{{SOAP_ENV}}}actor", (ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT, ACTOR_TO_PARTY_MSH)[choice % 3]
            )


def _comment(root: etree._Element, choice: int) -> None:
    element = _pick(root, choice)
    element.insert(choice % (len(element) + 1), etree.Comment("later"))


def _processing_instruction(root: etree._Element, choice: int) -> None:
    if choice % 4 == 0:
        root.addnext(etree.ProcessingInstruction("na", "het document"))
    else:
        element = _pick(root, choice)
        element.insert(choice % (len(element) + 1), etree.ProcessingInstruction("later", "x"))


def _whitespace(root: etree._Element, choice: int) -> None:
    element = _pick(root, choice)
    if element is not root:
        element.tail = (element.tail or "") + "\n"


def _soap_header(root: etree._Element) -> etree._Element:
    return next(root.iterchildren(f"{{{SOAP_ENV}}}Header"))


def _tail(root: etree._Element, choice: int) -> None:
    """Text after an element (between the Signature's children, say), not only whitespace."""
    element = _pick(root, choice)
    if element is not root:
        element.tail = (element.tail or "") + ("X" if choice % 2 else " \n")


def _signed_info_tail(root: etree._Element, choice: int) -> None:
    """Text between SignedInfo and SignatureValue: outside every digest, ignored by XMLDSig."""
    signed_info = next(root.iter(f"{{{DS}}}SignedInfo"), None)
    if signed_info is not None:
        signed_info.tail = (signed_info.tail or "") + ("tekst" if choice % 2 else "\n")


def _header_block(root: etree._Element, choice: int) -> None:
    block = etree.Element(f"{{{OTHER_NS}}}Ingevoegd")
    block.text = "later"
    if choice % 3:
        block.set(f"{{{SOAP_ENV}}}actor", (ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT)[choice % 2])
    header = _soap_header(root)
    header.insert(choice % (len(header) + 1), block)


def _duplicate_body(root: etree._Element, choice: int) -> None:
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is not None:
        body.addnext(etree.fromstring(etree.tostring(body, with_tail=False)))


def _wrap_body(root: etree._Element, choice: int) -> None:
    """Wrapping attempt: the signed Body hidden in a nextMSH block, a new Body in its place."""
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None:
        return
    wrapper = etree.SubElement(_soap_header(root), f"{{{OTHER_NS}}}Wrapper")
    wrapper.set(f"{{{SOAP_ENV}}}actor", ACTOR_NEXT_MSH)
    fake = etree.Element(f"{{{SOAP_ENV}}}Body")
    fake.text = "vervalst"
    body.addprevious(fake)
    wrapper.append(body)


def _duplicate_ids(root: etree._Element, choice: int) -> None:
    for element in _elements(root)[: 1 + choice % 4]:
        element.set("Id", "dup")


def _swap(root: etree._Element, choice: int) -> None:
    element = _pick(root, choice)
    children = list(element.iterchildren(etree.Element))
    if len(children) >= 2:
        children[0].addprevious(children[1])


def _signature_value(transform: Callable[[str, int], str]) -> Mutation:
    def mutate(root: etree._Element, choice: int) -> None:
        value = next(root.iter(f"{{{DS}}}SignatureValue"), None)
        if value is not None:
            value.text = transform("".join((value.text or "").split()), choice)

    return mutate


def _digest_value(transform: Callable[[str, int], str]) -> Mutation:
    def mutate(root: etree._Element, choice: int) -> None:
        values = list(root.iter(f"{{{DS}}}DigestValue"))
        if values:
            value = values[choice % len(values)]
            value.text = transform((value.text or "").strip(), choice)

    return mutate


def _reflow(text: str, choice: int) -> str:
    width = 4 * (1 + choice % 19)
    return "\n" + "\n".join(text[i : i + width] for i in range(0, len(text), width)) + "\n"


def _flip(text: str, choice: int) -> str:
    index = choice % max(1, len(text) - 2)
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def _unpadded(text: str, choice: int) -> str:
    return text.rstrip("=") if choice % 2 else text + "===="


def _second_key_info(root: etree._Element, choice: int) -> None:
    key_info = next(root.iter(f"{{{DS}}}KeyInfo"), None)
    if key_info is not None:
        # Without its tail: text after KeyInfo (another mutation) is not part of the element.
        key_info.addnext(etree.fromstring(etree.tostring(key_info, with_tail=False)))


MUTATIONS: Final[dict[str, Mutation]] = {
    "text": _text,
    "attribute": _attribute,
    "add-actor": _add_actor,
    "change-actor": _change_or_drop_actor,
    "comment": _comment,
    "pi": _processing_instruction,
    "whitespace": _whitespace,
    "tail": _tail,
    "signed-info-tail": _signed_info_tail,
    "header-block": _header_block,
    "duplicate-body": _duplicate_body,
    "wrap-body": _wrap_body,
    "duplicate-ids": _duplicate_ids,
    "swap": _swap,
    "reflow-signature-value": _signature_value(_reflow),
    "flip-signature-value": _signature_value(_flip),
    "reflow-digest-value": _digest_value(_reflow),
    "flip-digest-value": _digest_value(_flip),
    "unpadded-digest-value": _digest_value(_unpadded),
    "second-key-info": _second_key_info,
}


def mutations() -> st.SearchStrategy[list[tuple[str, int]]]:
    return st.lists(st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 10_000)), max_size=3)


def mutate(signed: bytes, steps: Sequence[tuple[str, int]], namespace_on_envelope: bool) -> bytes:
    root = etree.fromstring(signed)
    for name, choice in steps:
        MUTATIONS[name](root, choice)
    result = etree.tostring(root.getroottree())
    if namespace_on_envelope:  # a declaration on the envelope (lxml cannot add one in place)
        result = result.replace(b"Envelope ", b'Envelope xmlns:later="urn:x-ggk-test:later" ', 1)
    return result


# --- verdicts -------------------------------------------------------------------------------------


@dataclass
class Paths:
    """How often the fast check decided (valid, invalid) and how often it left it to libxmlsec."""

    fast_valid: int = 0
    fast_invalid: int = 0
    fell_back: int = 0
    xmlsec1_runs: int = 0


def outcome(envelope: bytes, parts: Sequence[MimePart]) -> tuple[str, ...]:
    """("valid", reference URIs...) or ("invalid", location, description)."""
    try:
        verified = xmldsig.verify_envelope(
            envelope,
            parts,
            certificate_der=certificate_der("gemeente"),
            allowed_signature_algorithms=alg.accepted_signature_methods(allow_sha1=False),
            allowed_digest_algorithms=alg.accepted_digests(allow_sha1=False),
            expected_digest=None,
            expected_signature=None,
        )
    except EbmsError as exc:
        return ("invalid", exc.location, exc.description)
    return ("valid", *(r.uri for r in verified.references))


@contextmanager
def counting_fast_path(paths: Paths) -> Iterator[None]:
    real = xmldsig._verified_without_xpath

    def counted(*args: object, **kwargs: object) -> bool:
        try:
            decided = real(*args, **kwargs)  # type: ignore[arg-type]
        except EbmsError:
            paths.fast_invalid += 1
            raise
        if decided:
            paths.fast_valid += 1
        else:
            paths.fell_back += 1
        return decided

    with mock.patch.object(xmldsig, "_verified_without_xpath", counted):
        yield


@contextmanager
def libxmlsec_only() -> Iterator[None]:
    with mock.patch.object(xmldsig, "_fast_plan", return_value=None):
        yield


def xmlsec1_says_valid(envelope: bytes, parts: Sequence[MimePart]) -> bool:
    """``xmlsec1 --verify`` with the CPA certificate as the only key and the parts as cid: files."""
    assert XMLSEC1 is not None
    with tempfile.TemporaryDirectory(prefix="ggk-sigcheck-") as folder:
        path = Path(folder) / "signed.xml"
        path.write_bytes(envelope)
        arguments = [XMLSEC1, "--verify", "--pubkey-cert-pem", str(certificate_pem_path("gemeente"))]
        # Only the CPA key counts, as in verify_envelope (the CPA pins the signing certificate;
        # KeyInfo is not signed and is never read): without "rsa" as the only key data, xmlsec1
        # also parses KeyInfo's X509Data and calls a document invalid whose mutation only hit
        # that unsigned certificate text, which both verify_envelope paths rightly accept.
        arguments += ["--enabled-reference-uris", "empty,remote", "--enabled-key-data", "rsa"]
        for index, part in enumerate(parts):
            part_path = Path(folder) / f"part{index}.bin"
            part_path.write_bytes(part.data)
            arguments += [f"--url-map:cid:{part.content_id}", str(part_path)]
        result = subprocess.run([*arguments, str(path)], capture_output=True, timeout=60, check=False)
    return result.returncode == 0


def crypto_verdict(result: tuple[str, ...]) -> bool | None:
    """True/False when verify_envelope reached the cryptography, None when a shape check refused."""
    if result[0] == "valid":
        return True
    if result[1:] == ("//Header/Signature", "Invalid Signature."):
        return False
    return None
