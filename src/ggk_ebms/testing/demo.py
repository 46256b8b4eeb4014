"""The machinery of ``ggk-ebms demo``: both sides of the dev CPA on loopback, talking to each other.

Test and demonstration code only (``ggk_ebms.testing``): no production path imports it; the
``demo`` command (``cli/demo_cmd.py``) imports it when it runs.

Starts the dev gemeente (by default https://localhost:8443/ebms) and the dev RINIS counterpart
(by default https://localhost:8444/ebms) in this process, each with its own temporary SQLite
database, the dev certificates of ``certs/dev/`` and the dev osb-rm CPA of ``cpa/``. The dev CPA
names ports 8443 and 8444; when other ports are asked for, each side gets a copy of the CPA whose
endpoint URIs name those ports instead (both sides must agree on the CPA). Then: Ping/Pong both
ways, and a reliable message each way, waiting until the sender sees it Delivered (its
Acknowledgment arrived) and the receiver has it Received. Every step is printed; the exit status
is 0 only when every step worked.

``certs/`` and ``cpa/`` are looked up in the project checkout the package is installed from
(``pip install -e``), else in the current folder: run it from the project root.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click

import ggk_ebms
from ggk_ebms.cli.main import fail
from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN, Settings
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.lifecycle import Status
from ggk_ebms.pipeline.outbound import is_final, load_agreement, submit_message
from ggk_ebms.pipeline.ping import ping
from ggk_ebms.pipeline.worker import worker_task
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.server.run import Endpoint, message_id_host, start_endpoint
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.messages import MessageStore, NewPart
from ggk_ebms.transport.client import EbmsClient

DEMO_CPA: Final = "dev-osb-rm.xml"
GEMEENTE_PORT: Final = 8443  # as in the dev CPAs
RINIS_PORT: Final = 8444
_CPA_ENDPOINT: Final = "https://localhost:{port}/ebms"
STEP_TIMEOUT: Final = 30.0
_POLL: Final = 0.1


def project_root() -> Path:
    """The folder holding ``certs/dev`` and ``cpa/``: the checkout of this package, else the cwd."""
    package_checkout = Path(ggk_ebms.__file__).resolve().parents[2]
    for candidate in (package_checkout, Path.cwd()):
        if (candidate / "certs" / "dev" / "ca.pem").is_file() and (candidate / "cpa" / DEMO_CPA).is_file():
            return candidate
    raise click.ClickException(
        f"certs/dev/ and cpa/{DEMO_CPA} not found beside the package nor in {Path.cwd()}; "
        "run `ggk-ebms demo` from the project root"
    )


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def demo_cpa(root: Path, gemeente_port: int, rinis_port: int) -> bytes:
    """The dev osb-rm CPA with its two endpoint URIs on the demo's ports.

    The dev CPA's endpoints are https://localhost:8443/ebms (gemeente) and :8444 (RINIS); the
    ebMS CPA's Endpoint element (ebCPP 2.0 §8.4.23) is where each side sends, so a demo on other
    ports needs a CPA that says so.
    """
    text = (root / "cpa" / DEMO_CPA).read_text(encoding="utf-8")
    for default, port in ((GEMEENTE_PORT, gemeente_port), (RINIS_PORT, rinis_port)):
        old = _CPA_ENDPOINT.format(port=default)
        if old not in text:
            raise click.ClickException(f"cpa/{DEMO_CPA} does not name the endpoint {old}")
        text = text.replace(old, _CPA_ENDPOINT.format(port=port))
    return text.encode("utf-8")


def side_settings(root: Path, work: Path, party: str, port: int, cpa: bytes) -> Settings:
    """One side of the demo: dev certificates, a SQLite database and CPA folder of its own."""
    certs = root / "certs" / "dev" / party
    cpa_dir = work / party / "cpa"
    cpa_dir.mkdir(parents=True)
    (cpa_dir / DEMO_CPA).write_bytes(cpa)
    return Settings(
        party_ids=[DEV_GEMEENTE_OIN if party == "gemeente" else DEV_RINIS_OIN],
        data_dir=work / party,
        cpa_dir=cpa_dir,
        host="127.0.0.1",
        port=port,
        tls_server_cert=certs / "server.pem",
        tls_server_key=certs / "server-key.pem",
        tls_client_cert=certs / "client.pem",
        tls_client_key=certs / "client-key.pem",
        tls_trust_store=root / "certs" / "dev" / "ca.pem",
        signing_key=certs / "client-key.pem",
        encryption_key=certs / "client-key.pem",
        worker_enabled=True,
        worker_poll_seconds=0.1,
        shutdown_grace_seconds=2.0,
        log_level="WARNING",
        api_enabled=False,  # both sides would want api_port; the demo does not use the API
    )


@dataclass
class _Side:
    name: str
    settings: Settings
    endpoint: Endpoint
    client: EbmsClient

    @property
    def database(self) -> Database:
        return self.endpoint.database


class _Steps:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.count = 0

    def ok(self, text: str) -> None:
        self.count += 1
        click.echo(click.style("  ok    ", fg="green") + text)

    def bad(self, text: str, *details: str) -> None:
        self.count += 1
        self.failed.append(text)
        click.echo(click.style("  FAIL  ", fg="red") + text)
        for detail in details:
            click.echo(f"        {detail}")


@contextlib.asynccontextmanager
async def _side(name: str, settings: Settings, steps: _Steps) -> AsyncIterator[_Side]:
    def on_database(database: Database) -> None:
        for line in import_cpa_dir(settings, database):
            click.echo(f"        {name}: {line}")

    endpoint = await start_endpoint(settings, on_database=on_database, workers=[worker_task(settings)])
    client = EbmsClient.from_settings(settings, client_context_from_settings(settings))
    steps.ok(f"{name} ({settings.party_ids[0]}) listens on https://localhost:{endpoint.port}/ebms")
    try:
        yield _Side(name, settings, endpoint, client)
    finally:
        await client.close()
        await endpoint.stop()


async def _ping(sender: _Side, receiver: _Side, cpa_id: str, steps: _Steps) -> None:
    result = await ping(
        sender.settings,
        sender.database,
        sender.client,
        cpa_id=cpa_id,
        ids=UuidIdGenerator(host=message_id_host(sender.settings)),
        clock=SystemClock(),
        pong_wait=STEP_TIMEOUT,
    )
    diagnosis = result.diagnosis
    if diagnosis.ok:
        steps.ok(f"Ping {sender.name} -> {receiver.name}: Pong in {diagnosis.round_trip_ms} ms")
    else:
        steps.bad(f"Ping {sender.name} -> {receiver.name}: no Pong", diagnosis.summary, diagnosis.advice)


async def _exchange(sender: _Side, receiver: _Side, cpa_id: str, steps: _Steps) -> None:
    agreement = await asyncio.to_thread(
        load_agreement, sender.database, cpa_id, max_cpa_bytes=sender.settings.max_cpa_bytes
    )
    ours = lookup.own_party(agreement, sender.settings.party_ids)
    binding = next((b for b in ours.bindings if b.direction == "send"), None)
    if binding is None:
        steps.bad(f"{sender.name} may send nothing under {cpa_id}")
        return
    ids = UuidIdGenerator(host=message_id_host(sender.settings))
    payload = (
        f'<demo xmlns="urn:ggk-ebms:demo"><from>{sender.name}</from><to>{receiver.name}</to></demo>'
    ).encode()
    message = await asyncio.to_thread(
        lambda: submit_message(
            sender.settings,
            sender.database,
            cpa_id=cpa_id,
            service=binding.service,
            action=binding.action,
            parts=[NewPart(f"{ids.uuid()}@{ids.host}", "application/xml", payload)],
            ids=ids,
            clock=SystemClock(),
        )
    )
    steps.ok(f"{sender.name} queued {binding.action} as {message.message_id}")
    sent_store, received_store = MessageStore(sender.database), MessageStore(receiver.database)
    deadline = time.monotonic() + STEP_TIMEOUT
    current = message
    received = None
    while time.monotonic() < deadline:
        current = await asyncio.to_thread(sent_store.get, message.pk)
        received = await asyncio.to_thread(received_store.find, "in", message.message_id)
        if is_final(current) and received is not None:
            break
        await asyncio.sleep(_POLL)
    if received is not None and received.status == Status.RECEIVED:
        steps.ok(f"{receiver.name} received it (status Received)")
    else:
        steps.bad(
            f"{receiver.name} did not receive it", f"status: {received.status if received else 'absent'}"
        )
    if current.status == Status.DELIVERED:
        steps.ok(f"{sender.name} sees it Delivered: {current.status_reason}")
    else:
        steps.bad(f"{sender.name} sees it {current.status}", current.status_reason or "")


async def run_demo(
    root: Path, work: Path, *, gemeente_port: int = GEMEENTE_PORT, rinis_port: int = RINIS_PORT
) -> _Steps:
    """Every step of the demo; ``_Steps.failed`` lists what did not work."""
    steps = _Steps()
    cpa = demo_cpa(root, gemeente_port, rinis_port)
    cpa_id = parse_agreement(cpa).cpa_id
    gemeente_settings = side_settings(root, work, "gemeente", gemeente_port, cpa)
    rinis_settings = side_settings(root, work, "rinis", rinis_port, cpa)
    async with (
        _side("gemeente", gemeente_settings, steps) as gemeente,
        _side("RINIS", rinis_settings, steps) as rinis,
    ):
        for side in (gemeente, rinis):
            if await asyncio.to_thread(CpaRepository(side.database).find, cpa_id) is None:
                steps.bad(f"{side.name} has not imported CPA {cpa_id}")
                return steps
        steps.ok(f"both sides imported CPA {cpa_id}")
        await _ping(gemeente, rinis, cpa_id, steps)
        await _ping(rinis, gemeente, cpa_id, steps)
        await _exchange(gemeente, rinis, cpa_id, steps)
        await _exchange(rinis, gemeente, cpa_id, steps)
    return steps


def run(gemeente_port: int, rinis_port: int) -> None:
    """The whole demo as the command runs it: checks the ports, runs every step, reports, exits."""
    if gemeente_port == rinis_port:
        fail(f"the gemeente and RINIS need two different ports (both are {gemeente_port})")
    root = project_root()
    taken = [port for port in (gemeente_port, rinis_port) if not port_free(port)]
    if taken:
        fail(
            f"port {', '.join(map(str, taken))} on 127.0.0.1 is in use; the demo needs {gemeente_port} and "
            f"{rinis_port}. Stop what listens there (a `ggk-ebms serve`?) or choose other ports with "
            "--gemeente-port/--rinis-port"
        )
    click.echo(
        f"ggk-ebms demo: dev gemeente (port {gemeente_port}) and dev RINIS (port {rinis_port}) on loopback "
        f"(material from {root})"
    )
    with tempfile.TemporaryDirectory(prefix="ggk-ebms-demo-") as work:
        try:
            steps = asyncio.run(
                run_demo(root, Path(work), gemeente_port=gemeente_port, rinis_port=rinis_port)
            )
        except OSError as exc:
            fail(f"cannot start the demo endpoints: {exc.strerror or exc}")
        except GgkEbmsError as exc:
            fail(str(exc))
    if steps.failed:
        click.secho(f"demo FAILED: {len(steps.failed)} of {steps.count} steps did not work", fg="red")
        raise SystemExit(1)
    click.secho(f"demo passed: all {steps.count} steps worked", fg="green")
