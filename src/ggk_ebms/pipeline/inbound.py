"""Inbound pipeline: one HTTP request in, one reply out, with the message durably stored first.

The pipeline loads, decides and commits (docs/architecture.md "Data flow", ebMS 2.0 §4.2; KVS
ch. 5, CPPA 2.0; Digikoppeling BEV ch. 3-5):

1. read the request: SOAPAction, MIME split, one XML parse   -> SOAP Fault / empty 500
2. load the CPA by CPAId from the process cache              -> unknown: 500 Fault "CPA … not found!"
3. ``inbound_decision.decide`` (pure; lookups injected): client certificate, duplicate fingerprint,
   validation, security profile, the answer                   -> Fault, or what to store and answer
4. sign our signal when our MSH signal channel signs (an effect the decision leaves to us)
5. ONE transaction: message, parts, the signal to return, the delivery job, an Ack's effect
6. only then the reply: sync Acknowledgment / Pong / StatusResponse / MessageError, or 204;
   a duplicate MessageId found by the store goes through ``decide_duplicate``

Nothing is acknowledged before step 5 has committed; if the database is down the sender gets 503
and retries (ack-after-commit). Logs carry ids, CPAId, action and outcome, never payload bytes.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.delivery import wakeup
from ggk_ebms.errors import (
    DuplicateMessageError,
    SoapFaultError,
    StoreError,
    StoreUnavailableError,
)
from ggk_ebms.lifecycle import Event
from ggk_ebms.logformat import log_fields
from ggk_ebms.pipeline.agreements import AgreementCache
from ggk_ebms.pipeline.inbound_decision import (
    SIGNAL_KINDS,
    Commit,
    Fault,
    InboundPolicy,
    Lookups,
    agreement_view,
    decide,
    decide_duplicate,
    read_request,
)
from ggk_ebms.pipeline.records import new_message_from_built
from ggk_ebms.pipeline.reply import InboundRequest, Reply, fault_reply
from ggk_ebms.pipeline.security import MessageSecurity
from ggk_ebms.store.messages import MessageStore, NewMessage

log = logging.getLogger(__name__)


class InboundPipeline:
    def __init__(
        self,
        settings: Settings,
        store: MessageStore,
        agreements: AgreementCache,
        *,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._settings = settings
        self._policy = InboundPolicy.from_settings(settings)
        self._store = store
        self._agreements = agreements
        self._clock = clock
        self._ids = ids
        self._security = MessageSecurity(settings)
        self._lookups = Lookups(
            find_sent=lambda i: self._store.find("out", i),
            find_received=lambda i: self._store.find("in", i),
            ids=ids,
            security=self._security,
        )

    # -- entry point ------------------------------------------------------------------------------

    def handle(self, request: InboundRequest) -> Reply:
        try:
            return self._handle(request)
        except SoapFaultError as exc:
            log.info(
                "refused request from %s: %s (HTTP %d)", request.remote, exc.faultstring, exc.http_status
            )
            return fault_reply(exc)
        except StoreUnavailableError as exc:
            log.error("database unavailable, answering 503 so the sender retries: %s", exc)
            return fault_reply(
                SoapFaultError("Service temporarily unavailable, retry later.", "Server", http_status=503)
            )
        except StoreError as exc:
            log.error("database error, nothing acknowledged: %s", exc)
            return fault_reply(SoapFaultError("Message could not be stored.", "Server", http_status=500))
        except Exception:
            # Nothing was acknowledged; the sender's retry gets another chance.
            log.exception("unexpected failure handling a request from %s", request.remote)
            return fault_reply(SoapFaultError("Internal error.", "Server", http_status=500))

    def _handle(self, request: InboundRequest) -> Reply:
        view = read_request(request, max_bytes=self._policy.max_body_bytes)
        cpa_id = view.message.header.cpa_id
        cpa = agreement_view(self._agreements.get(cpa_id), cpa_id, self._policy.party_ids)
        outcome = decide(view, cpa, self._lookups, self._clock.now(), policy=self._policy)
        if isinstance(outcome, Fault):
            if outcome.error.http_status == 403:
                log.warning("refused client certificate from %s for CPA %s", request.remote, cpa_id)
            raise outcome.error
        self._log(outcome)
        return self._commit(self._signed(outcome))

    # -- effects ----------------------------------------------------------------------------------

    def _signed(self, outcome: Commit) -> Commit:
        """Sign our signal when our MSH signal channel signs (ebMS 2.0 §6.3, KVS ch. 5; our choice
        in docs/rules.md): the one step of the answer the decision leaves to us, as it needs our key."""
        if outcome.response is None or outcome.sign_with is None:
            return outcome
        return replace(outcome, response=self._security.sign_signal(outcome.response, outcome.sign_with))

    def _log(self, outcome: Commit) -> None:
        record = outcome.message
        fields = log_fields(message_id=record.message_id, cpa_id=record.cpa_id)
        if outcome.errors:
            first = outcome.errors[0]
            log.info(
                "message %s (%s) refused: %s at %s",
                record.message_id,
                record.action,
                first.code,
                first.location,
                extra=fields,
            )
            return
        log.info(
            "received %s %s (%s/%s) on CPA %s",
            record.kind,
            record.message_id,
            record.service,
            record.action,
            record.cpa_id,
            extra=fields,
        )
        if record.kind in ("Acknowledgment", "MessageError") and outcome.effect is None:
            log.info("%s about %s changes nothing", record.kind, record.ref_to_message_id)

    def _commit(self, outcome: Commit) -> Reply:
        response_record = None
        if outcome.response is not None:
            response_record = new_message_from_built(outcome.response, sync=outcome.sync)
        try:
            self._store.receive(
                outcome.message,
                list(outcome.parts),
                response=response_record,
                deliver=outcome.deliver,
                send_response_async=outcome.response is not None and not outcome.sync,
                effect=outcome.effect,
            )
        except DuplicateMessageError:
            return self._duplicate(outcome.message)
        if outcome.deliver:
            # Committed: the delivery worker of this process may start on it now (delivery/wakeup.py).
            wakeup.notify()
        if outcome.response is not None and outcome.sync:
            return Reply.signal(outcome.response.envelope)
        return Reply.accepted()

    def _duplicate(self, received: NewMessage) -> Reply:
        """A message with this MessageId is stored already (ebMS 2.0 §6.5.3): apply ``decide_duplicate``."""
        verdict = decide_duplicate(
            received,
            find_received=self._lookups.find_received,
            find_response=lambda i: self._store.response_to(i, SIGNAL_KINDS),
        )
        if verdict.answer == "fault":
            assert verdict.fault is not None
            raise verdict.fault
        assert verdict.mark is not None
        self._store.transition(verdict.mark, Event.DUPLICATE, "identical copy received, not delivered again")
        log.info("duplicate %s %s: not delivered again", received.kind, received.message_id)
        if verdict.answer == "replay":
            assert verdict.envelope is not None
            return Reply.signal(verdict.envelope)
        if verdict.answer == "resend":
            assert verdict.resend is not None
            self._store.resend(verdict.resend, due_at=self._clock.now())
        return Reply.accepted()
