"""The lifecycle tables themselves (ggk_ebms.lifecycle): pure, no database."""

from __future__ import annotations

import pytest

from ggk_ebms import lifecycle
from ggk_ebms.lifecycle import FINAL, TABLE, Business, Event, Flow, IllegalTransition, Status

_OPERATOR = {Event.OPERATOR_RESEND, Event.OPERATOR_RETRY, Event.SIGNAL_RESEND, Event.STUF_RETRY}
# Processed is final for the MSH (nothing left to do, may be purged); the application fetching a
# mailbox item only records that it was picked up (ebMS 2.0 §7.3.2 Forwarded).
_AFTER_FINAL = _OPERATOR | {Event.PICKED_UP}


def test_every_transition_cites_its_rule() -> None:
    for (flow, source, event), rule in TABLE.items():
        assert rule.cite.startswith(("ebMS 2.0 §", "Digikoppeling", "StUF", "docs/rules.md")), (
            flow,
            source,
            event,
        )


def test_a_final_state_is_left_only_by_an_operator_or_a_resend() -> None:
    for (flow, source, event), rule in TABLE.items():
        if lifecycle.is_final(flow, source) and rule.to != source:
            assert event in _AFTER_FINAL, (flow, source, event, rule.to)


def test_every_state_is_reachable_from_creation() -> None:
    for flow in Flow:
        reached = {rule.to for (f, source, _), rule in TABLE.items() if f is flow and source is None}
        frontier = set(reached)
        while frontier:
            state = frontier.pop()
            for (f, source, _), rule in TABLE.items():
                if f is flow and source == state and rule.to not in reached:
                    reached.add(rule.to)
                    frontier.add(rule.to)
        sources = {source for (f, source, _) in TABLE if f is flow and source is not None}
        assert sources <= reached, (flow, sources - reached)
        assert FINAL[flow] <= reached, flow


@pytest.mark.parametrize(
    ("flow", "source", "event", "target"),
    [
        (Flow.OUTBOUND, Status.CREATED, Event.ATTEMPT_STARTED, Status.SENDING),
        (Flow.OUTBOUND, Status.SENDING, Event.ACCEPTED, Status.DELIVERED),
        (Flow.OUTBOUND, Status.SENDING, Event.MESSAGE_ERROR, Status.DELIVERY_FAILED),
        (Flow.OUTBOUND, Status.SENDING, Event.EXPIRED, Status.EXPIRED),
        (Flow.OUTBOUND, Status.DELIVERED, Event.SEND_FAILED, Status.DELIVERED),  # late verdict dropped
        (Flow.INBOUND, Status.RECEIVED, Event.FORWARDED, Status.FORWARDED),
        (Flow.INBOUND, Status.FAILED, Event.DUPLICATE, Status.FAILED),
        (Flow.BUSINESS_OUT, Business.SENT, Event.STUF_REFUSED, Business.REFUSED),
        (Flow.BUSINESS_OUT, Business.ACCEPTED, Event.STUF_ANSWERED, Business.ANSWERED),
        (Flow.BUSINESS_OUT, Business.REFUSED, Event.STUF_ANSWERED, Business.REFUSED),  # late: kept
        (Flow.BUSINESS_IN, Business.RECEIVED, Event.STUF_HELD, Business.HELD),
    ],
)
def test_decide(flow: Flow, source: str, event: Event, target: str) -> None:
    assert lifecycle.decide(flow, source, event).target == target


@pytest.mark.parametrize(
    ("flow", "source", "event"),
    [
        (Flow.OUTBOUND, Status.CREATED, Event.RETRY_SCHEDULED),  # no attempt was started
        (Flow.OUTBOUND, Status.SENDING, Event.OPERATOR_RESEND),  # still being sent
        (Flow.OUTBOUND, Status.DELIVERED, Event.OPERATOR_RESEND),  # delivered is never re-sent
        (Flow.INBOUND, Status.FORWARDED, Event.OPERATOR_RETRY),
        (Flow.INBOUND, Status.RECEIVED, Event.ACCEPTED),  # an outbound event on a received message
        (Flow.BUSINESS_OUT, None, Event.STUF_REFUSED),  # no StUF message was sent
        (Flow.SIGNAL, Status.SENT, Event.SIGNAL_GIVEN_UP),
    ],
)
def test_illegal_transitions_raise(flow: Flow, source: str | None, event: Event) -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.decide(flow, source, event)


def test_creation_steps_are_unique_per_status() -> None:
    assert lifecycle.creation_step(Flow.INBOUND, Status.FAILED).event is Event.REFUSED
    assert lifecycle.creation_step(Flow.SIGNAL, Status.SENT).event is Event.SIGNAL_SENT
    with pytest.raises(IllegalTransition):
        lifecycle.creation_step(Flow.OUTBOUND, Status.DELIVERED)


def test_status_response_values() -> None:
    # ebMS 2.0 §7.3.2: a refused message is reported as Received.
    assert [lifecycle.status_response_value(s) for s in ("Received", "Processed", "Forwarded", "Failed")] == [
        "Received",
        "Processed",
        "Forwarded",
        "Received",
    ]
