"""Security profiles end to end: the signed and encrypted profiles between two real endpoints on loopback.

The gemeente's worker sends on a CPA of each profile; the RINIS counterpart (the same endpoint as
the other party) decrypts and verifies, stores the plaintext, and acknowledges — signed, with the
references of the message echoed, when its MSH channel signs. Also: Ping/Pong on a signed CPA,
and a message whose signature the receiver cannot accept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.cpa.model import Profile
from ggk_ebms.pipeline.ping import ping
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.transport.client import EbmsClient
from tests.outbound_support import eventually, free_port, make_cpa, side_settings, started, status_of, submit

pytestmark = pytest.mark.slow

DS = "{http://www.w3.org/2000/09/xmldsig#}"
EB = "{http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd}"
PAYLOAD = b"<Bericht><Bsn>999993653</Bsn></Bericht>"


def _final(database, pk: int) -> str | None:  # type: ignore[no-untyped-def]
    status = status_of(database, pk)
    return status if status in ("Delivered", "DeliveryFailed", "Expired") else None


@pytest.mark.parametrize(
    ("profile", "sync"),
    [
        (Profile.OSB_BE_S, False),
        (Profile.OSB_RM_S, False),
        (Profile.OSB_RM_S, True),
        (Profile.OSB_BE_E, False),
        (Profile.OSB_RM_E, False),
    ],
)
async def test_profile_end_to_end(tmp_path: Path, profile: Profile, sync: bool) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, profile=profile, sync_reply=sync, version=f"{profile.value}-t")
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    async with started(rinis) as partner, started(gemeente) as us:
        sent = submit(gemeente, us.database, cpa_id, PAYLOAD)
        ours = MessageStore(us.database)
        envelope = ours.get(sent.pk).envelope or b""
        assert etree.fromstring(envelope).find(f".//{DS}Signature") is not None  # signed at submit
        stored_parts = ours.parts(sent.pk)
        if profile.encrypted:
            assert PAYLOAD not in stored_parts[0].data  # what goes on the wire is ciphertext
            assert b"EncryptedData" in stored_parts[0].data
        assert await eventually(lambda: _final(us.database, sent.pk), what="final") == "Delivered"
        theirs = MessageStore(partner.database)
        received = theirs.find("in", sent.message_id)
        assert received is not None
        assert received.status == "Received"
        assert [p.data for p in theirs.parts(received.pk)] == [PAYLOAD]  # verified plaintext
        if profile.reliable:
            ack = next(m for m in theirs.list_related(sent.message_id) if m.kind == "Acknowledgment")
            root = etree.fromstring(theirs.get(ack.pk).envelope or b"")
            assert root.find(f".//{DS}Signature") is not None  # our MSH channel signs signals
            echoed = root.findall(f".//{EB}Acknowledgment/{DS}Reference")
            assert {r.get("URI") for r in echoed} >= {"", f"cid:{stored_parts[0].content_id}"}


async def test_ping_on_a_signed_cpa(tmp_path: Path) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, profile=Profile.OSB_RM_S, version="ping-s")
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    ids = UuidIdGenerator("localhost")
    async with (
        started(rinis),
        started(gemeente, worker=False) as us,
        EbmsClient(client_context_from_settings(gemeente)) as client,
    ):
        result = await ping(gemeente, us.database, client, cpa_id=cpa_id, ids=ids, clock=SystemClock())
    assert result.diagnosis.ok, result.diagnosis.summary


async def test_signature_by_a_key_not_in_the_cpa_is_refused(tmp_path: Path) -> None:
    """The gemeente signs with the RINIS key: the receiver checks against the CPA's certificate."""
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, profile=Profile.OSB_RM_S, version="wrong-key")
    dev = Path(__file__).resolve().parent.parent / "certs" / "dev"
    gemeente = side_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'g.db'}", cpa, g_port)
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    wrong = gemeente.replace(signing_key=dev / "rinis" / "client-key.pem")
    async with started(rinis) as partner, started(gemeente, worker=False) as us:
        with pytest.raises(Exception, match="signing key does not belong"):
            submit(wrong, us.database, cpa_id, PAYLOAD)
        assert MessageStore(partner.database).list(direction="in") == []
