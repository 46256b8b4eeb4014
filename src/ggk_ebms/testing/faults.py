"""Test-only misbehaviour of an endpoint: the knobs of the ``test_faults`` setting (docs/sending.md).

The RINIS counterpart that tests and ``ggk-ebms demo`` start is the same endpoint as the
gemeente side. To exercise a sender's retries (KVS ch. 5 HTTP status handling; ebMS 2.0 §6.4, BP ch. 3) it can
be told to misbehave on purpose. The knobs live in a ``Handler`` placed in front of the ``InboundPipeline``;
the pipeline
itself never misbehaves, and with an empty ``test_faults`` the wrapper is not installed at all.

Only business messages are affected: Pings, Acknowledgments and other signals go through, so a
misbehaving counterpart can still be pinged and still receives our Acknowledgments.

Because a misbehaving endpoint breaks the ebMS contract with whoever talks to it, the knobs are
refused unless every configured PartyId is a test OIN (prefix 00000099, the Logius test range).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ggk_ebms.clock import Clock, IdGenerator
from ggk_ebms.ebms.build import build_message_error
from ggk_ebms.ebms.model import EbmsMessage
from ggk_ebms.ebms.parse import parse_envelope
from ggk_ebms.errors import ConfigError, EbmsError, ErrorCode, GgkEbmsError
from ggk_ebms.mime.related import split_body
from ggk_ebms.pipeline.reply import InboundRequest, Reply
from ggk_ebms.server.app import Handler

log = logging.getLogger(__name__)

TEST_OIN_PREFIX: Final = "00000099"
_MAX_DELAY_MS: Final = 10 * 60 * 1000
HOLD_LIMIT_S: Final = 120.0  # a held request goes on after this even without the file
_HOLD_POLL_S: Final = 0.02


@dataclass(frozen=True)
class TestFaults:
    """The parsed knobs; all off by default."""

    __test__ = False  # not a pytest test class, despite the name

    drop_ack: bool = False
    unavailable_attempts: int = 0  # answer 503 to the first N attempts of each MessageId
    delay_ms: int = 0
    message_error: ErrorCode | None = None
    # Hold each business request, once accepted, until this file exists (at most HOLD_LIMIT_S):
    # lets a test act while requests are provably in flight, without guessing with a sleep.
    hold_until: str | None = None

    @property
    def active(self) -> bool:
        return (
            self.drop_ack
            or self.unavailable_attempts > 0
            or self.delay_ms > 0
            or self.message_error is not None
            or self.hold_until is not None
        )

    def describe(self) -> str:
        """The knobs in the setting's own notation, for the start-up warning."""
        words = []
        if self.drop_ack:
            words.append("drop-ack")
        if self.unavailable_attempts:
            words.append(f"http-503:{self.unavailable_attempts}")
        if self.delay_ms:
            words.append(f"delay-ms:{self.delay_ms}")
        if self.message_error is not None:
            words.append(f"message-error:{self.message_error.value}")
        if self.hold_until is not None:
            words.append(f"hold-until:{self.hold_until}")
        return ", ".join(words) or "none"


def _count(name: str, value: str, limit: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"test_faults: {name} needs a whole number, not {value!r}") from None
    if not 0 <= number <= limit:
        raise ConfigError(f"test_faults: {name} must be between 0 and {limit}, not {number}")
    return number


def parse_test_faults(values: Sequence[str], party_ids: Sequence[str]) -> TestFaults:
    """Read the ``test_faults`` setting. Raises ConfigError for unknown knobs, bad numbers, and
    for any knob at all when a PartyId is not a test OIN (never misbehave in production)."""
    if not values:
        return TestFaults()
    real = [oin for oin in party_ids if not oin.startswith(TEST_OIN_PREFIX)]
    if real or not party_ids:
        raise ConfigError(
            "test_faults is for tests only and is refused unless every party_ids OIN is a test OIN "
            f"(prefix {TEST_OIN_PREFIX}); not a test OIN: {', '.join(real) or '(no party_ids)'}"
        )
    drop_ack = False
    unavailable = 0
    delay = 0
    error: ErrorCode | None = None
    hold_until: str | None = None
    for raw in values:
        name, _, argument = raw.strip().partition(":")
        if name == "drop-ack" and not argument:
            drop_ack = True
        elif name == "http-503":
            unavailable = _count(name, argument, 1000)
        elif name == "delay-ms":
            delay = _count(name, argument, _MAX_DELAY_MS)
        elif name == "message-error":
            try:
                error = ErrorCode(argument or ErrorCode.DELIVERY_FAILURE.value)
            except ValueError:
                known = ", ".join(code.value for code in ErrorCode)
                raise ConfigError(
                    f"test_faults: unknown ebMS error code {argument!r}; known: {known}"
                ) from None
        elif name == "hold-until":
            if not argument:
                raise ConfigError("test_faults: hold-until needs a file path, e.g. hold-until:/tmp/release")
            hold_until = argument
        else:
            raise ConfigError(
                f"test_faults: unknown knob {raw!r}; "
                "known: drop-ack, http-503:N, delay-ms:N, message-error:CODE, hold-until:PATH"
            )
    return TestFaults(drop_ack, unavailable, delay, error, hold_until)


class FaultyHandler:
    """A ``Handler`` that misbehaves as ``faults`` says, then (if at all) hands over to ``inner``.

    Called from the server's thread pool, so the per-MessageId attempt counts are locked and a
    delay is a plain sleep of that thread.
    """

    def __init__(
        self,
        inner: Handler,
        faults: TestFaults,
        *,
        clock: Clock,
        ids: IdGenerator,
        max_body_bytes: int,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._faults = faults
        self._clock = clock
        self._ids = ids
        self._max_body_bytes = max_body_bytes
        self._sleep = sleep
        self._monotonic = monotonic
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _business_message(self, request: InboundRequest) -> EbmsMessage | None:
        try:
            body = split_body(request.content_type, request.content())
            message = parse_envelope(body.soap.data, max_bytes=self._max_body_bytes)
        except GgkEbmsError:
            return None  # not ours to judge: the pipeline answers it properly
        return message if message.kind == "business" else None

    def handle(self, request: InboundRequest) -> Reply:
        message = self._business_message(request)
        if message is None:
            return self._inner.handle(request)
        faults = self._faults
        message_id = message.header.message_id
        if faults.delay_ms:
            self._sleep(faults.delay_ms / 1000)
        if faults.hold_until is not None:
            self._hold(message_id, Path(faults.hold_until))
        if faults.unavailable_attempts:
            with self._lock:
                seen = self._attempts.get(message_id, 0) + 1
                self._attempts[message_id] = seen
            if seen <= faults.unavailable_attempts:
                log.warning("test fault: 503 for attempt %d of %s", seen, message_id)
                return Reply(status=503)
        if faults.drop_ack:
            log.warning("test fault: %s accepted with 204 and dropped, no Acknowledgment", message_id)
            return Reply.accepted()
        if faults.message_error is not None:
            log.warning("test fault: MessageError %s for %s", faults.message_error.value, message_id)
            error = EbmsError(
                faults.message_error,
                "//Header/MessageHeader",
                "Refused on purpose by the test_faults setting of this test endpoint.",
            )
            built = build_message_error(message, [error], ids=self._ids, clock=self._clock)
            return Reply.signal(built.envelope)
        return self._inner.handle(request)

    def _hold(self, message_id: str, release: Path) -> None:
        """Keep this accepted request in flight until ``release`` exists; says so in the log
        first, which is how a test knows the request has reached the handler."""
        log.warning("test fault: holding %s until %s exists", message_id, release)
        deadline = self._monotonic() + HOLD_LIMIT_S
        while not release.exists() and self._monotonic() < deadline:
            self._sleep(_HOLD_POLL_S)
        log.warning("test fault: released %s", message_id)
