"""``ggk-ebms demo``: both sides of the dev CPA on loopback, talking to each other (issue 4).

Starts the dev gemeente (https://localhost:8443/ebms) and the dev RINIS counterpart
(https://localhost:8444/ebms) in this process, each with its own temporary SQLite database, the
dev certificates of ``certs/dev/`` and the dev osb-rm CPA of ``cpa/`` (the ports are the ones in
that CPA). Then: Ping/Pong both ways, and a reliable message each way, waiting until the sender
sees it Delivered (its Acknowledgment arrived) and the receiver has it Received. Every step is
printed; the exit status is 0 only when every step worked.

``certs/`` and ``cpa/`` are looked up in the project checkout the package is installed from
(``pip install -e``), else in the current folder: run it from the project root.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
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


def side_settings(root: Path, work: Path, party: str, port: int) -> Settings:
    """One side of the demo: dev certificates, a SQLite database and CPA folder of its own."""
    certs = root / "certs" / "dev" / party
    cpa_dir = work / party / "cpa"
    cpa_dir.mkdir(parents=True)
    shutil.copy(root / "cpa" / DEMO_CPA, cpa_dir / DEMO_CPA)
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


async def run_demo(root: Path, work: Path) -> _Steps:
    """Every step of the demo; ``_Steps.failed`` lists what did not work."""
    steps = _Steps()
    cpa_id = parse_agreement((root / "cpa" / DEMO_CPA).read_bytes()).cpa_id
    gemeente_settings = side_settings(root, work, "gemeente", GEMEENTE_PORT)
    rinis_settings = side_settings(root, work, "rinis", RINIS_PORT)
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


@click.command("demo")
def demo() -> None:
    """Run the dev gemeente and the dev RINIS on loopback: Ping/Pong and a reliable message both ways.

    Needs ports 8443 and 8444 free (the endpoints of the dev CPAs). Leaves nothing behind: the
    databases live in a temporary folder. Exit status 0 only when every step worked.
    """
    root = project_root()
    taken = [port for port in (GEMEENTE_PORT, RINIS_PORT) if not port_free(port)]
    if taken:
        fail(
            f"port {', '.join(map(str, taken))} on 127.0.0.1 is in use; the demo needs 8443 and 8444 "
            "(the endpoints of the dev CPAs). Stop what listens there (a `ggk-ebms serve`?) and try again"
        )
    click.echo(f"ggk-ebms demo: dev gemeente and dev RINIS on loopback (material from {root})")
    with tempfile.TemporaryDirectory(prefix="ggk-ebms-demo-") as work:
        try:
            steps = asyncio.run(run_demo(root, Path(work)))
        except OSError as exc:
            fail(f"cannot start the demo endpoints: {exc.strerror or exc}")
        except GgkEbmsError as exc:
            fail(str(exc))
    if steps.failed:
        click.secho(f"demo FAILED: {len(steps.failed)} of {steps.count} steps did not work", fg="red")
        raise SystemExit(1)
    click.secho(f"demo passed: all {steps.count} steps worked", fg="green")
