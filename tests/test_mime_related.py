"""multipart/related splitter and builder (ebMS 2.0 §2.1, KVS ch. 5): wire variants, errors, round trips."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ggk_ebms.errors import MimeError
from ggk_ebms.mime.related import MimePart, build_related, parse_content_type, split_body

SOAP = b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>'


def _related(*parts: bytes, boundary: str = "MIMEBoundary", nl: bytes = b"\r\n", close: bool = True) -> bytes:
    out = b"preamble text" + nl
    for part in parts:
        out += b"--" + boundary.encode() + nl + part + nl
    if close:
        out += b"--" + boundary.encode() + b"--" + nl + b"epilogue"
    return out


def _part(cid: str | None, ctype: str, data: bytes, nl: bytes = b"\r\n", extra: bytes = b"") -> bytes:
    head = b"Content-Type: " + ctype.encode() + nl
    if cid is not None:
        head += b"Content-ID: <" + cid.encode() + b">" + nl
    return head + extra + nl + data


CT = 'multipart/related; type="text/xml"; boundary="MIMEBoundary"; start="<soap@x>"'


def test_text_xml_is_the_envelope_alone() -> None:
    body = split_body("text/xml; charset=UTF-8", SOAP)
    assert body.soap.data == SOAP
    assert body.soap.content_id is None
    assert body.attachments == ()


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"], ids=["crlf", "bare-lf"])
def test_start_part_and_attachments_with_either_line_end(nl: bytes) -> None:
    raw = _related(
        _part("soap@x", "text/xml; charset=UTF-8", SOAP, nl),
        _part("payload-1@x", "application/xml", b"<a>1</a>", nl),
        _part("payload-2@x", "application/octet-stream", b"\x00\xff\r\n--not-a-boundary", nl),
        nl=nl,
    )
    body = split_body(CT, raw)
    assert body.soap.data == SOAP
    assert body.soap.content_id == "soap@x"
    assert [(p.content_id, p.content_type, p.data) for p in body.attachments] == [
        ("payload-1@x", "application/xml", b"<a>1</a>"),
        ("payload-2@x", "application/octet-stream", b"\x00\xff\r\n--not-a-boundary"),
    ]


def test_start_part_need_not_be_first() -> None:
    raw = _related(_part("payload@x", "application/xml", b"<a/>"), _part("soap@x", "text/xml", SOAP))
    body = split_body(CT, raw)
    assert body.soap.content_id == "soap@x"
    assert [p.content_id for p in body.attachments] == ["payload@x"]


def test_without_start_parameter_the_first_part_is_soap() -> None:
    raw = _related(_part("a@x", "text/xml", SOAP), _part("b@x", "application/xml", b"<b/>"))
    body = split_body("multipart/related; boundary=MIMEBoundary; type=text/xml", raw)
    assert body.soap.content_id == "a@x"


def test_boundary_line_may_carry_transport_padding() -> None:
    raw = b"--MIMEBoundary  \r\n" + _part("soap@x", "text/xml", SOAP) + b"\r\n--MIMEBoundary--"
    assert split_body(CT, raw).soap.data == SOAP


def test_line_that_only_starts_with_the_boundary_is_content() -> None:
    data = b"line\r\n--MIMEBoundaryX\r\nmore"
    raw = _related(_part("soap@x", "text/xml", SOAP), _part("p@x", "text/plain", data))
    assert split_body(CT, raw).attachments[0].data == data


def test_folded_header_is_joined_and_names_are_lower_case() -> None:
    raw = _related(
        b'Content-Type: text/xml;\r\n\tcharset="UTF-8"\r\nContent-ID: <soap@x>\r\nX-Extra: one\r\n\r\n' + SOAP
    )
    part = split_body(CT, raw).soap
    assert part.content_type == 'text/xml; charset="UTF-8"'
    assert part.headers["x-extra"] == "one"


@pytest.mark.parametrize(
    ("cte", "encoded", "decoded"),
    [
        ("base64", base64.encodebytes(b"\x00binary\xff" * 20), b"\x00binary\xff" * 20),
        ("quoted-printable", b"caf=C3=A9 =\r\nsoft break", "café soft break".encode()),
        ("binary", b"\x00\x01", b"\x00\x01"),
        ("8bit", "é".encode(), "é".encode()),
        ("7bit", b"plain", b"plain"),
    ],
)
def test_content_transfer_encodings_are_decoded(cte: str, encoded: bytes, decoded: bytes) -> None:
    extra = f"Content-Transfer-Encoding: {cte}\r\n".encode()
    raw = _related(
        _part("soap@x", "text/xml", SOAP), _part("p@x", "application/octet-stream", encoded, extra=extra)
    )
    assert split_body(CT, raw).attachments[0].data == decoded


def test_unquoted_boundary_and_unbracketed_start() -> None:
    raw = _related(_part("soap@x", "text/xml", SOAP), boundary="b-1")
    body = split_body("multipart/related;type=text/xml;boundary=b-1;start=soap@x", raw)
    assert body.soap.data == SOAP


def test_part_with_headers_and_empty_content() -> None:
    raw = b"--MIMEBoundary\r\nContent-ID: <soap@x>\r\n\r\n--MIMEBoundary--\r\n"
    assert split_body(CT, raw).soap.data == b""


@pytest.mark.parametrize(
    ("content_type", "raw", "message"),
    [
        ("multipart/related; type=text/xml", b"--x\r\n\r\n", "no boundary"),
        (CT.replace("MIMEBoundary", "Other"), _related(_part("soap@x", "text/xml", SOAP)), "wrong boundary"),
        (CT, _related(_part("soap@x", "text/xml", SOAP), close=False), "truncated"),
        (CT, b"--MIMEBoundary\r\nContent-ID: <soap@x>\r\n\r\nabc\r\n--MIMEBoundary", "truncated"),
        (CT, _related(_part("other@x", "text/xml", SOAP)), "start part missing"),
        (
            CT,
            _related(_part("soap@x", "text/xml", SOAP), _part("soap@x", "text/xml", SOAP)),
            "duplicate Content-ID",
        ),
        (CT, _related(b"\r\n" + SOAP), "no headers"),
        (CT, _related(b"Content-ID: <soap@x>\r\nno empty line"), "no header block"),
        (
            CT,
            _related(_part("soap@x", "text/xml", SOAP, extra=b"Content-Transfer-Encoding: x-uu\r\n")),
            "unsupported",
        ),
        (
            CT,
            _related(_part("soap@x", "text/xml", b"!!", extra=b"Content-Transfer-Encoding: base64\r\n")),
            "base64",
        ),
        ("application/json", b"{}", "unsupported Content-Type"),
        ('multipart/related; type="application/xop+xml"; boundary=MIMEBoundary', b"", "not text/xml"),
        ("garbage", b"", "no valid media type"),
    ],
    ids=[
        "no-boundary",
        "wrong-boundary",
        "no-close-delimiter",
        "close-delimiter-cut",
        "start-missing",
        "duplicate-cid",
        "no-headers",
        "no-header-block",
        "unknown-cte",
        "bad-base64",
        "not-soap",
        "mtom",
        "no-media-type",
    ],
)
def test_unusable_bodies_raise_mime_error(content_type: str, raw: bytes, message: str) -> None:
    with pytest.raises(MimeError, match=message):
        split_body(content_type, raw)


def test_too_many_parts() -> None:
    raw = _related(*(_part(f"p{i}@x", "text/plain", b"x") for i in range(4)))
    with pytest.raises(MimeError, match="too many MIME parts"):
        split_body("multipart/related; boundary=MIMEBoundary", raw, max_parts=3)
    assert len(split_body("multipart/related; boundary=MIMEBoundary", raw, max_parts=4).attachments) == 3


def test_content_type_parameters() -> None:
    parsed = parse_content_type('Multipart/Related; Boundary="a \\"b\\""; type=text/xml; start="<x@y>"')
    assert parsed.media_type == "multipart/related"
    assert dict(parsed.params) == {"boundary": 'a "b"', "type": "text/xml", "start": "<x@y>"}


def test_build_writes_swa_headers() -> None:
    header, body = build_related(
        SOAP, [MimePart("p@x", "application/xml", b"<a/>")], boundary="B", start_id="soap@x"
    )
    assert header == 'multipart/related; type="text/xml"; boundary="B"; start="<soap@x>"'
    assert body == (
        b"--B\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-ID: <soap@x>\r\n\r\n"
        + SOAP
        + b"\r\n--B\r\nContent-Type: application/xml\r\nContent-ID: <p@x>\r\n\r\n<a/>\r\n--B--\r\n"
    )


@pytest.mark.parametrize(
    ("attachments", "kwargs", "message"),
    [
        ([MimePart(None, "text/plain", b"")], {}, "Content-ID"),
        ([MimePart("a\r\nX: y", "text/plain", b"")], {}, "Content-ID"),
        ([MimePart("a\\b@x", "text/plain", b"")], {}, "Content-ID"),
        ([MimePart("a@x", "text/plain\r\nX: y", b"")], {}, "Content-Type"),
        ([MimePart("a@x", "text/plain", b""), MimePart("a@x", "text/plain", b"")], {}, "duplicate"),
        ([MimePart("a@x", "text/plain", b"x--B")], {"boundary": "B"}, "occurs inside"),
        ([MimePart("a@x", "text/plain", b"")], {"start_id": "a@x"}, "also used"),
        ([], {"boundary": "bad\nboundary"}, "bchars"),
    ],
)
def test_build_refuses_what_would_break_the_body(
    attachments: list[MimePart], kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(MimeError, match=message):
        build_related(SOAP, attachments, **kwargs)


_CIDS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='<>"\\'), min_size=1
)


@settings(max_examples=200, deadline=None)
@given(
    soap=st.binary(max_size=300),
    payloads=st.lists(
        st.tuples(
            _CIDS, st.binary(max_size=300) | st.sampled_from([b"--", b"\r\n--", b"\n--x--\r\n", b"\r"])
        ),
        max_size=5,
        unique_by=lambda t: t[0],
    ),
)
def test_round_trip_any_bytes(soap: bytes, payloads: list[tuple[str, bytes]]) -> None:
    parts = [MimePart(cid, "application/octet-stream", data) for cid, data in payloads]
    header, body = build_related(soap, parts)
    split = split_body(header, body)
    assert split.soap.data == soap
    assert [(p.content_id, p.data) for p in split.attachments] == [(p.content_id, p.data) for p in parts]


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200).map(lambda b: b + b"\r\n--b\r\nContent-ID: <z>\r\n\r\n--b--"))
def test_round_trip_when_a_part_contains_the_generated_style_of_boundary(data: bytes) -> None:
    header, body = build_related(b"<x/>", [MimePart("p@x", "text/plain", data)])
    assert split_body(header, body).attachments[0].data == data


_WIRE = st.lists(
    st.sampled_from(
        [
            b"--B",
            b"--B--",
            b"\r\n",
            b"\n",
            b"Content-ID: <a>",
            b"Content-ID: <b>",
            b"Content-Type: x/y",
            b"Content-Transfer-Encoding: base64",
            b"Content-Transfer-Encoding: quoted-printable",
            b" ",
            b"\t",
            b"=",
            b"abc",
        ]
    )
    | st.binary(max_size=20),
    max_size=40,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(
    content_type=st.sampled_from(
        ['multipart/related; boundary=B; start="<a>"', "multipart/related; boundary=B", "text/xml"]
    )
    | st.text(max_size=60),
    raw=_WIRE,
)
def test_split_raises_nothing_but_mime_error(content_type: str, raw: bytes) -> None:
    refusal: str | None = None
    try:
        body = split_body(content_type, raw, max_parts=5)
    except MimeError as exc:
        refusal = str(exc)
    if refusal is None:
        assert len(body.attachments) < 5
    else:
        assert refusal  # every refusal says why
