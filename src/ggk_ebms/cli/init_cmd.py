"""``ggk-ebms init``: the guided first set-up of a gemeente's installation (docs/operations.md).

Asks what a gemeente's beheerder knows (every question is also a flag, for automation), checks
each answer against the real thing (the database by connecting, the certificates with
ggk_ebms/setup/certcheck.py), and only when everything holds writes the commented settings file,
creates the folders, runs the migrations, runs ``config check`` and prints the next steps.
Nothing is written when a check fails.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import click
from cryptography import x509

from ggk_ebms.cli.config_cmd import TEST_OIN_PREFIX
from ggk_ebms.config import load
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.gemeentecodes import cbs_gemeentecodes, is_gemeentecode_form
from ggk_ebms.security.keys import load_private_key
from ggk_ebms.setup.certcheck import Role, check_certificate, host_in_certificate, names_of
from ggk_ebms.setup.settingsfile import render
from ggk_ebms.store.db import Database

_OIN = re.compile(r"[0-9]{20}")
_NO_INPUT = "ggk_ebms.init.no_input"

if TYPE_CHECKING:  # ParamType is generic for type checkers; click < 8.2 cannot subscript it
    _CodesType = click.ParamType[list[str]]
    _ListenType = click.ParamType[tuple[str, int]]
else:
    _CodesType = _ListenType = click.ParamType


class _Asked(click.Option):
    """An option that is asked for when missing, unless --no-input (automation: flags only)."""

    def consume_value(self, ctx: click.Context, opts: Any) -> Any:
        if not ctx.meta.get(_NO_INPUT):
            return super().consume_value(ctx, opts)
        saved, self.prompt = self.prompt, None
        try:
            return super().consume_value(ctx, opts)
        finally:
            self.prompt = saved


def _no_input(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[_NO_INPUT] = value
    return value


_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


def _fail(message: str) -> NoReturn:
    from ggk_ebms.cli.main import fail

    fail(message)


def _oin(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    value = value.strip()
    if not _OIN.fullmatch(value):
        raise click.BadParameter("een OIN bestaat uit precies 20 cijfers")
    return value


class _Codes(_CodesType):
    """Comma-separated gemeentecodes -> list (idempotent: click converts a prompted value twice)."""

    name = "codes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        codes = [c.strip() for c in str(value).replace(";", ",").split(",") if c.strip()]
        if not codes:
            self.fail("noem minstens één gemeentecode (4 cijfers, bijvoorbeeld 0363)", param, ctx)
        bad = [c for c in codes if not is_gemeentecode_form(c)]
        if bad:
            self.fail(f"geen gemeentecode (4 cijfers): {', '.join(bad)}", param, ctx)
        return list(dict.fromkeys(codes))


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise click.BadParameter("de publieke endpoint-URL begint met https:// en noemt een host")
    return value.strip()


class _Listen(_ListenType):
    """host:port -> (host, port) (idempotent: click converts a prompted value twice)."""

    name = "host:port"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        host, _, port = str(value).strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            self.fail("geef het luisteradres als host:poort, bijvoorbeeld 0.0.0.0:8443", param, ctx)
        return host, int(port)


def _load_chain(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise click.ClickException(f"{path} bevat geen leesbaar certificaat (PEM of DER)") from None


def _check_pair(
    role: Role,
    cert: Path,
    key_path: Path,
    trust: list[x509.Certificate],
    *,
    oin: str,
    passphrase_file: Path | None,
    now: datetime,
    allow_test: bool,
) -> tuple[list[str], list[str], list[x509.Certificate]]:
    errors: list[str] = []
    warnings: list[str] = []
    try:
        chain = _load_chain(cert)
    except click.ClickException as exc:
        return [exc.message], [], []
    try:
        key = load_private_key(key_path, passphrase_file=passphrase_file)
    except GgkEbmsError as exc:
        return [f"{role}-sleutel: {exc}"], [], chain
    for finding in check_certificate(role, chain, key, trust, oin=oin, now=now, allow_test=allow_test):
        (errors if finding.error else warnings).append(f"{role}-certificaat {cert}: {finding.text}")
    return errors, warnings, chain


def _check_database(url: str) -> str | None:
    try:
        database = Database(url)
    except GgkEbmsError as exc:
        return str(exc)
    sqlite_file = database.sqlite_file
    if sqlite_file is not None and not sqlite_file.exists():
        database.dispose()
        return None  # a new SQLite file: created with the folders, then migrated
    try:
        database.ping()
        database.check_not_newer()
    except GgkEbmsError as exc:
        return f"{database.display_url}: {exc}"
    finally:
        database.dispose()
    return None


def _next_steps(values: dict[str, Any], organisation: str, oin: str, endpoint: str, out: Path) -> list[str]:
    return [
        "",
        "Volgende stappen:",
        "  1. Vraag bij de GGk (BIDN) de CPA aan met deze gegevens:",
        f"       organisatie:        {organisation}",
        f"       OIN:                {oin}",
        f"       endpoint-URL:       {endpoint}",
        f"       servercertificaat:  {values['tls_server_cert']}",
        f"       clientcertificaat:  {values['tls_client_cert']} (ook voor ondertekenen en versleutelen)",
        f"       gemeentecodes:      {', '.join(values['served_gemeentecodes'])}",
        f"  2. Importeer de ontvangen CPA: ggk-ebms --config {out} cpa import <cpa.xml>",
        f"     (of zet het bestand in {values['cpa_dir']}: bij de start wordt het geïmporteerd).",
        f"  3. Leg de routering vast: ggk-ebms --config {out} routes import <routes.toml>",
        "  4. Start de dienst: systemctl enable --now ggk-ebms (deploy/ggk-ebms.service).",
        f"  5. Test de verbinding met Ping Pong: ggk-ebms --config {out} ping --cpa <CPAId>",
        "Zie docs/operations.md voor de dienst, back-ups, upgrades en monitoring.",
    ]


@click.command("init")
@click.option(
    "--organisation",
    cls=_Asked,
    required=True,
    prompt="Naam van de organisatie",
    help="The organisation's name (for the CPA request).",
)
@click.option(
    "--oin",
    cls=_Asked,
    required=True,
    prompt="OIN van de organisatie (20 cijfers)",
    callback=_oin,
    help="Our OIN: 20 digits.",
)
@click.option(
    "--gemeentecodes",
    "codes",
    cls=_Asked,
    required=True,
    prompt="Gemeentecodes die deze koppeling bedient (bijv. 0363,0518)",
    type=_Codes(),
    help="Gemeentecodes served, comma-separated (setting served_gemeentecodes).",
)
@click.option(
    "--data-dir",
    cls=_Asked,
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    prompt="Map voor gegevens",
    default=Path("/var/lib/ggk-ebms"),
    show_default=True,
    help="Folder for state: SQLite database, CPAs to import, outbox, backups.",
)
@click.option(
    "--database-url",
    cls=_Asked,
    required=True,
    prompt="Database-URL (leeg: SQLite in de gegevensmap)",
    default="",
    show_default=False,
    help="SQLAlchemy URL, e.g. postgresql+psycopg://ggk@db:5432/ggk. Empty: SQLite in data_dir.",
)
@click.option(
    "--server-cert",
    cls=_Asked,
    required=True,
    type=_FILE,
    prompt="PKIoverheid servercertificaat (PEM)",
    help="TLS server certificate.",
)
@click.option(
    "--server-key",
    cls=_Asked,
    required=True,
    type=_FILE,
    prompt="Sleutel van het servercertificaat",
    help="Its private key.",
)
@click.option(
    "--client-cert",
    cls=_Asked,
    required=True,
    type=_FILE,
    prompt="PKIoverheid clientcertificaat (PEM)",
    help="TLS client certificate.",
)
@click.option(
    "--client-key",
    cls=_Asked,
    required=True,
    type=_FILE,
    prompt="Sleutel van het clientcertificaat",
    help="Its private key.",
)
@click.option(
    "--trust-store",
    cls=_Asked,
    required=True,
    type=_FILE,
    prompt="Vertrouwde CA's (PEM-bundel: Staat der Nederlanden Private Root CA - G1 en tussen-CA's)",
    help="CA bundle partner certificates must chain to; our own must chain to it too.",
)
@click.option(
    "--key-passphrase-file",
    type=_FILE,
    default=None,
    help="File with the passphrase of encrypted private keys (setting key_passphrase_file).",
)
@click.option(
    "--endpoint-url",
    cls=_Asked,
    required=True,
    prompt="Publieke endpoint-URL (https://host/pad, zoals in de CPA)",
    callback=_endpoint,
    help="The https URL partners send to; its host must be in the server certificate.",
)
@click.option(
    "--listen",
    cls=_Asked,
    required=True,
    prompt="Luisteradres (host:poort)",
    default="0.0.0.0:8443",
    show_default=True,
    type=_Listen(),
    help="Address and port the server binds to.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file to write. Default: the --config file, else ./ggk-ebms.toml.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing settings file.")
@click.option(
    "--no-input",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_no_input,
    help="Ask nothing: every answer comes from the flags (and the defaults shown).",
)
@click.option(
    "--test-setup",
    is_flag=True,
    help="Allow test certificates (dev-certs) and a test OIN (prefix 00000099). Never for production.",
)
@click.pass_context
def init(
    ctx: click.Context,
    organisation: str,
    oin: str,
    codes: list[str],
    data_dir: Path,
    database_url: str,
    server_cert: Path,
    server_key: Path,
    client_cert: Path,
    client_key: Path,
    trust_store: Path,
    key_passphrase_file: Path | None,
    endpoint_url: str,
    listen: tuple[str, int],
    out: Path | None,
    force: bool,
    test_setup: bool,
) -> None:
    """Set up an installation: check the answers, write the settings file, create the database."""
    from ggk_ebms.cli.config_cmd import ERROR, WARN, _print, run_checks

    now = datetime.now(UTC)
    out = out or getattr(ctx.find_root().obj, "config_file", None) or Path("ggk-ebms.toml")
    if out.exists() and not force:
        _fail(f"{out} bestaat al; kies een andere naam met --out of overschrijf met --force")
    organisation = organisation.strip()
    if not organisation:
        _fail("de naam van de organisatie is leeg")
    errors: list[str] = []
    warnings: list[str] = []
    if oin.startswith(TEST_OIN_PREFIX) and not test_setup:
        errors.append(f"OIN {oin} is een test-OIN (begint met {TEST_OIN_PREFIX}): alleen met --test-setup")
    known = cbs_gemeentecodes()
    unknown = [c for c in codes if c not in known]
    if unknown and test_setup:
        # The GGk portal's test code 9999 and the like: served as test_gemeentecodes.
        warnings.append(
            f"gemeentecode(s) {', '.join(unknown)} niet in de CBS-lijst {known.year}: als testcode"
        )
    elif unknown:
        errors.append(f"gemeentecode(s) {', '.join(unknown)} staan niet in de CBS-lijst {known.year}")

    try:
        trust = _load_chain(trust_store)
    except click.ClickException as exc:
        _fail(exc.message)
    server_errors, server_warnings, server_chain = _check_pair(
        "server",
        server_cert,
        server_key,
        trust,
        oin=oin,
        passphrase_file=key_passphrase_file,
        now=now,
        allow_test=test_setup,
    )
    client_errors, client_warnings, _ = _check_pair(
        "client",
        client_cert,
        client_key,
        trust,
        oin=oin,
        passphrase_file=key_passphrase_file,
        now=now,
        allow_test=test_setup,
    )
    errors += server_errors + client_errors
    warnings += server_warnings + client_warnings
    endpoint = urlsplit(endpoint_url)
    host = endpoint.hostname or ""
    if server_chain and not host_in_certificate(host, server_chain[0]):
        errors.append(
            f"de host {host} van de endpoint-URL staat niet in het servercertificaat "
            f"(dat noemt: {', '.join(names_of(server_chain[0])) or 'niets'})"
        )
    if database_url:
        problem = _check_database(database_url)
        if problem:
            errors.append(f"database: {problem}")

    for text in warnings:
        click.secho(f"LET OP {text}", fg="yellow")
    if errors:
        for text in errors:
            click.secho(f"FOUT   {text}", fg="red", err=True)
        _fail(f"{len(errors)} fout(en): er is niets geschreven")

    data_dir = data_dir.resolve()
    values: dict[str, Any] = {
        "party_ids": [oin],
        "served_gemeentecodes": codes,
        "test_gemeentecodes": unknown or None,
        "data_dir": data_dir,
        "database_url": database_url or None,
        "cpa_dir": data_dir / "cpa",
        "outbox_dir": data_dir / "outbox",
        "routes_file": "",  # no dev table: the routing table is imported deliberately (step 3)
        "host": listen[0],
        "port": listen[1],
        "path": endpoint.path or "/",
        "message_id_host": host,
        "tls_server_cert": server_cert.resolve(),
        "tls_server_key": server_key.resolve(),
        "tls_client_cert": client_cert.resolve(),
        "tls_client_key": client_key.resolve(),
        "tls_trust_store": trust_store.resolve(),
        # Digikoppeling lets one PKIoverheid certificate serve TLS client, signing and
        # encryption; a separate signing/encryption key can be set in the file afterwards.
        "signing_key": client_key.resolve(),
        "encryption_key": client_key.resolve(),
        "key_passphrase_file": None if key_passphrase_file is None else key_passphrase_file.resolve(),
        "log_format": "text",
        "log_level": "INFO",
    }
    try:
        for folder in (data_dir, data_dir / "cpa", data_dir / "outbox", data_dir / "backups"):
            folder.mkdir(parents=True, exist_ok=True)
        text = render(
            values,
            organisation=organisation,
            oin=oin,
            created=f"{now:%Y-%m-%d %H:%M} UTC",
            test_setup=test_setup,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)  # may name a password URL
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _fail(f"kan niet schrijven: {exc}")
    click.echo(f"Instellingen geschreven naar {out}; mappen aangemaakt in {data_dir}.")

    try:
        settings = load(out)
        database = Database.from_settings(settings)
        try:
            database.upgrade()
            click.echo(
                f"Database {database.display_url} staat op schemarevisie {database.current_revision()}."
            )
        finally:
            database.dispose()
    except GgkEbmsError as exc:
        _fail(str(exc))

    click.echo("")
    click.echo(f"ggk-ebms --config {out} config check:")
    findings = run_checks(settings, now)
    for finding in findings:
        _print(finding)
    failed = sum(1 for f in findings if f.level == ERROR)
    click.echo(f"{failed} error(s), {sum(1 for f in findings if f.level == WARN)} warning(s)")
    for line in _next_steps(values, organisation, oin, endpoint_url, out):
        click.echo(line)
    ctx.exit(1 if failed else 0)
