"""``ggk-ebms dev-certs``: write the dev PKI (test CA, server and client certificates per party).

The material is minted by ``ggk_ebms.testing.pki`` (imported when the command runs: test-only
code stays off every other command's path) and only written here. It is TEST MATERIAL:
test OINs (prefix 00000099, OIN-stelsel ch. 6), a self-made CA no partner trusts, unencrypted keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN

if TYPE_CHECKING:
    from ggk_ebms.testing.pki import DevParty


def dev_parties() -> tuple[DevParty, ...]:
    from ggk_ebms.testing.pki import DevParty

    return (
        DevParty(folder="gemeente", name="Gemeente", oin=DEV_GEMEENTE_OIN),
        DevParty(folder="rinis", name="RINIS", oin=DEV_RINIS_OIN),
    )


def readme(parties: tuple[DevParty, ...], not_before: datetime, days: int) -> str:
    """certs/dev/README.md: what the files are, how they were made, and that they are test-only."""
    from ggk_ebms.config import TEST_ORGANIZATION

    rows = "\n".join(f"| `{p.folder}/` | {p.name} | `{p.oin}` |" for p in parties)
    return f"""# Dev PKI — TEST MATERIAL, NEVER FOR PRODUCTION

Everything in this folder is test material. The private keys are committed, unencrypted, on
purpose: anyone can read them, so nothing signed or encrypted with them proves or hides anything.
Never configure a production endpoint with these files and never add `ca.pem` to a production trust
store. Production uses PKIoverheid certificates (see docs/security.md).

## How it was made

    ggk-ebms dev-certs --out <this folder> --not-before {not_before:%Y-%m-%d} --days {days} --force

- Validity: {not_before:%Y-%m-%d} for {days} days, every certificate alike.
- Keys: RSA 2048 (rsa-sha256 signing and RSA-OAEP key transport need RSA), PKCS#8 PEM, unencrypted.
- Subjects: C=NL, O={TEST_ORGANIZATION}, CN, and the party's test OIN in
  serialNumber (OID 2.5.4.5), as PKIoverheid certificates carry it.

## Files

- `ca.pem`, `ca-key.pem`: the self-signed dev CA; `ca.pem` is the dev trust store.
- `<party>/server.pem`, `server-key.pem`: TLS server certificate, CN localhost, SAN DNS localhost and
  IP 127.0.0.1, extended key usage serverAuth.
- `<party>/client.pem`, `client-key.pem`: TLS client certificate (clientAuth); key usage
  digitalSignature, nonRepudiation and keyEncipherment, so the dev CPAs also use it as signing and
  encryption certificate.

| Folder | Party | Test OIN |
|---|---|---|
{rows}
"""


def fail(message: str) -> NoReturn:
    """``cli.main.fail``, imported on use: cli.main imports this module while registering its
    commands, so a top-level import would be circular when this module is imported first."""
    from ggk_ebms.cli.main import fail as report

    report(message)


@click.command("dev-certs")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("certs/dev"),
    show_default=True,
    help="Folder to write the dev PKI to.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--days", type=click.IntRange(min=1), default=3650, show_default=True, help="Validity in days.")
@click.option(
    "--not-before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day of validity (UTC, YYYY-MM-DD). Default: today.",
)
@click.option(
    "--oin",
    default=DEV_GEMEENTE_OIN,
    show_default=True,
    help="OIN of the gemeente in the certificates; a test OIN (prefix 00000099) only.",
)
@click.option("--name", default="Gemeente", show_default=True, help="Name of the gemeente (client CN).")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="Host name the gemeente's server certificate is for (repeatable; localhost is always in it).",
)
def dev_certs(
    out: Path,
    force: bool,
    days: int,
    not_before: datetime | None,
    oin: str,
    name: str,
    hosts: tuple[str, ...],
) -> None:
    """Create a TEST CA plus server and client certificates for a test gemeente and RINIS.

    TEST MATERIAL, NEVER FOR PRODUCTION: test OINs, unencrypted keys, a CA nobody trusts.
    For a test set-up of your own: --oin, --name and --host, then `ggk-ebms init --test-setup`.
    """
    from ggk_ebms.testing.pki import DevParty, check_test_oin, dev_pki_files

    try:
        check_test_oin(oin)
    except ValueError as exc:
        fail(str(exc))
    gemeente = DevParty(
        folder="gemeente", name=name, oin=oin, dns_names=tuple(dict.fromkeys((*hosts, "localhost")))
    )
    parties = (gemeente, dev_parties()[1])
    start = (not_before or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
    files = dev_pki_files(parties, not_before=start, days=days)
    files["README.md"] = readme(parties, start, days).encode("utf-8")
    existing = sorted(name for name in files if (out / name).exists())
    if existing and not force:
        fail(f"{out} already holds {', '.join(existing)}; use --force to overwrite")
    try:
        for name, content in files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            if name.endswith("-key.pem"):
                path.chmod(0o600)
    except OSError as exc:
        fail(f"cannot write the dev PKI to {out}: {exc}")
    click.echo(f"Wrote the dev PKI (TEST MATERIAL, never for production) to {out}:")
    for name in sorted(files):
        click.echo(f"  {out / name}")
