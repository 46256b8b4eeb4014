"""What the server hands the inbound pipeline, and what it gets back."""

from __future__ import annotations

import mmap
from collections.abc import Mapping
from dataclasses import dataclass, field

from ggk_ebms.ebms.build import build_soap_fault
from ggk_ebms.errors import SoapFaultError
from ggk_ebms.security.identity import PeerIdentity

SOAP_CONTENT_TYPE = "text/xml; charset=UTF-8"


@dataclass(frozen=True)
class InboundRequest:
    """One POST as the server read it.

    ``spooled``: a large body (over ``spool_threshold_bytes``) mapped read-only from the file it
    was spooled to while it arrived; ``body`` is then empty. The MIME split takes views of the
    mapping, so a 25 MB StUF envelope is not held as the body and again as its part
    (docs/performance.md "Memory"). ``content()`` is the body in either form.
    """

    content_type: str
    soap_action: str | None
    body: bytes
    peer: PeerIdentity | None
    remote: str
    spooled: mmap.mmap | None = field(default=None, repr=False, compare=False)

    def content(self) -> bytes | mmap.mmap:
        return self.body if self.spooled is None else self.spooled


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = SOAP_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def accepted(cls) -> Reply:
        """204: stored; any signal follows asynchronously (ebMS 2.0 App. B.2, KVS ch. 4)."""
        return cls(status=204)

    @classmethod
    def signal(cls, envelope: bytes, content_type: str = SOAP_CONTENT_TYPE) -> Reply:
        """200 carrying a synchronous MSH signal; SOAPAction
        "ebXML" as ebMS 2.0 App. B.2 and KVS ch. 4 say."""
        return cls(status=200, body=envelope, content_type=content_type, headers={"SOAPAction": '"ebXML"'})


def fault_reply(error: SoapFaultError) -> Reply:
    if not error.body:
        return Reply(status=error.http_status)
    return Reply(status=error.http_status, body=build_soap_fault(error.faultcode, error.faultstring))
