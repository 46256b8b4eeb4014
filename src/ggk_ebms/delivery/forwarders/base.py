"""What every forwarder gets and gives back.

A forwarder does one thing: put the message where its target says. It raises ``TransportError``
with ``retryable`` set when trying again later can help (a folder that cannot be written now, an
application that is down, 5xx) and unset when it cannot (4xx, a target that refuses this message);
the worker turns that into a retry with backoff or a parked, re-triable Failed message. Delivery is
at-least-once, so a forwarder must be safe to run twice for the same message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Protocol

from ggk_ebms.payloads.detect import PayloadInfo
from ggk_ebms.routing.table import Route
from ggk_ebms.spool import SpooledRange, whole
from ggk_ebms.stuf.model import StufMessage

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Delivery:
    """One message ready to forward. ``payload`` and ``envelope`` are personal data: never log them.

    ``envelope``: the StUF XML as received; a large one stays in its temporary file
    (ggk_ebms/spool.py): a target that needs it in memory takes ``envelope_bytes()``.
    """

    message_pk: int
    message_id: str
    cpa_id: str
    route: Route
    stuf: StufMessage
    envelope: bytes | SpooledRange = field(repr=False)
    payload: bytes = field(repr=False)
    info: PayloadInfo | None = None
    cross_ref_unknown: bool = False

    def envelope_bytes(self) -> bytes:
        return whole(self.envelope)

    @property
    def gemeentecode(self) -> str:
        return self.stuf.stuurgegevens.ontvanger.organisatie

    @property
    def berichttype(self) -> str:
        return self.stuf.functie or "onbekend"

    @property
    def referentienummer(self) -> str:
        return self.stuf.referentienummer

    @property
    def base_name(self) -> str:
        """``<gemeentecode>_<berichttype>_<referentienummer>``, safe as a file name (older envelope
        versions allow any 40 characters in a referentienummer)."""
        return "_".join(
            _UNSAFE.sub("-", part) for part in (self.gemeentecode, self.berichttype, self.referentienummer)
        )

    @property
    def filename(self) -> str:
        payload = self.stuf.payload
        if payload is not None and payload.bestandsnaam:
            return f"{self.base_name}_{_UNSAFE.sub('-', payload.bestandsnaam)}"
        return f"{self.base_name}.xml"

    def metadata(self) -> dict[str, object]:
        """Routing data for a metadata file or header: stuurgegevens and header values only (iStandaarden
        privacy elements, docs/rules.md)."""
        sg = self.stuf.stuurgegevens
        values: dict[str, object] = {
            "message_id": self.message_id,
            "cpa_id": self.cpa_id,
            "route": self.route.name,
            "berichtcode": self.stuf.kind.value,
            "envelope_version": None if self.stuf.version is None else self.stuf.version.spec,
            "gemeentecode": self.gemeentecode,
            "berichttype": self.berichttype,
            "referentienummer": sg.referentienummer,
            "crossRefnummer": sg.cross_refnummer,
            "crossRefnummer_unknown": self.cross_ref_unknown,
            "tijdstipBericht": sg.tijdstip_bericht,
            "zender": {"organisatie": sg.zender.organisatie, "applicatie": sg.zender.applicatie},
            "ontvanger": {"organisatie": sg.ontvanger.organisatie, "applicatie": sg.ontvanger.applicatie},
            "payload_sha256": self.stuf.payload.sha256 if self.stuf.payload else None,
            "payload_bytes": len(self.payload),
        }
        if self.info is not None:
            values["payload"] = {
                "standaard": self.info.standaard.value,
                "release": self.info.release,
                "berichtcode": self.info.bericht_code,
                "identificatie": self.info.identificatie,
                "dagtekening": self.info.dagtekening,
            }
        return values


@dataclass(frozen=True)
class Forwarded:
    """Where the message went; ``picked_up_later`` for the mailbox (Processed until fetched)."""

    where: str
    http_status: int | None = None
    picked_up_later: bool = False


class Forwarder(Protocol):
    def forward(self, delivery: Delivery) -> Forwarded: ...
