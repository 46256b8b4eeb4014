"""The SOAP Faults an inbound request can be refused with, worded as the reference adapter words them.

These answer a request as a whole where no MessageError can be addressed (ebMS 2.0 §4.2, "HTTP 500
instead"); the texts are the catalogue's (docs/ebms.md catalogue), so partners' test suites recognise them.
Peer-supplied values that end up in a fault string are cut short and stripped of control
characters: the fault goes back to whoever sent the request.
"""

from __future__ import annotations

from typing import Final

from ggk_ebms.errors import SoapFaultError

_MAX_ECHO: Final = 100


def cpa_not_found_fault(cpa_id: str) -> SoapFaultError:
    """Catalogue #13: unknown CPAId -> 500, Fault Client "CPA <cpaId>
    not found!" (CPPA 2.0; docs/rules.md receive-side check 1)."""
    return SoapFaultError(f"CPA {_echo(cpa_id)} not found!")


def soap_action_fault(soap_action: str | None) -> SoapFaultError:
    """Catalogue #3: SOAPAction is not "ebXML" (KVS5) -> 500, Fault Client."""
    return SoapFaultError(f"Unable to process message! SOAPAction={_echo(soap_action or '')}")


def message_id_reused_fault(message_id: str) -> SoapFaultError:
    """ebMS 2.0 §6.5.3: the MessageId arrived before with other content -> 500, no delivery, no Ack."""
    return SoapFaultError(f"MessageId {_echo(message_id)} already used!")


def _echo(value: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value[:_MAX_ECHO])
    return cleaned + ("…" if len(value) > _MAX_ECHO else "")
