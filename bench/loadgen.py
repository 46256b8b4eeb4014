"""The load generator: an asyncio mutual-TLS client with keep-alive connections.

Two ways to load a server:

* ``closed_loop``: ``concurrency`` senders, each posting its next message as soon as the previous
  answer is in, for ``seconds`` or until ``count`` messages; this finds the maximum rate.
* ``open_loop``: messages start at a fixed ``rate`` whatever the answers do (up to a cap on
  requests in flight); latency counts from the moment a message was due, not from when it went
  out, so a slow server cannot hide its queueing ("coordinated omission"). A phase opens its
  keep-alive connections on its clock, so the TLS handshakes of its first moments count: ``p99``
  is over every message, ``p99_warm`` over those due from ``WARM_AFTER`` seconds on, when the
  connections a steady load needs are open.

Every answer is checked: ``expect="ack"`` wants HTTP 200 with an ebMS Acknowledgment whose
RefToMessageId is the message sent, ``expect="accepted"`` wants 204 with an empty body (the
Acknowledgment is queued; the scenario counts those in the database afterwards). Anything else
is an error, counted by a short reason; errors never count towards the rate.
"""

from __future__ import annotations

import asyncio
import gc
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp

from bench.common import DEV_CERTS
from bench.messages import Mix, PoolExhausted
from ggk_ebms import ns
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.mime.related import split_body
from ggk_ebms.xml import parse, qname

Expect = Literal["ack", "accepted"]
WARM_AFTER: Final = 0.5  # seconds into a phase; its connections were opened in the first 0.1 s
_MAX_ANSWER: Final = 1024 * 1024
_ACK: Final = qname(ns.EB, "Acknowledgment")
_REF: Final = qname(ns.EB, "RefToMessageId")


def client_ssl(party: str = "rinis") -> ssl.SSLContext:
    """The counterpart's client certificate from the dev PKI, trusting the dev CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(DEV_CERTS / "ca.pem"))
    context.load_cert_chain(str(DEV_CERTS / party / "client.pem"), str(DEV_CERTS / party / "client-key.pem"))
    return context


@dataclass
class LoadResult:
    """What one load phase measured."""

    sent: int = 0
    ok: int = 0
    bytes_sent: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful messages only
    dues: list[float] = field(default_factory=list)  # each one's due time, seconds into the phase
    started: float = 0.0  # perf_counter at the phase's start
    errors: Counter[str] = field(default_factory=Counter)
    offered_rate: float | None = None
    ok_ids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes_sent / self.elapsed / 1e6 if self.elapsed else 0.0

    def percentile_ms(self, p: float, *, due_after: float = 0.0) -> float | None:
        """The ``p``th percentile latency of the messages due ``due_after`` seconds into the
        phase or later."""
        chosen = (
            self.latencies
            if not due_after
            else [latency for latency, due in zip(self.latencies, self.dues, strict=True) if due >= due_after]
        )
        if not chosen:
            return None
        ordered = sorted(chosen)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return round(ordered[index] * 1000, 2)

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": sum(self.errors.values()),
            "error_reasons": dict(self.errors.most_common(5)),
            "seconds": round(self.elapsed, 2),
            "msg_per_s": round(self.rate, 1),
            "mb_per_s": round(self.megabytes_per_second, 2),
            "offered_per_s": round(self.offered_rate, 1) if self.offered_rate else None,
            "p50_ms": self.percentile_ms(50),
            "p95_ms": self.percentile_ms(95),
            "p99_ms": self.percentile_ms(99),
            "p99_warm_ms": self.percentile_ms(99, due_after=WARM_AFTER),
        }


def check_answer(expect: Expect, message_id: str, status: int, content_type: str, body: bytes) -> str | None:
    """None when the answer is the one this message should get, else a short reason."""
    if expect == "accepted":
        if status == 204 and not body:
            return None
        return f"HTTP {status}, wanted 204"
    if status != 200:
        return f"HTTP {status}, wanted 200 with an Acknowledgment"
    try:
        soap = split_body(content_type or "text/xml", body).soap.data
        root = parse(soap, max_bytes=_MAX_ANSWER, what="answer")
    except GgkEbmsError as exc:
        return f"unreadable answer: {type(exc).__name__}"
    ack = root.find(f".//{_ACK}")
    if ack is None:
        return "answer holds no Acknowledgment"
    if ack.findtext(_REF) != message_id:
        return "Acknowledgment refers to another message"
    return None


class Client:
    """One aiohttp session: keep-alive connections, up to ``connections`` at once, mutual TLS."""

    def __init__(self, url: str, *, connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = url
        connector = aiohttp.TCPConnector(
            limit=connections, ssl=ssl_context or client_ssl(), force_close=False
        )
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))

    async def close(self) -> None:
        await self.session.close()

    async def post(self, message_id: str, content_type: str, body: bytes, expect: Expect) -> str | None:
        headers = {"Content-Type": content_type, "SOAPAction": '"ebXML"'}
        try:
            async with self.session.post(self.url, data=body, headers=headers) as response:
                answer = await response.read()
                return check_answer(expect, message_id, response.status, response.content_type, answer)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return f"transport: {type(exc).__name__}"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _one(
    client: Client, mix: Mix, expect: Expect, result: LoadResult, due: float, keep_ids: bool
) -> None:
    message_id, template = mix.next()  # PoolExhausted ends the phase early (signed pools)
    body = template.body_for(message_id)
    result.sent += 1
    result.bytes_sent += len(body)
    reason = await client.post(message_id, template.content_type, body, expect)
    if reason is None:
        result.ok += 1
        result.latencies.append(time.perf_counter() - due)
        result.dues.append(due - result.started)
        if keep_ids:
            result.ok_ids.append(message_id)
    else:
        result.errors[reason] += 1


def _settle() -> None:
    """Freeze what the load generator holds before a phase (the message pool, the TLS context):
    its own full collections took 15-36 ms of CPU each, and a pause here would be counted as the
    server's latency (docs/performance.md, "The collector and the tail")."""
    gc.collect()
    gc.freeze()


async def closed_loop(
    url: str,
    mix: Mix,
    *,
    expect: Expect,
    concurrency: int,
    seconds: float | None = None,
    count: int | None = None,
    keep_ids: bool = False,
) -> LoadResult:
    """As fast as the server answers, ``concurrency`` messages in flight, for a time or a count."""
    if seconds is None and count is None:
        raise ValueError("give seconds or count")
    _settle()
    result = LoadResult()
    start = result.started = time.perf_counter()
    deadline = start + seconds if seconds is not None else float("inf")
    remaining = [count if count is not None else -1]

    def more() -> bool:
        if time.perf_counter() >= deadline:
            return False
        if remaining[0] == 0:
            return False
        remaining[0] -= 1
        return True

    async def sender(client: Client) -> None:
        while more():
            try:
                await _one(client, mix, expect, result, time.perf_counter(), keep_ids)
            except PoolExhausted:
                return

    async with Client(url, connections=concurrency) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


async def open_loop(
    url: str,
    mix: Mix,
    *,
    expect: Expect,
    rate: float,
    seconds: float,
    max_in_flight: int = 256,
    connections: int = 64,
) -> LoadResult:
    """Messages due at ``rate`` per second for ``seconds``; latency from each one's due time."""
    _settle()
    result = LoadResult(offered_rate=rate)
    interval = 1.0 / rate
    total = max(1, int(rate * seconds))
    in_flight = asyncio.Semaphore(max_in_flight)
    tasks: list[asyncio.Task[None]] = []

    async def guarded(due: float) -> None:
        async with in_flight:
            try:
                await _one(client, mix, expect, result, due, False)
            except PoolExhausted:
                return

    start = result.started = time.perf_counter()
    async with Client(url, connections=connections) as client:
        for n in range(total):
            due = start + n * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(guarded(due)))
        await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    return result


async def warm_up(url: str, mix: Mix, *, expect: Expect, seconds: float = 1.0) -> LoadResult:
    """A short closed-loop run so connections, caches and the database are warm before measuring."""
    return await closed_loop(url, mix, expect=expect, concurrency=4, seconds=seconds)
