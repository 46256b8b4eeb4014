"""Identity first: is this client certificate a partner of any of our CPAs, before any parsing?

The pipeline decides per message whether the TLS client certificate may speak for the From party
of the CPA the message names (security/identity.py, Digikoppeling BEV ch. 3-5 rule). That needs the MIME split
and the XML parse first, so any certificate the trust store accepts could make us parse 30 MB of
hostile MIME. This gate runs before the body is even read: it admits a certificate only when it
could pass that rule for at least one stored CPA, i.e. when it is

1. DER-identical to a ClientCertificateRef certificate of a counterpart party of one of our CPAs,
2. (mode ``cpa-or-oin``) carries the OIN of such a counterpart party (EB004/EB005), or
3. carries one of the ``gateway_oins`` (EB014).

Everything else is refused with 403 before any work. The per-message rule still runs in the
pipeline; the gate is a cheap necessary condition, never a sufficient one.

The index of admitted certificates and OINs is checked against the stored CPAs at most every
``recheck`` seconds (a changed CPA is seen as fast as by the pipeline's AgreementCache): with a
``fingerprint`` (the CPAIds and hashes of every stored CPA, one query) it is rebuilt only when
that changed, otherwise from all CPAs each time. Both talk to the database, so callers run
``refresh`` off the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.errors import CpaError
from ggk_ebms.security.identity import ClientCertMode, PeerIdentity, strip_oin_suffix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartnerIndex:
    """Who may get past the gate: certificates (DER) and OINs of our CPAs' counterparts."""

    certificates: frozenset[bytes]
    oins: frozenset[str]

    @classmethod
    def build(cls, agreements: Iterable[Agreement], our_party_ids: Sequence[str]) -> PartnerIndex:
        certificates: set[bytes] = set()
        oins: set[str] = set()
        for agreement in agreements:
            try:
                theirs = lookup.counterpart(agreement, lookup.own_party(agreement, our_party_ids))
            except CpaError:
                continue  # not one of our agreements: admits nobody
            oins.update(strip_oin_suffix(pid.value) for pid in theirs.party_ids)
            for channel_id in theirs.channels:
                try:
                    cert = lookup.resolve_channel(theirs, channel_id).client_certificate
                except CpaError:
                    continue
                if cert is not None and cert.der is not None:
                    certificates.add(cert.der)
        return cls(frozenset(certificates), frozenset(oins))


def admit(
    peer: PeerIdentity | None,
    index: PartnerIndex,
    *,
    mode: ClientCertMode,
    gateway_oins: Sequence[str] = (),
) -> str | None:
    """None when ``peer`` may go on to the pipeline; else why not (for the log and the Fault)."""
    if peer is None:
        return "no TLS client certificate was presented"
    if peer.der in index.certificates:
        return None
    gateways = {strip_oin_suffix(g) for g in gateway_oins}
    if mode == "cpa-or-oin" and peer.oin is not None and (peer.oin in index.oins or peer.oin in gateways):
        return None
    return "the TLS client certificate belongs to no party of any of our CPAs"


class IdentityGate:
    """``admit`` against an index kept in step with the stored CPAs."""

    def __init__(
        self,
        load_agreements: Callable[[], list[Agreement]],
        *,
        our_party_ids: Sequence[str],
        mode: ClientCertMode,
        gateway_oins: Sequence[str] = (),
        recheck: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        fingerprint: Callable[[], object] | None = None,
    ) -> None:
        self._load = load_agreements
        self._fingerprint = fingerprint
        self._built_from: object = None
        self._our_party_ids = list(our_party_ids)
        self._mode: ClientCertMode = mode
        self._gateway_oins = list(gateway_oins)
        self._recheck = recheck
        self._monotonic = monotonic
        self._index: PartnerIndex | None = None
        self._built_at = 0.0
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether an index exists (possibly stale): then ``check`` can answer without I/O."""
        return self._index is not None

    def stale(self) -> bool:
        return self._index is None or self._monotonic() - self._built_at >= self._recheck

    def refresh(self) -> None:
        """Rebuild the index from the stored CPAs when stale (blocking: database I/O)."""
        with self._lock:
            if not self.stale():
                return
            # Read before the CPAs themselves: a CPA changed in between makes the next
            # fingerprint differ, so the index is never kept on an outdated one.
            checked_at = self._monotonic()
            seen = None if self._fingerprint is None else self._fingerprint()
            if self._index is None or seen is None or seen != self._built_from:
                self._index = PartnerIndex.build(self._load(), self._our_party_ids)
                self._built_from = seen
            self._built_at = checked_at

    def check(self, peer: PeerIdentity | None) -> str | None:
        index = self._index
        if index is None:
            raise RuntimeError("IdentityGate.check before the first refresh")
        return admit(peer, index, mode=self._mode, gateway_oins=self._gateway_oins)
