"""Two ``ggk-ebms serve`` nodes in two network namespaces sharing one PostgreSQL schema.

Each node has an address of its own (bench/netns.py), as two machines would; both reach
PostgreSQL through a relay in the root namespace. Traffic both ways at once:

* inbound: the counterpart (RINIS, the load generator) sends Di01 heenberichten to both nodes;
  each must be acknowledged, stored once, and delivered once to the shared directory target by
  whichever node's delivery worker claims it (store/jobs.py, FOR UPDATE SKIP LOCKED);
* outbound: messages queued with each node's settings (its own MessageId host) are sent by
  whichever node's send worker claims them to the partner (an endpoint in this process, in the
  root namespace); the partner must hold each exactly once and our attempt log must show one
  send per message.

Skipped, with the reason, where network namespaces cannot be made (not root, no iproute2, a
container without CAP_NET_ADMIN). No timing is asserted: completion is polled with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from bench import loadgen, netns
from bench.endtoend import routes_file
from bench.messages import Mix, build_mix
from bench.nodes import Cluster, check_deliveries, cluster_of, node_cpa, node_process, node_settings
from bench.setup import cpa_folder

from ggk_ebms.clock import SystemClock, UuidIdGenerator
from ggk_ebms.config import Settings
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.server.autoimport import import_cpa_dir, import_routes_file
from ggk_ebms.store import tables
from ggk_ebms.store.db import Database
from ggk_ebms.store.jobs import JobQueue
from ggk_ebms.store.messages import MessageStore, NewPart
from tests.endpoint import party_settings
from tests.outbound_support import GEMEENTE_ACTION, SERVICE, eventually, received_ids, started
from tests.process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

INBOUND_PER_NODE = 15
OUTBOUND_PER_NODE = 8


@pytest.fixture
def cluster(tmp_path: Path, pg_schema_url: str) -> Iterator[Cluster]:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(f"two nodes need network namespaces: {reason}")
    with cluster_of(2, tmp_path, pg_schema_url) as made:
        yield made


def _prepare(cluster: Cluster, settings: Settings) -> Database:
    """Migrate and import the routing table once, before the nodes start (docs/nodes.md)."""
    database = Database.from_settings(settings.replace(database_url=cluster.db_url))
    database.upgrade()
    lines = list(import_routes_file(settings, database))
    assert not [line for line in lines if "not imported" in line or "does not exist" in line], lines
    return database


def _import_cpa(settings: Settings, database: Database) -> None:
    lines = list(import_cpa_dir(settings, database))
    assert lines and not [line for line in lines if "not imported" in line], lines


async def _until_accepted(url: str, mix: Mix, *, timeout: float = 30.0) -> None:
    """Send one message at a time to ``url`` until one is acknowledged (the node knows the CPA).

    Messages refused before that (403 at the TLS identity gate) are not stored.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await loadgen.closed_loop(url, mix, expect="ack", concurrency=1, count=1)
        if result.ok == 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not accept a message within {timeout} s: {dict(result.errors)}")
        await asyncio.sleep(0.2)


def _queue(settings: Settings, database: Database, cpa_id: str, count: int) -> list[int]:
    """Outbound messages queued as this node queues them: its MessageId host on every id."""
    ids = UuidIdGenerator(host=settings.message_id_host)
    return [
        submit_message(
            settings,
            database,
            cpa_id=cpa_id,
            service=SERVICE,
            action=GEMEENTE_ACTION,
            parts=[NewPart(f"{ids.uuid()}@{settings.message_id_host}", "application/xml", b"<n/>")],
            ids=ids,
            clock=SystemClock(),
        ).pk
        for _ in range(count)
    ]


def _outbound_final(database: Database, pks: list[int]) -> bool:
    store = MessageStore(database)
    return all(store.get(pk).status == "Delivered" for pk in pks)


def _inbound_final(database: Database, count: int) -> bool:
    m = tables.message
    query = sa.select(sa.func.count()).where(
        m.c.direction == "in", m.c.kind == "business", m.c.status.in_(("Forwarded", "Processed", "Failed"))
    )
    with database.connection() as conn:
        return int(conn.execute(query).scalar_one()) >= count


async def test_two_nodes_store_deliver_and_send_every_message_once(tmp_path: Path, cluster: Cluster) -> None:
    partner_port = free_port(cluster.lan.host_address)
    cpa = node_cpa(cluster.lan, cluster.port, partner_port, certs=tmp_path / "certs", sync_reply=True)
    cpa_dir, agreement = cpa_folder(tmp_path, "nodes", cpa)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    routes_file(tmp_path, inbox)
    # The nodes neither migrate nor import: the CPA arrives while they run (below).
    nodes = [node_settings(cluster, n, cpa_dir, log_level="INFO") for n in range(2)]
    database = _prepare(cluster, nodes[0])
    partner_certs = tmp_path / "certs" / "rinis"
    partner = party_settings(
        "rinis",
        tmp_path / "partner",
        f"sqlite:///{tmp_path / 'partner.db'}",
        cpa_dir,
        host=cluster.lan.host_address,
        port=partner_port,
        tls_server_cert=partner_certs / "server.pem",
        tls_server_key=partner_certs / "server-key.pem",
        allow_dev_certificates_public=True,  # a LAN inside this host
    )
    mix = build_mix(agreement, partner, mixed=False, berichttype="WMO305")
    urls = [f"https://{node.address}:{cluster.port}/ebms" for node in cluster.lan.nodes]
    probes = 0
    with ExitStack() as stack:
        async with started(partner, worker=False) as peer:
            for n in range(2):
                await asyncio.to_thread(stack.enter_context, node_process(cluster, n, nodes[n]))
            # A CPA imported elsewhere (here: from the root namespace, as the CLI on a third
            # machine) reaches both running nodes without a restart (docs/nodes.md).
            _import_cpa(nodes[0], database)
            for url in urls:
                await _until_accepted(url, mix)
                probes += 1
            queued = {n: _queue(nodes[n], database, agreement.cpa_id, OUTBOUND_PER_NODE) for n in range(2)}
            sent = await asyncio.gather(
                *(
                    loadgen.closed_loop(url, mix, expect="ack", concurrency=3, count=INBOUND_PER_NODE)
                    for url in urls
                )
            )
            pks = queued[0] + queued[1]
            await eventually(
                lambda: _outbound_final(database, pks), timeout=60, what="every outbound message Delivered"
            )
            await eventually(
                lambda: _inbound_final(database, 2 * INBOUND_PER_NODE + probes),
                timeout=60,
                what="every inbound message delivered",
            )
            at_partner = received_ids(peer.database)

    # Inbound: every message acknowledged by the node it was sent to, stored once, one file, one
    # deliver job that ran once with one successful attempt.
    for part in sent:
        assert part.ok == INBOUND_PER_NODE, part.errors
    check = check_deliveries(cluster.db_url, inbox)
    assert check.problems(2 * INBOUND_PER_NODE + probes) == []
    # Outbound: the partner holds each message once, and each was sent once (one attempt, 200).
    store, jobs = MessageStore(database), JobQueue(database)
    ours = {store.get(pk).message_id for pk in pks}
    assert len(at_partner) == len(set(at_partner)) == len(pks)
    assert set(at_partner) == ours
    for pk in pks:
        attempts = jobs.attempts(pk)
        assert len(attempts) == 1 and attempts[0].http_status == 200, f"message {pk} sent {len(attempts)}x"
    for n in range(2):
        assert all(store.get(pk).message_id.endswith(f"@{nodes[n].message_id_host}") for pk in queued[n])
    database.dispose()
