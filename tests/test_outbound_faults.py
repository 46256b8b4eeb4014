"""The test-only misbehaviour knobs of the RINIS counterpart (testing/faults.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from ggk_ebms.clock import FixedClock, SequenceIdGenerator
from ggk_ebms.errors import ConfigError, ErrorCode
from ggk_ebms.pipeline.reply import InboundRequest, Reply
from ggk_ebms.testing.faults import HOLD_LIMIT_S, FaultyHandler, TestFaults, parse_test_faults
from tests import peer
from tests.endpoint import GEMEENTE, RINIS
from tests.outbound_support import GEMEENTE_ACTION, SERVICE

TEST_OIN = [RINIS]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], TestFaults()),
        (["drop-ack"], TestFaults(drop_ack=True)),
        (["http-503:2"], TestFaults(unavailable_attempts=2)),
        (["delay-ms:250"], TestFaults(delay_ms=250)),
        (["message-error:Inconsistent"], TestFaults(message_error=ErrorCode.INCONSISTENT)),
        (["message-error"], TestFaults(message_error=ErrorCode.DELIVERY_FAILURE)),
        (["http-503:1", " delay-ms:5 "], TestFaults(unavailable_attempts=1, delay_ms=5)),
        (["hold-until:/tmp/release"], TestFaults(hold_until="/tmp/release")),
    ],
)
def test_parse(values: list[str], expected: TestFaults) -> None:
    assert parse_test_faults(values, TEST_OIN) == expected


@pytest.mark.parametrize(
    ("values", "party_ids", "message"),
    [
        (["drop-ack"], ["00000001234567890000"], "test OIN"),
        (["drop-ack"], [RINIS, "00000001234567890000"], "00000001234567890000"),
        (["explode"], TEST_OIN, "unknown knob"),
        (["http-503:two"], TEST_OIN, "whole number"),
        (["delay-ms:-1"], TEST_OIN, "between"),
        (["message-error:Oops"], TEST_OIN, "unknown ebMS error code"),
        (["drop-ack:1"], TEST_OIN, "unknown knob"),
        (["hold-until"], TEST_OIN, "needs a file path"),
    ],
)
def test_refusals(values: list[str], party_ids: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_test_faults(values, party_ids)


class _Inner:
    def __init__(self) -> None:
        self.calls = 0

    def handle(self, request: InboundRequest) -> Reply:
        self.calls += 1
        return Reply(status=200, body=b"inner")


def _request(body: bytes) -> InboundRequest:
    return InboundRequest("text/xml; charset=UTF-8", '"ebXML"', body, None, "127.0.0.1")


def _business(message_id: str = "m@peer.test") -> InboundRequest:
    h = peer.Header("cpa", GEMEENTE, RINIS, SERVICE, GEMEENTE_ACTION, from_role="Gemeente", to_role="GGk")
    h.message_id = message_id
    return _request(peer.envelope(h))


def _handler(faults: TestFaults, inner: _Inner, slept: list[float] | None = None) -> FaultyHandler:
    return FaultyHandler(
        inner,
        faults,
        clock=FixedClock(datetime(2026, 6, 1, tzinfo=UTC)),
        ids=SequenceIdGenerator("rinis"),
        max_body_bytes=1_000_000,
        sleep=(slept.append if slept is not None else lambda _s: None),
    )


def test_503_for_the_first_attempts_of_each_message() -> None:
    inner = _Inner()
    handler = _handler(TestFaults(unavailable_attempts=2), inner)
    statuses = [handler.handle(_business("a@p")).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert handler.handle(_business("b@p")).status == 503  # counted per MessageId
    assert inner.calls == 1


def test_drop_ack_keeps_nothing_and_delay_sleeps() -> None:
    inner, slept = _Inner(), []  # type: ignore[var-annotated]
    reply = _handler(TestFaults(drop_ack=True, delay_ms=40), inner, slept).handle(_business())
    assert reply.status == 204 and inner.calls == 0
    assert slept == [0.04]


def test_message_error_names_the_message_and_code() -> None:
    inner = _Inner()
    reply = _handler(TestFaults(message_error=ErrorCode.SECURITY_FAILURE), inner).handle(_business("x@p"))
    assert reply.status == 200 and inner.calls == 0
    root = etree.fromstring(reply.body)
    eb = "{http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd}"
    assert root.findtext(f".//{eb}RefToMessageId") == "x@p"
    assert root.find(f".//{eb}Error").get(f"{eb}errorCode") == "SecurityFailure"


def test_signals_and_unreadable_requests_pass_through() -> None:
    inner = _Inner()
    handler = _handler(TestFaults(drop_ack=True, unavailable_attempts=5), inner)
    assert handler.handle(_request(peer.ping_envelope("cpa", GEMEENTE, RINIS))).body == b"inner"
    assert handler.handle(_request(b"not xml")).body == b"inner"
    assert inner.calls == 2


def test_hold_until_keeps_the_request_until_the_file_exists(tmp_path: Path) -> None:
    release = tmp_path / "release"
    inner = _Inner()
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            release.touch()  # the test side lets go after the handler has waited three times
        assert inner.calls == 0  # still held: the pipeline has not seen it

    handler = FaultyHandler(
        inner,
        TestFaults(hold_until=str(release)),
        clock=FixedClock(datetime(2026, 6, 1, tzinfo=UTC)),
        ids=SequenceIdGenerator("rinis"),
        max_body_bytes=1_000_000,
        sleep=sleep,
    )
    assert handler.handle(_business()).body == b"inner"
    assert len(polls) == 3
    assert inner.calls == 1


def test_hold_until_gives_up_after_its_limit(tmp_path: Path) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds * 1000  # time runs fast: the limit passes after a few polls

    inner = _Inner()
    handler = FaultyHandler(
        inner,
        TestFaults(hold_until=str(tmp_path / "never")),
        clock=FixedClock(datetime(2026, 6, 1, tzinfo=UTC)),
        ids=SequenceIdGenerator("rinis"),
        max_body_bytes=1_000_000,
        sleep=sleep,
        monotonic=lambda: now[0],
    )
    assert handler.handle(_business()).body == b"inner"
    assert now[0] >= HOLD_LIMIT_S
