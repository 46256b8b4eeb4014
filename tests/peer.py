"""An independent ebMS 2.0 test peer: hand-built envelopes and SwA bodies, plain ``ssl``.

It shares no code with the endpoint's builders or TLS setup on purpose, so integration tests do
not test our code with itself. Envelopes are written out as text from the ebMS 2.0 structure.
"""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV = PROJECT_ROOT / "certs" / "dev"

EBMS_SERVICE = "urn:oasis:names:tc:ebxml-msg:service"


def client_ssl(party: str = "rinis", *, ca: Path = DEV / "ca.pem") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.load_cert_chain(str(DEV / party / "client.pem"), str(DEV / party / "client-key.pem"))
    return context


def now_z(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Header:
    cpa_id: str
    from_party: str
    to_party: str
    service: str
    action: str
    from_role: str | None = None
    to_role: str | None = None
    service_type: str | None = "urn:osb:services"
    party_type: str | None = "urn:osb:oin"
    message_id: str = field(default_factory=lambda: f"{uuid.uuid4()}@peer.test")
    conversation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: str = field(default_factory=now_z)
    ref_to_message_id: str | None = None
    time_to_live: str | None = None
    duplicate_elimination: bool = True


def _party(tag: str, party_id: str, party_type: str | None, role: str | None) -> str:
    type_attr = f' eb:type="{escape(party_type)}"' if party_type else ""
    role_xml = f"<eb:Role>{escape(role)}</eb:Role>" if role else ""
    return f"<eb:{tag}><eb:PartyId{type_attr}>{escape(party_id)}</eb:PartyId>{role_xml}</eb:{tag}>"


def envelope(
    h: Header,
    *,
    ack_requested: bool = True,
    sync_reply: bool = False,
    content_ids: tuple[str, ...] = (),
    manifest: bool | None = None,
    body_extra: str = "",
    header_extra: str = "",
    header_version: str = "2.0",
) -> bytes:
    service_type = f' eb:type="{escape(h.service_type)}"' if h.service_type else ""
    data = [
        f"<eb:MessageId>{escape(h.message_id)}</eb:MessageId>",
        f"<eb:Timestamp>{h.timestamp}</eb:Timestamp>",
    ]
    if h.ref_to_message_id:
        data.append(f"<eb:RefToMessageId>{escape(h.ref_to_message_id)}</eb:RefToMessageId>")
    if h.time_to_live:
        data.append(f"<eb:TimeToLive>{h.time_to_live}</eb:TimeToLive>")
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<SOAP:Envelope xmlns:SOAP="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:eb="http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink">',
        "<SOAP:Header>",
        f'<eb:MessageHeader eb:version="{header_version}" SOAP:mustUnderstand="1">',
        _party("From", h.from_party, h.party_type, h.from_role),
        _party("To", h.to_party, h.party_type, h.to_role),
        f"<eb:CPAId>{escape(h.cpa_id)}</eb:CPAId>",
        f"<eb:ConversationId>{escape(h.conversation_id)}</eb:ConversationId>",
        f"<eb:Service{service_type}>{escape(h.service)}</eb:Service>",
        f"<eb:Action>{escape(h.action)}</eb:Action>",
        "<eb:MessageData>" + "".join(data) + "</eb:MessageData>",
        "<eb:DuplicateElimination/>" if h.duplicate_elimination else "",
        "</eb:MessageHeader>",
    ]
    if sync_reply:
        parts.append(
            '<eb:SyncReply eb:version="2.0" SOAP:mustUnderstand="1"'
            ' SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"/>'
        )
    if ack_requested:
        parts.append(
            '<eb:AckRequested eb:version="2.0" SOAP:mustUnderstand="1" eb:signed="false"'
            ' SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"/>'
        )
    parts.append(header_extra)
    parts.append("</SOAP:Header><SOAP:Body>")
    if manifest or (manifest is None and content_ids):
        refs = "".join(
            f'<eb:Reference xlink:href="cid:{escape(cid)}" xlink:type="simple"/>' for cid in content_ids
        )
        parts.append(f'<eb:Manifest eb:version="2.0">{refs}</eb:Manifest>')
    parts.append(body_extra)
    parts.append("</SOAP:Body></SOAP:Envelope>")
    return "".join(parts).encode("utf-8")


def ping_envelope(cpa_id: str, from_party: str, to_party: str, *, sync_reply: bool = False) -> bytes:
    h = Header(
        cpa_id, from_party, to_party, EBMS_SERVICE, "Ping", service_type=None, duplicate_elimination=False
    )
    return envelope(h, ack_requested=False, sync_reply=sync_reply)


def status_request_envelope(
    cpa_id: str, from_party: str, to_party: str, ref: str, *, sync_reply: bool = True
) -> bytes:
    h = Header(
        cpa_id,
        from_party,
        to_party,
        EBMS_SERVICE,
        "StatusRequest",
        service_type=None,
        duplicate_elimination=False,
    )
    body = (
        '<eb:StatusRequest eb:version="2.0">'
        f"<eb:RefToMessageId>{escape(ref)}</eb:RefToMessageId></eb:StatusRequest>"
    )
    return envelope(h, ack_requested=False, sync_reply=sync_reply, body_extra=body)


def multipart(
    soap: bytes, attachments: list[tuple[str, str, bytes]], boundary: str | None = None
) -> tuple[str, bytes]:
    """SwA body: (content type header, body). attachments: (content id, content type, bytes)."""
    boundary = boundary or f"----=_Part_{uuid.uuid4().hex}"
    chunks = [
        f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n".encode(),
        b"Content-ID: <soap-part@peer.test>\r\n\r\n",
        soap,
        b"\r\n",
    ]
    for cid, ctype, data in attachments:
        chunks += [
            f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-ID: <{cid}>\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="text/xml"; boundary="{boundary}"; start="<soap-part@peer.test>"'
    return content_type, b"".join(chunks)


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def post(
    url: str,
    body: bytes,
    *,
    content_type: str = "text/xml; charset=UTF-8",
    soap_action: str | None = '"ebXML"',
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    extra_headers: dict[str, str] | None = None,
) -> Answer:
    headers = {"Content-Type": content_type, **(extra_headers or {})}
    if soap_action is not None:
        headers["SOAPAction"] = soap_action
    context = ssl_context or client_ssl()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, data=body, headers=headers, ssl=context) as response,
    ):
        return Answer(response.status, response.headers.get("Content-Type", ""), await response.read())
