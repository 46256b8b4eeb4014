"""Retry table, retry timing, TimeToLive and the send status model (KVS ch. 5 HTTP status handling; ebMS 2.0
§6.4, BP ch. 3; ebMS 2.0 §7.1.2, docs/rules.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ggk_ebms.errors import TransportError
from ggk_ebms.lifecycle import Event
from ggk_ebms.transport.result import HttpResult, Layer
from ggk_ebms.transport.retry import (
    DEFAULT_POLICY,
    ResponseClass,
    RetryPolicy,
    SignalKind,
    classify_error,
    classify_response,
    classify_signal,
    next_attempt,
    record_attempt,
    time_to_live,
    transport_retry_at,
    when_retries_end,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BP_RETRIES, BP_INTERVAL = 8, timedelta(hours=3)  # BP defaults (ebMS 2.0 §6.4, BP ch. 3)
SAMPLE_RETRIES, SAMPLE_INTERVAL = 5, timedelta(minutes=5)  # the reference sample CPAs

C = ResponseClass


@pytest.mark.parametrize(
    ("status", "reliable", "envelope", "sync_reply", "expected"),
    [
        # 204 / 2xx empty: BE -> Delivered; RM -> await the async Ack
        (204, False, False, False, C.DELIVERED),
        (200, False, False, False, C.DELIVERED),
        (202, False, False, False, C.DELIVERED),
        (204, True, False, False, C.AWAIT_ACK),
        (200, True, False, False, C.AWAIT_ACK),
        # RM + SyncReply, 2xx without Ack -> retry
        (204, True, False, True, C.RETRY),
        (200, True, False, True, C.RETRY),
        # 200 + envelope -> inspect (Ack / MessageError decided by classify_signal)
        (200, False, True, False, C.INSPECT),
        (200, True, True, True, C.INSPECT),
        # 1xx, 3xx, 4xx fatal, also for RM
        (100, True, False, False, C.FAILED),
        (301, True, False, False, C.FAILED),
        (302, False, False, False, C.FAILED),
        (400, True, False, False, C.FAILED),
        (403, True, False, False, C.FAILED),
        (404, True, False, False, C.FAILED),
        (413, True, False, False, C.FAILED),
        # ... except http.errors.client.recoverable
        (408, True, False, False, C.RETRY),
        (429, True, False, False, C.RETRY),
        # 5xx recoverable except http.errors.server.unrecoverable
        (500, True, False, False, C.RETRY),
        (500, True, True, False, C.RETRY),  # a SOAP Fault in a 500 is still a 5xx
        (502, True, False, False, C.RETRY),
        (503, True, False, False, C.RETRY),
        (504, False, False, False, C.RETRY),
        (501, True, False, False, C.FAILED),
        (505, True, False, False, C.FAILED),
        (510, True, False, False, C.FAILED),
        # outside HTTP
        (99, True, False, False, C.FAILED),
        (600, True, False, False, C.FAILED),
    ],
)
def test_retry_table(status: int, reliable: bool, envelope: bool, sync_reply: bool, expected: C) -> None:
    assert (
        classify_response(status, reliable=reliable, body_is_envelope=envelope, sync_reply=sync_reply)
        is expected
    )


def test_recoverable_sets_are_configurable() -> None:
    policy = RetryPolicy(
        recoverable_client_statuses=frozenset({409}), unrecoverable_server_statuses=frozenset()
    )
    assert classify_response(409, reliable=True, body_is_envelope=False, policy=policy) is C.RETRY
    assert classify_response(429, reliable=True, body_is_envelope=False, policy=policy) is C.FAILED
    assert classify_response(501, reliable=True, body_is_envelope=False, policy=policy) is C.RETRY


@pytest.mark.parametrize(
    "changes",
    [
        {"recoverable_client_statuses": frozenset({503})},
        {"unrecoverable_server_statuses": frozenset({404})},
        {"transport_backoff": (timedelta(0),)},
        {"minimum_retry_interval": timedelta(seconds=-1)},
    ],
)
def test_policy_refuses_codes_from_the_wrong_class(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signal", "reliable", "sync_reply", "expected"),
    [
        (SignalKind.ACKNOWLEDGMENT, True, False, C.DELIVERED),
        (SignalKind.ACKNOWLEDGMENT, True, True, C.DELIVERED),
        (SignalKind.MESSAGE_ERROR, True, True, C.FAILED),
        (SignalKind.MESSAGE_ERROR, False, False, C.FAILED),
        (SignalKind.OTHER, False, False, C.DELIVERED),
        (SignalKind.OTHER, True, False, C.AWAIT_ACK),
        (SignalKind.OTHER, True, True, C.RETRY),
    ],
)
def test_response_envelope_table(signal: SignalKind, reliable: bool, sync_reply: bool, expected: C) -> None:
    assert classify_signal(signal, reliable=reliable, sync_reply=sync_reply) is expected


def test_transport_errors_retry_unless_marked_otherwise() -> None:
    assert classify_error(TransportError("refused", retryable=True, layer="connect")) is C.RETRY
    assert (
        classify_error(TransportError("not the CPA's", retryable=False, layer="tls-server-not-in-cpa"))
        is C.FAILED
    )


@pytest.mark.parametrize(
    ("retries", "interval", "expected"),
    [
        (BP_RETRIES, BP_INTERVAL, T0 + timedelta(hours=27)),  # ebMS 2.0 §6.4, BP ch. 3: BP defaults +27 h
        (SAMPLE_RETRIES, SAMPLE_INTERVAL, T0 + timedelta(minutes=30)),  # samples: +30 min
        (0, timedelta(minutes=10), T0 + timedelta(minutes=10)),
    ],
)
def test_time_to_live(retries: int, interval: timedelta, expected: datetime) -> None:
    assert time_to_live(T0, retries, interval) == expected


def test_time_to_live_refuses_negative_retries() -> None:
    with pytest.raises(ValueError, match="negative"):
        time_to_live(T0, -1, BP_INTERVAL)


def _schedule(retries: int, interval: timedelta) -> list[datetime]:
    """Every send time when every attempt fails the moment it is made."""
    ttl = time_to_live(T0, retries, interval)
    sends, now, attempt = [T0], T0, 1
    while at := next_attempt(
        attempt=attempt, retries=retries, retry_interval=interval, time_to_live=ttl, now=now
    ):
        sends.append(at)
        now, attempt = at, attempt + 1
    return sends


def test_bp_defaults_send_nine_times_three_hours_apart() -> None:
    assert _schedule(BP_RETRIES, BP_INTERVAL) == [T0 + BP_INTERVAL * n for n in range(9)]


def test_sample_cpa_sends_six_times_five_minutes_apart() -> None:
    assert _schedule(SAMPLE_RETRIES, SAMPLE_INTERVAL) == [T0 + SAMPLE_INTERVAL * n for n in range(6)]


@pytest.mark.parametrize(
    ("attempt", "now", "ttl", "expected"),
    [
        (1, T0, T0 + timedelta(minutes=30), T0 + SAMPLE_INTERVAL),  # first failure: retry one interval later
        (5, T0 + timedelta(minutes=20), T0 + timedelta(minutes=30), T0 + timedelta(minutes=25)),
        (6, T0 + timedelta(minutes=25), T0 + timedelta(minutes=30), None),  # Retries (5) used up
        (2, T0 + timedelta(minutes=30), T0 + timedelta(minutes=30), None),  # TTL reached
        (2, T0 + timedelta(minutes=40), T0 + timedelta(minutes=30), None),  # TTL passed
        (2, T0 + timedelta(minutes=26), T0 + timedelta(minutes=30), None),  # retry would land past TTL
        (2, T0 + timedelta(minutes=7), None, T0 + timedelta(minutes=12)),  # no TTL: retries only
    ],
)
def test_next_attempt(attempt: int, now: datetime, ttl: datetime | None, expected: datetime | None) -> None:
    assert (
        next_attempt(
            attempt=attempt, retries=SAMPLE_RETRIES, retry_interval=SAMPLE_INTERVAL, time_to_live=ttl, now=now
        )
        == expected
    )


def test_next_attempt_never_retries_faster_than_the_policy_floor() -> None:
    at = next_attempt(attempt=1, retries=3, retry_interval=timedelta(0), time_to_live=None, now=T0)
    assert at == T0 + DEFAULT_POLICY.minimum_retry_interval


def test_best_effort_gets_one_attempt() -> None:
    assert next_attempt(attempt=1, retries=0, retry_interval=BP_INTERVAL, time_to_live=None, now=T0) is None


@pytest.mark.parametrize(("attempt", "retries"), [(0, 3), (1, -1)])
def test_next_attempt_refuses_nonsense(attempt: int, retries: int) -> None:
    with pytest.raises(ValueError, match=r"1-based|negative"):
        next_attempt(attempt=attempt, retries=retries, retry_interval=BP_INTERVAL, time_to_live=None, now=T0)


@pytest.mark.parametrize(
    ("layer", "reliable", "failures", "now", "expected"),
    [
        (Layer.CONNECT, True, 1, T0, T0 + timedelta(seconds=15)),
        (Layer.DNS, False, 2, T0 + timedelta(seconds=15), T0 + timedelta(seconds=75)),
        (Layer.CONNECT, True, 3, T0 + timedelta(minutes=2), T0 + timedelta(minutes=7)),
        (Layer.CONNECT, True, 4, T0 + timedelta(minutes=7), None),  # backoff steps used up
        (Layer.TIMEOUT, True, 1, T0, T0 + timedelta(seconds=15)),  # RM: duplicates are eliminated
        (Layer.TIMEOUT, False, 1, T0, None),  # BE: a timed-out request may have arrived
        (Layer.TLS_SERVER_UNTRUSTED, True, 1, T0, None),  # a certificate does not heal in seconds
        (Layer.HTTP, True, 1, T0, None),
        (None, True, 1, T0, None),
    ],
)
def test_quick_transport_retries(
    layer: Layer | None, reliable: bool, failures: int, now: datetime, expected: datetime | None
) -> None:
    assert (
        transport_retry_at(
            layer=layer,
            reliable=reliable,
            failures_in_slot=failures,
            slot_started=T0,
            retry_interval=BP_INTERVAL if reliable else None,
            time_to_live=T0 + timedelta(hours=27),
            now=now,
        )
        == expected
    )


def test_quick_retries_stay_inside_one_retry_interval_and_before_ttl() -> None:
    common = {"layer": Layer.CONNECT, "reliable": True, "slot_started": T0}
    # KVS5: transport retries must fit inside one RetryInterval
    assert (
        transport_retry_at(
            **common,
            failures_in_slot=3,
            retry_interval=timedelta(minutes=5),
            time_to_live=None,
            now=T0 + timedelta(minutes=1),
        )
        is None
    )
    assert (
        transport_retry_at(
            **common,
            failures_in_slot=1,
            retry_interval=BP_INTERVAL,
            time_to_live=T0 + timedelta(seconds=10),
            now=T0,
        )
        is None
    )


def test_when_retries_end() -> None:
    ttl = T0 + timedelta(hours=27)
    assert when_retries_end(time_to_live=ttl, now=T0 + timedelta(hours=24)) == (Event.EXPIRED, ttl)
    late = T0 + timedelta(hours=28)
    assert when_retries_end(time_to_live=ttl, now=late) == (Event.EXPIRED, late)
    assert when_retries_end(time_to_live=None, now=T0) == (Event.SEND_FAILED, T0)


def test_attempt_records_keep_time_status_and_error_text() -> None:
    ok = record_attempt(1, T0, HttpResult(204, None, b"", 0.12, None))
    assert (ok.number, ok.at, ok.http_status, ok.layer, ok.error, ok.elapsed) == (
        1,
        T0,
        204,
        None,
        None,
        0.12,
    )
    busy = record_attempt(2, T0, HttpResult(503, "text/html", b"<html>down</html>", 0.05, None))
    assert (busy.http_status, busy.layer, busy.error) == (503, "http", "HTTP 503")
    refused = record_attempt(
        3, T0, TransportError("connection to h:443 refused", retryable=True, layer="connect")
    )
    assert (refused.http_status, refused.layer, refused.error, refused.elapsed) == (
        None,
        "connect",
        "connection to h:443 refused",
        None,
    )
