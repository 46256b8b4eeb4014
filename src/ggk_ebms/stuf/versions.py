"""The three StUF-GGk envelope versions we accept, told
apart by the GGK namespace (StUF-GGk spec GGk0210/GGk0310).

All three are read. We send ggk0210 (spec 2.1.04 patch 4) or, when an exchange is set to it,
the 2.1.02/2.1.03 form (stuf/generations.py). The GGk portal fixes the version per
berichtuitwisseling (IB798 when it differs), so each exchange accepts only its own generation
(docs/exchanges.md): being able to read a version is not agreeing to use it.
"""

from __future__ import annotations

from enum import Enum

from ggk_ebms import ns


class EnvelopeVersion(Enum):
    """An envelope version: its GGK namespace, spec label and how it carries the payload."""

    GGK0210 = (ns.GGK_0210, "2.1.04")
    GGK0210_SECTOR = (ns.GGK_0210_SECTOR, "2.1.02/2.1.03")
    GGK0310 = (ns.GGK_0310, "2.0-2.1.01")

    def __init__(self, namespace: str, spec: str) -> None:
        self.namespace = namespace
        self.spec = spec

    @property
    def current(self) -> bool:
        return self is EnvelopeVersion.GGK0210

    @property
    def requires_uuid4(self) -> bool:
        """Only 2.1.04 restricts referentienummer/crossRefnummer
        to UUID v4 by XSD pattern (StUF-GGk spec: Di01/Du01)."""
        return self is EnvelopeVersion.GGK0210

    @property
    def bericht_with_content_type(self) -> bool:
        """Before 2.1.04 ``GGK:bericht`` itself is the base64 with
        ``xmime:contentType`` (StUF-GGk spec GGk0210/GGk0310)."""
        return self is not EnvelopeVersion.GGK0210

    @property
    def functie_carries_version(self) -> bool:
        """In 2.0 ``functie`` carried the version as ``WMO301-0204`` (StUF-GGk spec GGk0210/GGk0310)."""
        return self is EnvelopeVersion.GGK0310


def version_for_namespace(namespace: str) -> EnvelopeVersion | None:
    for version in EnvelopeVersion:
        if version.namespace == namespace:
            return version
    return None
