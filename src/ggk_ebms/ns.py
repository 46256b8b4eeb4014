"""Namespaces, URNs and fixed values of ebMS 2.0, CPPA 2.0, XML security, StUF-GGk and iStandaarden."""

from __future__ import annotations

from typing import Final

# SOAP 1.1 and ebMS 2.0 (ebMS 2.0 §2.3, §3.1, KVS ch. 5)
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
EB: Final = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
XLINK: Final = "http://www.w3.org/1999/xlink"
XML: Final = "http://www.w3.org/XML/1998/namespace"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

# CPPA 2.0 (CPPA 2.0 schema)
CPPA: Final = "http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd"

# XML Signature and Encryption (ebMS 2.0 §4.1)
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
XENC: Final = "http://www.w3.org/2001/04/xmlenc#"
XENC11: Final = "http://www.w3.org/2009/xmlenc11#"

# ebMS fixed values (ebMS 2.0 §6.3, §7.1, §8; Digikoppeling KVS ch. 5; ebMS 2.0 §6.3)
EBMS_SERVICE: Final = "urn:oasis:names:tc:ebxml-msg:service"
EBMS_ERRORS_CONTEXT: Final = "urn:oasis:names:tc:ebxml-msg:service:errors"
ACTOR_TO_PARTY_MSH: Final = "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"
ACTOR_NEXT_MSH: Final = "urn:oasis:names:tc:ebxml-msg:actor:nextMSH"
SOAP_ACTOR_NEXT: Final = "http://schemas.xmlsoap.org/soap/actor/next"
EBMS_VERSION: Final = "2.0"
SOAP_ACTION_EBXML: Final = '"ebXML"'

# Digikoppeling types (KVS5: PartyId urn:osb:oin, Service urn:osb:services)
PARTY_TYPE_OIN: Final = "urn:osb:oin"
SERVICE_TYPE_OSB: Final = "urn:osb:services"

# StUF 03.01 and the three StUF-GGk envelope namespaces (StUF-GGk spec GGk0210/GGk0310)
STUF: Final = "http://www.egem.nl/StUF/StUF0301"
GGK_0210: Final = "http://www.stufstandaarden.nl/koppelvlak/ggk0210"
GGK_0210_SECTOR: Final = "http://www.stufstandaarden.nl/sectormodel/ggk/0210"
GGK_0310: Final = "http://www.egem.nl/StUF/sector/ggk/0310"
XMIME: Final = "http://www.w3.org/2005/05/xmlmime"

NSMAP_SOAP: Final = {"SOAP": SOAP_ENV, "eb": EB, "xlink": XLINK, "ds": DS}
