"""Work done once per inbound request: one XML parse of the envelope (the signature is checked on that
tree), one decryption per encrypted part (the plaintext serves the duplicate fingerprint and the
security check), one parse of our Acknowledgment while signing it.

Counted by wrapping the hardened parser entry point (ggk_ebms.xml, which every XML read goes
through) and the decryption attempt, for one signed and encrypted osb-rm-e request handed to the
pipeline in this process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from ggk_ebms import xml
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.cpa.model import Profile
from ggk_ebms.mime.related import MimePart
from ggk_ebms.pipeline import security as pipeline_security
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.inbound import InboundPipeline
from ggk_ebms.pipeline.reply import InboundRequest
from ggk_ebms.security.identity import PeerIdentity
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore
from ggk_ebms.xml import DEFAULT_MAX_BYTES
from tests.endpoint import DEV
from tests.inbound_requests import sealed_request
from tests.outbound_support import make_cpa, side_settings


def test_signed_encrypted_request_is_parsed_once_and_decrypted_once(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cpa = make_cpa(1, 2, profile=Profile.OSB_RM_E, sync_reply=True, version="parse-once")
    gemeente = side_settings("gemeente", tmp_path, db_url, cpa, 1)
    rinis = side_settings("rinis", tmp_path, "sqlite://", cpa, 2)
    envelope, sealed, content_type, body = sealed_request(rinis, cpa)
    database = Database(db_url)
    database.upgrade()
    assert not [line for line in import_cpa_dir(gemeente, database) if "not imported" in line]
    pipeline = InboundPipeline(
        gemeente,
        MessageStore(database),
        AgreementCache(CpaRepository(database)),
        clock=SystemClock(),
        ids=UuidIdGenerator("gemeente.test"),
    )
    client = PeerIdentity.from_pem((DEV / "rinis" / "client.pem").read_bytes())

    parsed: list[tuple[bytes, str]] = []
    decrypted: list[str | None] = []
    real_parse_with = xml._parse_with
    real_attempt = pipeline_security.try_decrypt_part

    def counting_parse_with(
        parser: etree.XMLParser, data: bytes, *, max_bytes: int, what: str
    ) -> etree._Element:
        parsed.append((data, what))
        return real_parse_with(parser, data, max_bytes=max_bytes, what=what)

    def counting_attempt(part: MimePart, **kwargs: Any) -> Any:
        decrypted.append(part.content_id)
        return real_attempt(part, **kwargs)

    monkeypatch.setattr(xml, "_parse_with", counting_parse_with)
    monkeypatch.setattr(pipeline_security, "try_decrypt_part", counting_attempt)
    try:
        reply = pipeline.handle(InboundRequest(content_type, '"ebXML"', body, client, "test"))
    finally:
        database.dispose()

    assert reply.status == 200 and b"Acknowledgment" in reply.body
    assert b"SignatureValue" in reply.body  # our Ack is signed on this profile
    assert sum(1 for data, _ in parsed if data == envelope) == 1  # the envelope: one parse
    assert sum(1 for data, _ in parsed if data == sealed[0].data) == 1  # the encrypted part: one parse
    assert decrypted == ["p1@rinis.test"]  # one decryption, for the fingerprint and the check
    signing = [what for _, what in parsed if what == "SOAP envelope to sign"]
    assert signing == ["SOAP envelope to sign"]  # our Ack: one parse while signing
    assert max(len(data) for data, _ in parsed) <= DEFAULT_MAX_BYTES


def test_refused_encrypted_message_resent_reencrypted_gets_the_same_message_error(tmp_path: Path) -> None:
    """The one decryption also serves a message validation refuses: its fingerprint is over the
    plaintext, so a resend encrypted afresh is the same message (ebMS 2.0 §6.5.3) and gets the
    stored MessageError replayed, not "MessageId already used"."""
    _, cpa = make_cpa(1, 2, profile=Profile.OSB_RM_E, sync_reply=True, version="refused-twice")
    url = f"sqlite:///{tmp_path / 'g.db'}"
    gemeente = side_settings("gemeente", tmp_path, url, cpa, 1)
    rinis = side_settings("rinis", tmp_path, "sqlite://", cpa, 2)
    message_id = UuidIdGenerator("rinis.test").message_id()
    requests = [
        sealed_request(rinis, cpa, message_id=message_id, action="unknownAction")[2:] for _ in range(2)
    ]
    assert requests[0][1] != requests[1][1]  # two encryptions, two ciphertexts
    database = Database(url)
    database.upgrade()
    assert not [line for line in import_cpa_dir(gemeente, database) if "not imported" in line]
    pipeline = InboundPipeline(
        gemeente,
        MessageStore(database),
        AgreementCache(CpaRepository(database)),
        clock=SystemClock(),
        ids=UuidIdGenerator("gemeente.test"),
    )
    client = PeerIdentity.from_pem((DEV / "rinis" / "client.pem").read_bytes())
    try:
        first, second = (
            pipeline.handle(InboundRequest(content_type, '"ebXML"', body, client, "test"))
            for content_type, body in requests
        )
        stored = MessageStore(database).find("in", message_id)
    finally:
        database.dispose()
    assert first.status == 200 and b"MessageError" in first.body and b"ValueNotRecognized" in first.body
    assert (second.status, second.body) == (200, first.body)
    assert stored is not None and stored.status == "Failed"
