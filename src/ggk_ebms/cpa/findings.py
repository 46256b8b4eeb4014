"""What CPA validation reports: findings with a rule id, a location, a message and advice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lxml import etree

from ggk_ebms.cpa.model import Agreement

FindingSeverity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One thing validation noticed.

    ``rule`` is a stable id (``CPA-OIN``) documented in docs/cpa.md; ``location`` is an XPath-like
    path of local names (``/CollaborationProtocolAgreement/PartyInfo[2]/PartyId[1]``) or the file
    itself (``/``); ``advice`` says what to do about it.
    """

    severity: FindingSeverity
    rule: str
    location: str
    message: str
    advice: str

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.rule} at {self.location}: {self.message} ({self.advice})"


@dataclass
class Validation:
    """The outcome of ``validate_cpa``: every finding, and the agreement when it could be read."""

    findings: list[Finding] = field(default_factory=list)
    agreement: Agreement | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings do not block an import)."""
        return not self.errors

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}


def location_of(element: etree._Element, attribute: str | None = None) -> str:
    """``/CollaborationProtocolAgreement/PartyInfo[2]/PartyId[1]`` (positions count same-named siblings)."""
    steps: list[str] = []
    current: etree._Element | None = element
    while current is not None:
        name = etree.QName(current).localname
        parent = current.getparent()
        if parent is None:
            steps.append(name)
        else:
            same = [sib for sib in parent if sib.tag == current.tag]
            steps.append(f"{name}[{same.index(current) + 1}]")
        current = parent
    path = "/" + "/".join(reversed(steps))
    return f"{path}/@{attribute}" if attribute else path
