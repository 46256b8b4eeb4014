"""The opt-in (toestemming) CSV for the CBS Monitor Sociaal Domein (Inlichtingenbureau note).

One row per group of sets and verslagperiode: for the current period, and for the previous one
when a correction of it was delivered. Columns as the note prescribes, ';' separated, UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from ggk_ebms.cbs.names import TOESTEMMING_GROUPS

COLUMNS: Final = (
    "Naam organisatie",
    "verslagperiode",
    "naam verzoek",
    "conclusie",
    "datumconclusie",
    "naam van gebruiker",
    "emailadres",
    "telefoonnummer",
)
CONCLUSIES: Final = ("akkoord", "niet akkoord")


@dataclass(frozen=True)
class Toestemming:
    verslagperiode: str  # "2026H1"
    naam_verzoek: str  # a key of TOESTEMMING_GROUPS
    conclusie: str  # "akkoord" or "niet akkoord"
    datum: date


@dataclass(frozen=True)
class Gebruiker:
    """Who gave the opt-in: a civil servant's work contact data, sent to CBS on purpose."""

    organisatie: str
    naam: str
    emailadres: str
    telefoonnummer: str


def _clean(value: str, name: str) -> str:
    text = value.strip()
    if not text or len(text) > 200 or any(c in text for c in "\r\n"):
        raise ValueError(f"{name} moet gevuld zijn, op één regel, hoogstens 200 tekens")
    return text


def toestemming_csv(gebruiker: Gebruiker, rows: Sequence[Toestemming]) -> bytes:
    if not rows:
        raise ValueError("geen toestemmingen opgegeven")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        if row.naam_verzoek not in TOESTEMMING_GROUPS:
            raise ValueError(
                f"onbekend verzoek {row.naam_verzoek!r}; kies uit {', '.join(TOESTEMMING_GROUPS)}"
            )
        if row.conclusie not in CONCLUSIES:
            raise ValueError(f"conclusie {row.conclusie!r} is niet 'akkoord' of 'niet akkoord'")
        writer.writerow(
            [
                _clean(gebruiker.organisatie, "Naam organisatie"),
                _clean(row.verslagperiode, "verslagperiode"),
                row.naam_verzoek,
                row.conclusie,
                row.datum.isoformat(),
                _clean(gebruiker.naam, "naam van gebruiker"),
                _clean(gebruiker.emailadres, "emailadres"),
                _clean(gebruiker.telefoonnummer, "telefoonnummer"),
            ]
        )
    return out.getvalue().encode("utf-8")
