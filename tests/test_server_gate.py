"""The identity gate (server/gate.py) and the per-identity budget (server/app.py), without a server."""

from __future__ import annotations

import pytest

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.server.app import _Budget
from ggk_ebms.server.gate import IdentityGate, PartnerIndex, admit
from tests.limits_support import UNKNOWN_OIN, dev_ca
from tests.peer import DEV, PROJECT_ROOT


def agreements() -> list[Agreement]:
    return [
        parse_agreement(p.read_bytes(), max_bytes=5 * 1024 * 1024)
        for p in sorted((PROJECT_ROOT / "cpa").glob("*.xml"))
    ]


def stranger(oin: str | None = UNKNOWN_OIN) -> PeerIdentity:
    from datetime import UTC, datetime, timedelta

    from ggk_ebms.testing.pki import issue_client_certificate

    now = datetime.now(UTC)
    issued = issue_client_certificate(
        dev_ca(), oin=oin, common_name="x", not_before=now, not_after=now + timedelta(days=1)
    )
    return PeerIdentity.from_der(issued.der)


RINIS_CLIENT = PeerIdentity.from_pem((DEV / "rinis" / "client.pem").read_bytes())
GEMEENTE_CLIENT = PeerIdentity.from_pem((DEV / "gemeente" / "client.pem").read_bytes())


def test_index_holds_the_counterparts_only() -> None:
    index = PartnerIndex.build(agreements(), [DEV_GEMEENTE_OIN])
    assert index.oins == {DEV_RINIS_OIN}
    assert RINIS_CLIENT.der in index.certificates
    assert GEMEENTE_CLIENT.der not in index.certificates


@pytest.mark.parametrize("mode", ["strict", "cpa-or-oin"])
def test_partner_certificate_is_admitted(mode: str) -> None:
    index = PartnerIndex.build(agreements(), [DEV_GEMEENTE_OIN])
    assert admit(RINIS_CLIENT, index, mode=mode) is None  # type: ignore[arg-type]


def test_partner_oin_on_another_certificate_is_admitted_unless_strict() -> None:
    index = PartnerIndex.build(agreements(), [DEV_GEMEENTE_OIN])
    peer = stranger(DEV_RINIS_OIN)
    assert admit(peer, index, mode="cpa-or-oin") is None
    assert admit(peer, index, mode="strict") is not None


def test_strangers_our_own_certificate_and_no_certificate_are_refused() -> None:
    index = PartnerIndex.build(agreements(), [DEV_GEMEENTE_OIN])
    for peer in (stranger(), stranger(None), GEMEENTE_CLIENT, None):
        assert admit(peer, index, mode="cpa-or-oin") is not None


def test_gateway_oin_is_admitted() -> None:
    index = PartnerIndex.build(agreements(), [DEV_GEMEENTE_OIN])
    assert admit(stranger(), index, mode="cpa-or-oin", gateway_oins=[UNKNOWN_OIN + "_T"]) is None


def test_gate_rebuilds_after_recheck() -> None:
    now = [0.0]
    stored: list[Agreement] = []
    gate = IdentityGate(
        lambda: list(stored), our_party_ids=[DEV_GEMEENTE_OIN], mode="cpa-or-oin", monotonic=lambda: now[0]
    )
    assert not gate.ready and gate.stale()
    gate.refresh()
    assert gate.check(RINIS_CLIENT) is not None
    stored.extend(agreements())
    gate.refresh()  # not stale yet: the old index stays
    assert gate.check(RINIS_CLIENT) is not None
    now[0] = 5.0
    assert gate.stale()
    gate.refresh()
    assert gate.check(RINIS_CLIENT) is None


def test_gate_with_a_fingerprint_reads_the_cpas_only_when_it_changed() -> None:
    """``serve`` passes the CPAIds and hashes of every stored CPA (one query): a recheck that
    finds them unchanged keeps the index without reading the CPAs themselves."""
    now = [0.0]
    stored: list[Agreement] = []
    hashes = {"cpa-a": "1"}
    loads = [0]

    def load() -> list[Agreement]:
        loads[0] += 1
        return list(stored)

    gate = IdentityGate(
        load,
        our_party_ids=[DEV_GEMEENTE_OIN],
        mode="cpa-or-oin",
        monotonic=lambda: now[0],
        fingerprint=lambda: dict(hashes),
    )
    gate.refresh()
    assert (loads[0], gate.check(RINIS_CLIENT) is not None) == (1, True)
    now[0] = 5.0
    gate.refresh()  # stale, but the CPAs are as they were
    assert (loads[0], gate.stale()) == (1, False)
    stored.extend(agreements())
    hashes["cpa-a"] = "2"  # another process imported a new version
    now[0] = 10.0
    gate.refresh()
    assert (loads[0], gate.check(RINIS_CLIENT)) == (2, None)
    del hashes["cpa-a"]
    stored.clear()  # and then deleted it
    now[0] = 15.0
    gate.refresh()
    assert (loads[0], gate.check(RINIS_CLIENT) is not None) == (3, True)


async def test_budget_gives_each_identity_its_own_turns() -> None:
    budget = _Budget(1)
    release_a = await budget.acquire("a", 60)
    with pytest.raises(TimeoutError):
        await budget.acquire("a", 0.01)
    release_b = await budget.acquire("b", 60)  # another identity is not held up
    release_b()
    release_a()
    release_a()  # giving a turn back twice is harmless
    again = await budget.acquire("a", 60)
    again()
    assert budget._semaphores == {}
