"""When the koppeltabel catch-up runs (koppeltabel_pace.py): between bursts, and at least every
``max_defer`` seconds under traffic that never pauses. Times are given, never waited for."""

from __future__ import annotations

from ggk_ebms.koppeltabel_pace import MAX_DEFER_SECONDS, CatchUpPace


def test_the_first_poll_runs_whatever_the_store_holds() -> None:
    assert CatchUpPace().due(500, now=0.0)
    assert CatchUpPace().due(None, now=0.0)


def test_a_poll_that_finds_new_messages_waits_and_the_first_quiet_one_runs() -> None:
    pace = CatchUpPace(max_defer=60.0)
    assert pace.due(10, now=0.0)
    assert not pace.due(20, now=5.0)  # traffic since the previous poll
    assert not pace.due(35, now=10.0)
    assert pace.due(35, now=15.0)  # nothing new in the last interval: a quiet moment
    assert pace.due(35, now=20.0)  # still quiet: every poll runs, as before


def test_traffic_that_never_pauses_still_gets_a_catch_up_every_max_defer_seconds() -> None:
    pace = CatchUpPace(max_defer=60.0)
    assert pace.due(0, now=0.0)
    runs = [now for now in range(5, 181, 5) if pace.due(now * 100, now=float(now))]
    assert runs == [60, 120, 180]


def test_an_emptied_store_and_a_first_message_count_as_traffic() -> None:
    pace = CatchUpPace(max_defer=60.0)
    assert pace.due(None, now=0.0)
    assert not pace.due(1, now=5.0)  # the first message ever
    assert pace.due(1, now=10.0)
    assert not pace.due(None, now=15.0)  # retention removed everything: the store changed
    assert pace.due(None, now=20.0)


def test_the_default_bound_is_a_minute() -> None:
    assert CatchUpPace().max_defer == MAX_DEFER_SECONDS == 60.0
