"""The business-layer steps of a batch in one PostgreSQL statement (``finish_pg.steps_at_once``
with ``layer="business"``, the delivery worker's, docs/delivery.md "Batches").

They must leave what ``store.lifecycle.transition_batch`` leaves: each message's business status,
reason, code and reference, and the same history rows. A message whose business status another
transaction moved between the decision and the statement (a Bv03 and a retour about the same
message of ours, handled by two nodes at once) is decided anew on the status it has then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ggk_ebms.lifecycle import Event, Step
from ggk_ebms.store import lifecycle as steps
from ggk_ebms.store.db import Database
from ggk_ebms.store.finish_pg import steps_at_once
from ggk_ebms.store.messages import MessageStore
from tests.test_delivery_worker import envelope, receive, sent_di01
from tests.test_lifecycle_race import commit_during_decision

pytestmark = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
Apply = Callable[[Any, list[steps.BusinessChange]], list[Step]]


def _at_once(session: Any, changes: list[steps.BusinessChange]) -> list[Step]:
    return steps_at_once(session, changes, now=datetime.now(UTC), layer="business")


def _batch(session: Any, changes: list[steps.BusinessChange]) -> list[Step]:
    return steps.transition_batch(session, changes, now=datetime.now(UTC), layer="business")


def _business(db: Database, pk: int, names: dict[int, str]) -> tuple[Any, ...]:
    message = MessageStore(db).get(pk)
    history = [
        (h.from_status, h.event, h.to_status, h.reason, h.code, h.rule)
        for h in MessageStore(db).history(pk)
        if h.layer == "business"
    ]
    ref = None if message.business_ref_pk is None else names[message.business_ref_pk]
    return (message.business_status, message.business_reason, message.business_code, ref, history)


def _scenario(db: Database, apply: Apply) -> list[tuple[Any, ...]]:
    """Two received messages read and delivered, one of ours answered by the first of them, one
    refused with a code: each step in a batch of its own kind, as the delivery worker takes them."""
    first, second = (receive(db, envelope(), deliver=False) for _ in range(2))
    answered, refused = sent_di01(db, "ref-answered"), sent_di01(db, "ref-refused")
    names = {first: "first", second: "second", answered: "answered", refused: "refused"}
    with db.session() as session:
        taken = apply(
            session,
            [
                steps.BusinessChange(first, Event.STUF_RECEIVED),
                steps.BusinessChange(second, Event.STUF_RECEIVED),
            ],
        )
    with db.session() as session:
        taken += apply(
            session,
            [
                steps.BusinessChange(first, Event.STUF_DELIVERED, "delivered to /inbox/1.xml"),
                steps.BusinessChange(second, Event.STUF_DELIVERED, "delivered to /inbox/2.xml"),
                steps.BusinessChange(answered, Event.STUF_ANSWERED, "answered by WMO302", ref_pk=first),
                steps.BusinessChange(refused, Event.STUF_REFUSED, "Fo03 received", "IB014", ref_pk=second),
            ],
        )
    assert all(step.writes for step in taken)
    return [_business(db, pk, names) for pk in names]


def test_one_statement_leaves_what_transition_batch_leaves(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_again(*_args: Any, **_kw: Any) -> Step:
        raise AssertionError("the statement's guard missed a message nobody moved")

    monkeypatch.setattr(steps, "apply_business", not_again)  # the fall-back stays unused
    at_once = _scenario(db, _at_once)
    monkeypatch.undo()
    assert at_once == _scenario(db, _batch)


def test_a_step_that_keeps_a_fo01_is_left_to_transition_batch(db: Database) -> None:
    ours = sent_di01(db, "ref-fo01")
    change = steps.BusinessChange(ours, Event.STUF_REFUSED, "Fo01", "IB014", fout=("IB014", "XSD"))
    with db.session() as session, pytest.raises(ValueError, match="Fo01"):
        _at_once(session, [change])


def test_a_message_moved_between_decision_and_statement_is_decided_anew(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Bv03 about our message commits after the retour's decision read it 'sent': the guarded
    write misses it, and the step is decided again on 'accepted' (answered all the same), while
    the other message of the batch is answered by the statement itself."""
    retour = receive(db, envelope(), deliver=False)
    ours, other = sent_di01(db, "ref-raced"), sent_di01(db, "ref-calm")
    changes = [
        steps.BusinessChange(ours, Event.STUF_ANSWERED, "answered by WMO302", ref_pk=retour),
        steps.BusinessChange(other, Event.STUF_ANSWERED, "answered by WMO302", ref_pk=retour),
    ]
    taken: list[Step] = []

    def work() -> None:
        with db.session() as session:
            taken.extend(_at_once(session, changes))

    def bv03() -> None:
        with db.session() as session:
            steps.business_transition(
                session, ours, Event.STUF_ACCEPTED, now=datetime.now(UTC), reason="Bv03"
            )

    commit_during_decision(monkeypatch, work, bv03)
    store = MessageStore(db)
    assert [step.source for step in taken] == ["accepted", "sent"]
    assert [store.get(pk).business_status for pk in (ours, other)] == ["answered", "answered"]
    assert [(h.from_status, h.to_status) for h in store.history(ours) if h.layer == "business"] == [
        (None, "sent"),
        ("sent", "accepted"),
        ("accepted", "answered"),
    ]
    assert [(h.from_status, h.to_status) for h in store.history(other) if h.layer == "business"] == [
        (None, "sent"),
        ("sent", "answered"),
    ]
