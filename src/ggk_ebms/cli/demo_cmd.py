"""``ggk-ebms demo``: the dev gemeente and the dev RINIS on loopback, talking to each other.

Only the command lives here; its machinery is test and demonstration code in
``ggk_ebms.testing.demo``, imported when the command runs so that no other command (and no
production path) loads it.
"""

from __future__ import annotations

import click


@click.command("demo")
@click.option(
    "--gemeente-port",
    type=click.IntRange(1, 65535),
    default=8443,
    show_default=True,
    help="Port of the dev gemeente on 127.0.0.1 (the dev CPA's endpoint).",
)
@click.option(
    "--rinis-port",
    type=click.IntRange(1, 65535),
    default=8444,
    show_default=True,
    help="Port of the dev RINIS on 127.0.0.1 (the dev CPA's endpoint).",
)
def demo(gemeente_port: int, rinis_port: int) -> None:
    """Run the dev gemeente and the dev RINIS on loopback: Ping/Pong and a reliable message both ways.

    Needs the two ports free. Leaves nothing behind: the databases live in a temporary folder.
    Exit status 0 only when every step worked.
    """
    from ggk_ebms.testing.demo import run

    run(gemeente_port, rinis_port)
