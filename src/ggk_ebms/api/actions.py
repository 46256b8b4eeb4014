"""The use cases behind the API routes that change something or reach out (CPA validate,
import, delete, ping, send, resend), shared by /api/v1 and /service/rest/v19.

They are the seam to the services layer (``ggk_ebms.services``): each is one function over
the settings and the database, synchronous where it only touches the store (the handlers run
those in a thread), so routes re-point here without changing their HTTP side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ggk_ebms.api.context import ApiContext
from ggk_ebms.clock import IdGenerator
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.findings import Validation
from ggk_ebms.cpa.lint import validate_cpa
from ggk_ebms.cpa.model import Agreement
from ggk_ebms.cpa.schema import load_schema
from ggk_ebms.errors import CpaError
from ggk_ebms.pipeline import outbound
from ggk_ebms.pipeline.ping import PingResult, ping
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.messages import MessageStore, StoredMessage
from ggk_ebms.transport.client import EbmsClient

_PONG_WAIT = 10.0
_XMLENC = b"http://www.w3.org/2001/04/xmlenc#"


@dataclass(frozen=True)
class Part:
    content_id: str
    content_type: str
    data: bytes


def validate(ctx: ApiContext, raw: bytes) -> Validation:
    settings = ctx.settings
    return validate_cpa(
        raw,
        now=ctx.clock.now(),
        allow_sha1=settings.allow_sha1,
        schema=load_schema(settings.cpa_schema),
        max_bytes=settings.max_cpa_bytes,
    )


class InvalidCpa(Exception):
    def __init__(self, validation: Validation) -> None:
        first = validation.errors[0] if validation.errors else None
        super().__init__(f"{first.rule}: {first.message}" if first else "the CPA cannot be read")
        self.validation = validation


def insert_cpa(ctx: ApiContext, raw: bytes, *, overwrite: bool) -> Agreement:
    """Validate and store a CPA (CpaExistsError without ``overwrite``); InvalidCpa on errors."""
    validation = validate(ctx, raw)
    if not validation.ok or validation.agreement is None:
        raise InvalidCpa(validation)
    CpaRepository(ctx.database, ctx.clock).add_agreement(validation.agreement, overwrite=overwrite)
    ctx.agreements.invalidate(validation.agreement.cpa_id)
    return validation.agreement


def delete_cpa(ctx: ApiContext, cpa_id: str) -> None:
    CpaRepository(ctx.database, ctx.clock).delete(cpa_id)
    ctx.agreements.invalidate(cpa_id)


async def ping_cpa(ctx: ApiContext, cpa_id: str) -> PingResult:
    settings = ctx.settings
    async with EbmsClient.from_settings(settings, client_context_from_settings(settings)) as client:
        return await ping(
            settings,
            ctx.database,
            client,
            cpa_id=cpa_id,
            ids=ctx.ids,
            clock=ctx.clock,
            pong_wait=_PONG_WAIT,
            agreements=ctx.agreements,
        )


def party_ids_of(ctx: ApiContext, cpa_id: str) -> tuple[set[str], set[str]]:
    """(our PartyIds, the counterpart's PartyIds) under CPA ``cpa_id``."""
    agreement = outbound.load_agreement(
        ctx.database, cpa_id, max_cpa_bytes=ctx.settings.max_cpa_bytes, agreements=ctx.agreements
    )
    ours = lookup.own_party(agreement, ctx.settings.party_ids)
    other = lookup.counterpart(agreement, ours)
    return {p.value for p in ours.party_ids}, {p.value for p in other.party_ids}


@dataclass
class _GivenId:
    """Ids for one submit where the client chose the MessageId (ebms-core allows it)."""

    base: IdGenerator
    given: str

    def message_id(self) -> str:
        return self.given

    def uuid(self) -> str:
        return self.base.uuid()


def send(
    ctx: ApiContext,
    *,
    cpa_id: str,
    service: str,
    action: str,
    parts: Sequence[Part],
    from_party_id: str | None,
    to_party_id: str | None,
    role: str | None,
    conversation_id: str | None,
    message_id: str | None,
) -> StoredMessage:
    """Queue a business message (``outbound.submit_message``) after checking that the parties the
    client named are the ones the CPA says (CpaError otherwise)."""
    ours, theirs = party_ids_of(ctx, cpa_id)
    if from_party_id is not None and from_party_id not in ours:
        raise CpaError(f"fromPartyId {from_party_id!r} is not our party in CPA {cpa_id!r}")
    if to_party_id is not None and to_party_id not in theirs:
        raise CpaError(f"toPartyId {to_party_id!r} is not the other party in CPA {cpa_id!r}")
    ids: IdGenerator = ctx.ids if message_id is None else _GivenId(ctx.ids, message_id)
    return outbound.submit_message(
        ctx.settings,
        ctx.database,
        cpa_id=cpa_id,
        service=service,
        action=action,
        parts=list(parts),
        conversation_id=conversation_id,
        ids=ids,
        clock=ctx.clock,
        role=role,
        agreements=ctx.agreements,
    )


class NotResendable(Exception):
    pass


def resend(ctx: ApiContext, original: StoredMessage) -> StoredMessage:
    """Send a sent business message again as a NEW message (new MessageId, same conversation,
    same parts), as ebms-core's resend does: the old MessageId would be eliminated as a
    duplicate by the partner (ebMS 2.0 §6.4.1)."""
    if original.direction != "out" or original.kind != "business":
        raise NotResendable("only a business message we sent can be sent again")
    if _XMLENC in (original.envelope or b""):
        # The stored parts are the encrypted ones (encrypted once at submit): there is no
        # plain text to build a new message from.
        raise NotResendable("an encrypted message cannot be sent again from the store; submit it anew")
    stored = MessageStore(ctx.database, ctx.clock).parts(original.pk)
    return outbound.submit_message(
        ctx.settings,
        ctx.database,
        cpa_id=original.cpa_id,
        service=original.service,
        action=original.action,
        parts=[Part(p.content_id, p.content_type, p.data) for p in stored],
        conversation_id=original.conversation_id,
        ids=ctx.ids,
        clock=ctx.clock,
        role=original.from_role,
        agreements=ctx.agreements,
    )
