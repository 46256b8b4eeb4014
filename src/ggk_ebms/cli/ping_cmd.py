"""``ggk-ebms ping``: the Ping/Pong connectivity check with a diagnosis in plain words (docs/sending.md).

Exit status 0 only on a Pong that refers to our Ping; otherwise the layer where it failed (DNS,
connection, TLS, HTTP, SOAP, ebMS, timeout), what it means and what to do
(``transport.diagnosis``).
"""

from __future__ import annotations

import asyncio

import click

from ggk_ebms.cli.main import fail, open_database, settings_of
from ggk_ebms.clock import SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.pipeline.ping import DEFAULT_PONG_WAIT, PingResult, find_cpa_for_partner, ping
from ggk_ebms.runtime import Runtime
from ggk_ebms.security.tls import client_context_from_settings
from ggk_ebms.store.db import Database
from ggk_ebms.transport.client import EbmsClient


async def _ping(settings: Settings, database: Database, cpa_id: str, pong_wait: float) -> PingResult:
    runtime = Runtime.build(settings, database)
    async with EbmsClient.from_settings(settings, client_context_from_settings(settings)) as client:
        return await ping(
            settings,
            database,
            client,
            cpa_id=cpa_id,
            ids=runtime.ids,
            clock=runtime.clock,
            pong_wait=pong_wait,
        )


def report(result: PingResult) -> None:
    """Print the verdict: one line for a Pong, the diagnosis in full otherwise."""
    diagnosis = result.diagnosis
    partner = result.target.partner_oin
    if diagnosis.ok:
        how = " (asynchronous)" if result.asynchronous else ""
        click.echo(f"Pong from {partner} in {diagnosis.round_trip_ms} ms{how}")
        return
    click.secho(f"No Pong from {partner} at {result.target.endpoint} [{diagnosis.layer.value}]", fg="red")
    click.echo(f"  {diagnosis.summary}")
    click.echo(f"  What to do: {diagnosis.advice}")
    if diagnosis.detail:
        click.echo(f"  Detail: {diagnosis.detail}")


@click.command("ping")
@click.option("--cpa", "cpa_id", default=None, help="CPAId of the agreement to ping the partner of.")
@click.option("--partner", default=None, help="The partner's OIN; the CPA we share with it is used.")
@click.option(
    "--pong-wait",
    type=click.FloatRange(min=0),
    default=DEFAULT_PONG_WAIT,
    show_default=True,
    help="Seconds to wait for an asynchronous Pong after a 204 (needs `serve` on this database).",
)
@click.pass_context
def ping_command(ctx: click.Context, cpa_id: str | None, partner: str | None, pong_wait: float) -> None:
    """Send an ebMS Ping and report the Pong with its round trip, or what is wrong."""
    if (cpa_id is None) == (partner is None):
        fail("give exactly one of --cpa and --partner")
    settings = settings_of(ctx)
    database = open_database(settings)
    try:
        if cpa_id is None:
            assert partner is not None
            cpa_id = find_cpa_for_partner(database, settings, partner, SystemClock().now())
        result = asyncio.run(_ping(settings, database, cpa_id, pong_wait))
        if result.ok:
            # The GGk activates a CPA after a successful Ping Pong (GGk handleiding: CPA Beheer).
            from ggk_ebms.cli.ops_support import service_context
            from ggk_ebms.services.cpa_beheer import register_pong

            register_pong(service_context(settings, database), cpa_id)
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    report(result)
    if not result.ok:
        raise SystemExit(1)
