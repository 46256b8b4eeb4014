"""Soak: mixed valid and hostile traffic against ``ggk-ebms serve``, with the server's RSS curve.

Valid traffic is the inbound mix of StUF Di01 messages (85% 2 KB, 15% 1 MB, sync Acks). Hostile
traffic runs beside it all the time, in rounds: 8 MB of near-delimiters from a partner, the same
from a certificate of no CPA party, a gzip bomb, an external entity, a body cut off half-way,
slow-loris headers, idle TLS connections and plain TCP connections that never start TLS. RSS is
read from /proc every few seconds; the figure that matters is whether it stays flat (docs/
performance.md, "Soak"). Short by default; ``--minutes 10`` for the long run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import time
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench import loadgen
from bench.common import DEV_CERTS, Report
from bench.databases import private_database
from bench.messages import build_mix
from bench.servers import endpoint_process, free_port, party_settings, rss_bytes
from bench.setup import inbound_cpa, work_folder
from ggk_ebms.testing.pki import issue_client_certificate

COLUMNS: Final = ("t_s", "rss_mib", "valid_ok", "valid_failed", "hostile_sent", "hostile_unexpected")
SAMPLE_SECONDS: Final = 5.0
MIB: Final = 1024 * 1024


def _stranger_context(work: Path) -> ssl.SSLContext:
    """A client certificate the dev CA vouches for, of a party in no CPA."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ggk_ebms.security.keys import load_private_key
    from ggk_ebms.testing.pki import IssuedCertificate

    key = load_private_key(DEV_CERTS / "ca-key.pem")
    assert isinstance(key, rsa.RSAPrivateKey)
    ca = IssuedCertificate(x509.load_pem_x509_certificate((DEV_CERTS / "ca.pem").read_bytes()), key)
    now = datetime.now(UTC)
    issued = issue_client_certificate(
        ca,
        oin="00000099000009990000",
        common_name="soak stranger",
        not_before=now,
        not_after=now + timedelta(days=1),
    )
    cert, key_path = work / "stranger.pem", work / "stranger-key.pem"
    cert.write_bytes(issued.certificate_pem())
    key_path.write_bytes(
        issued.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(DEV_CERTS / "ca.pem"))
    context.load_cert_chain(str(cert), str(key_path))
    return context


class Hostile:
    """One round of hostile requests; counts what was sent and what was not refused as expected."""

    def __init__(self, url: str, port: int, partner: ssl.SSLContext, stranger: ssl.SSLContext) -> None:
        self.url, self.port, self.partner, self.stranger = url, port, partner, stranger
        self.sent = 0
        self.unexpected: dict[str, int] = {}
        near = b"--b\r\nContent-Type: text/xml\r\n\r\n" + b"\n--bX" * (8 * MIB // 5)
        self.bodies: list[tuple[str, ssl.SSLContext, str, dict[str, str], bytes, int]] = [
            (
                "near-delimiters partner",
                partner,
                'multipart/related; type="text/xml"; boundary="b"',
                {},
                near,
                500,
            ),
            (
                "near-delimiters stranger",
                stranger,
                'multipart/related; type="text/xml"; boundary="b"',
                {},
                near,
                403,
            ),
            (
                "gzip bomb",
                partner,
                "text/xml",
                {"Content-Encoding": "gzip"},
                gzip.compress(b"\0" * (64 * MIB)),
                415,
            ),
            (
                "external entity",
                partner,
                "text/xml",
                {},
                b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
                500,
            ),
        ]

    def _note(self, what: str) -> None:
        self.unexpected[what] = self.unexpected.get(what, 0) + 1

    async def post(self, session: aiohttp.ClientSession, case: tuple[Any, ...]) -> None:
        name, context, content_type, headers, body, expected = case
        self.sent += 1
        try:
            async with session.post(
                self.url,
                data=body,
                headers={"Content-Type": content_type, "SOAPAction": '"ebXML"', **headers},
                ssl=context,
            ) as response:
                await response.read()
                if response.status != expected:
                    self._note(f"{name}: {response.status}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._note(f"{name}: {type(exc).__name__}")

    async def cut_off(self) -> None:
        """A body that stops half-way, then slow-loris headers: the server must close both."""
        self.sent += 2
        for opening in (
            b"POST /ebms HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4000000\r\n\r\n" + b"x" * 1_000_000,
            b"POST /ebms HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
        ):
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, ssl=self.partner, server_hostname="localhost"
                )
                writer.write(opening)
                await writer.drain()
                async with asyncio.timeout(120):
                    while await reader.read(65536):
                        pass
                writer.close()
            except TimeoutError:
                self._note("not closed by the server")
            except (OSError, ssl.SSLError):
                pass

    async def plain_tcp(self) -> None:
        self.sent += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            async with asyncio.timeout(120):
                await reader.read()
            writer.close()
        except TimeoutError:
            self._note("plain TCP not closed")
        except OSError:
            pass

    async def requests(self, session: aiohttp.ClientSession) -> None:
        """One of each hostile request, one after the other."""
        for case in self.bodies:
            await self.post(session, case)

    async def slow(self, connections: int) -> None:
        """``connections`` cut-off bodies, slow-loris headers and plain TCP connections at once."""
        await asyncio.gather(
            *(self.cut_off() for _ in range(connections)), *(self.plain_tcp() for _ in range(connections))
        )


async def _soak(url: str, port: int, pid: int, mix: Any, seconds: float, work: Path, report: Report) -> None:
    partner = loadgen.client_ssl()
    hostile = Hostile(url, port, partner, _stranger_context(work))
    valid = loadgen.LoadResult()
    stop = time.monotonic() + seconds
    start = time.monotonic()

    async def valid_traffic() -> None:
        async with loadgen.Client(url, connections=4) as client:
            while time.monotonic() < stop:
                message_id, template = mix.next()
                reason = await client.post(
                    message_id, template.content_type, template.body_for(message_id), "ack"
                )
                valid.sent += 1
                if reason is None:
                    valid.ok += 1
                else:
                    valid.errors[reason] += 1

    async def hostile_traffic() -> None:
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)
        ) as session:
            while time.monotonic() < stop:
                await hostile.requests(session)

    async def slow_traffic() -> None:
        while time.monotonic() < stop:
            await hostile.slow(10)

    def sample() -> None:
        report.add(
            t_s=round(time.monotonic() - start),
            rss_mib=round(rss_bytes(pid) / MIB, 1),
            valid_ok=valid.ok,
            valid_failed=sum(valid.errors.values()),
            hostile_sent=hostile.sent,
            hostile_unexpected=sum(hostile.unexpected.values()),
        )

    async def sampler() -> None:
        while time.monotonic() < stop:
            sample()
            await asyncio.sleep(SAMPLE_SECONDS)

    await asyncio.gather(valid_traffic(), valid_traffic(), hostile_traffic(), slow_traffic(), sampler())
    sample()
    if valid.errors:
        report.note(f"valid traffic failures: {dict(valid.errors)}")
    if hostile.unexpected:
        report.note(f"hostile answers not as expected: {hostile.unexpected}")


def run_soak(*, db: str, minutes: float) -> Report:
    report = Report("soak", {"db": db, "minutes": minutes})
    with work_folder() as work, private_database(db, work, "gemeente") as db_url:
        port = free_port()
        cpa_dir, agreement = inbound_cpa(work, sync=True, port=port)
        gemeente = party_settings("gemeente", work, db_url, cpa_dir, port, log_level="WARNING")
        rinis = party_settings("rinis", work, "sqlite://", cpa_dir, 0)
        mix = build_mix(agreement, rinis, mixed=True)
        with endpoint_process(gemeente, work, "gemeente") as server:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(
                    _soak(f"https://localhost:{port}/ebms", port, server.pid, mix, minutes * 60, work, report)
                )
            log_size = (work / "gemeente.log").stat().st_size if (work / "gemeente.log").exists() else 0
        rss = [row["rss_mib"] for row in report.rows]
        if rss:
            settled = rss[len(rss) // 3 :]  # after warm-up: caches, pools, first large messages
            report.note(
                f"RSS start {rss[0]} MiB, max {max(rss)} MiB, end {rss[-1]} MiB; after the first third: "
                f"min {min(settled)} / max {max(settled)} MiB "
                f"(drift {round(settled[-1] - settled[0], 1)} MiB)"
            )
        report.note(f"server log: {log_size} bytes")
    return report
