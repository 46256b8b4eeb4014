"""``ggk-ebms config``: show the effective settings, check them, and generate their documentation.

``show`` and ``docs`` read the declarations in ggk_ebms/config.py (one declaration per setting,
with its help text), so the table, the check and docs/configuration.md cannot drift apart.
``check`` opens every file a setting names and the database, and prints one line per check
with OK, WARN or ERROR; it exits 1 when any check is an ERROR.
"""

from __future__ import annotations

import itertools
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NoReturn

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ggk_ebms.cli.output import Column, dumps, echo_table, emit, json_option
from ggk_ebms.config import CONFIG_ENV, DEFAULT_CONFIG_FILE, ENV_PREFIX, Settings, declared, load, shown
from ggk_ebms.cpa import lookup
from ggk_ebms.cpa.parse import parse_agreement
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.security.keys import key_matches_certificate, load_private_key, passphrase_from_settings

DOCS_FILE: Final = Path("docs/configuration.md")
EXPIRY_WARNING: Final = timedelta(days=30)
# OINs with this prefix are test OINs (OIN-stelsel ch. 6); a production endpoint never has one.
TEST_OIN_PREFIX: Final = "00000099"
TEST_MATERIAL: Final = "test material, never for production"


def _settings(ctx: click.Context) -> Settings:
    # cli.main imports this module while registering commands: import it on use, not at the top.
    from ggk_ebms.cli.main import settings_of

    return settings_of(ctx)


def _fail(message: str) -> NoReturn:
    from ggk_ebms.cli.main import fail

    fail(message)


@click.group("config")
def config() -> None:
    """Settings: show them, check them, write their documentation."""


# --- show -------------------------------------------------------------------------------------------


SHOW_COLUMNS = [Column("name", "setting"), Column("value_text", "value"), Column("help", "help")]


@config.command("show")
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings (defaults, settings file, environment) with their help."""
    config_file: Path | None = getattr(ctx.find_root().obj, "config_file", None)
    records = [
        {"name": name, "value": value, "help": help_text} for name, value, help_text in shown(_settings(ctx))
    ]
    rows = [{**r, "value_text": r["value"] or "(empty)"} for r in records]
    emit(
        {"source": _settings_source(config_file), "settings": records},
        as_json=as_json,
        text=lambda: echo_table(rows, SHOW_COLUMNS, empty="no settings"),
    )


# --- check ------------------------------------------------------------------------------------------

OK: Final = "OK"
WARN: Final = "WARN"
ERROR: Final = "ERROR"


@dataclass(frozen=True)
class Finding:
    level: str  # OK, WARN or ERROR
    subject: str
    text: str


def _is_dev_material(path: Path) -> bool:
    """True for anything under a ``certs/dev`` folder: the committed dev PKI (certs/dev/README.md)."""
    parts = path.resolve().parts if path.exists() else path.parts
    return any(a == "certs" and b == "dev" for a, b in itertools.pairwise(parts))


def _certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _validity(
    name: str, certificate: x509.Certificate, now: datetime, warning: timedelta = EXPIRY_WARNING
) -> Finding | None:
    if certificate.not_valid_after_utc < now:
        return Finding(ERROR, name, f"certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
    if certificate.not_valid_before_utc > now:
        return Finding(
            ERROR, name, f"certificate not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
        )
    if certificate.not_valid_after_utc < now + warning:
        return Finding(WARN, name, f"certificate expires on {certificate.not_valid_after_utc:%Y-%m-%d}")
    return None


def _check_pair(settings: Settings, cert_setting: str, key_setting: str, now: datetime) -> Iterator[Finding]:
    """A certificate file and the key that must belong to it."""
    cert_path: Path = getattr(settings, cert_setting)
    key_path: Path = getattr(settings, key_setting)
    try:
        leaf = _certificates(cert_path)[0]
    except FileNotFoundError:
        yield Finding(ERROR, cert_setting, f"{cert_path} does not exist")
        return
    except (OSError, ValueError) as exc:
        yield Finding(ERROR, cert_setting, f"{cert_path} is not a readable certificate: {exc}")
        return
    yield _validity(cert_setting, leaf, now, timedelta(days=settings.expiry_warning_days)) or Finding(
        OK, cert_setting, f"{cert_path} (valid until {leaf.not_valid_after_utc:%Y-%m-%d})"
    )
    try:
        key = load_private_key(
            key_path, passphrase_env=settings.key_passphrase_env, passphrase_file=settings.key_passphrase_file
        )
    except GgkEbmsError as exc:
        yield Finding(ERROR, key_setting, str(exc))
        return
    if key_matches_certificate(key, leaf.public_bytes(Encoding.DER)):
        yield Finding(OK, key_setting, f"{key_path} belongs to {cert_setting}")
    else:
        yield Finding(ERROR, key_setting, f"{key_path} does not belong to the certificate in {cert_path}")


def _check_key(settings: Settings, key_setting: str) -> Finding:
    key_path: Path = getattr(settings, key_setting)
    try:
        load_private_key(
            key_path, passphrase_env=settings.key_passphrase_env, passphrase_file=settings.key_passphrase_file
        )
    except GgkEbmsError as exc:
        return Finding(ERROR, key_setting, str(exc))
    return Finding(OK, key_setting, f"{key_path} is a readable private key")


def _check_trust_store(settings: Settings, now: datetime) -> Iterator[Finding]:
    path = settings.tls_trust_store
    try:
        certificates = _certificates(path)
    except FileNotFoundError:
        yield Finding(ERROR, "tls_trust_store", f"{path} does not exist")
        return
    except (OSError, ValueError) as exc:
        yield Finding(ERROR, "tls_trust_store", f"{path} is not a readable certificate bundle: {exc}")
        return
    if not certificates:
        yield Finding(ERROR, "tls_trust_store", f"{path} holds no certificate")
        return
    expired = [c for c in certificates if c.not_valid_after_utc < now]
    if expired:
        yield Finding(
            WARN, "tls_trust_store", f"{path}: {len(expired)} of {len(certificates)} certificates expired"
        )
    else:
        yield Finding(OK, "tls_trust_store", f"{path} ({len(certificates)} CA certificates)")


def _check_passphrase(settings: Settings) -> Finding | None:
    if not settings.key_passphrase_env and settings.key_passphrase_file is None:
        return None
    try:
        passphrase_from_settings(settings)
    except GgkEbmsError as exc:
        return Finding(ERROR, "key passphrase", str(exc))
    return Finding(OK, "key passphrase", "configured and readable")


def _check_folders(settings: Settings) -> Iterator[Finding]:
    if settings.cpa_dir.is_dir():
        count = sum(1 for p in settings.cpa_dir.iterdir() if p.suffix.lower() == ".xml")
        yield Finding(OK, "cpa_dir", f"{settings.cpa_dir} ({count} .xml files)")
    else:
        level = ERROR if settings.cpa_autoimport else WARN
        yield Finding(level, "cpa_dir", f"{settings.cpa_dir} is not a folder")
    if settings.cpa_schema is not None:
        if settings.cpa_schema.is_file():
            yield Finding(OK, "cpa_schema", str(settings.cpa_schema))
        else:
            yield Finding(ERROR, "cpa_schema", f"{settings.cpa_schema} does not exist")
    if settings.payload_schemas is None:
        yield Finding(WARN, "payload_schemas", "not set: structural payload checks only")
    elif settings.payload_schemas.is_dir():
        yield Finding(OK, "payload_schemas", str(settings.payload_schemas))
    else:
        yield Finding(ERROR, "payload_schemas", f"{settings.payload_schemas} is not a folder")


def _check_database(settings: Settings) -> Finding:
    from ggk_ebms.store.db import Database  # SQLAlchemy only when the database is checked

    try:
        database = Database(settings.effective_database_url)
    except GgkEbmsError as exc:
        return Finding(ERROR, "database", str(exc))
    try:
        head = database.head_revision()
        sqlite_file = database.sqlite_file
        if sqlite_file is not None and not sqlite_file.exists():
            revision = None  # not created yet; checking must not create it
        else:
            database.ping()
            revision = database.current_revision()
    except GgkEbmsError as exc:
        return Finding(ERROR, "database", f"{database.display_url}: {exc}")
    finally:
        database.dispose()
    if revision == head:
        return Finding(OK, "database", f"{database.display_url} at revision {revision} (latest)")
    where = "not created yet" if revision is None else f"at revision {revision}"
    # With auto_migrate the server brings it up to date at start; otherwise it will refuse to run.
    level = WARN if settings.auto_migrate else ERROR
    return Finding(
        level, "database", f"{database.display_url} {where}, latest is {head}: run `ggk-ebms db upgrade`"
    )


def _check_keys_against_cpas(settings: Settings, database_ok: bool) -> Iterator[Finding]:
    """Keys (docs/signing.md): each configured key must match our certificate in every stored CPA that
    uses it — the signing key our SigningCertificateRef, the encryption key our
    EncryptionCertificateRef, the TLS client certificate our ClientCertificateRef."""
    if not database_ok:
        return
    from ggk_ebms.store.cpas import CpaRepository
    from ggk_ebms.store.db import Database

    database = Database(settings.effective_database_url)
    try:
        stored = CpaRepository(database).list()
    except GgkEbmsError as exc:
        yield Finding(ERROR, "CPA keys", f"stored CPAs cannot be read: {exc}")
        return
    finally:
        database.dispose()
    keys: dict[str, Any] = {}
    for name in ("signing_key", "encryption_key"):
        try:
            keys[name] = load_private_key(
                getattr(settings, name),
                passphrase_env=settings.key_passphrase_env,
                passphrase_file=settings.key_passphrase_file,
            )
        except GgkEbmsError:
            keys[name] = None  # its own check above says why
    try:
        tls_client = x509.load_pem_x509_certificate(settings.tls_client_cert.read_bytes()).public_bytes(
            Encoding.DER
        )
    except (OSError, ValueError):
        tls_client = None
    for entry in stored:
        try:
            agreement = parse_agreement(entry.raw, max_bytes=max(settings.max_cpa_bytes, len(entry.raw)))
            ours = lookup.own_party(agreement, settings.party_ids)
            channels = [lookup.resolve_channel(ours, cid) for cid in ours.channels]
        except GgkEbmsError as exc:
            yield Finding(WARN, f"CPA {entry.cpa_id}", f"not checked: {exc}")
            continue
        problems: list[str] = []
        for channel in channels:
            pairs = []
            if channel.profile.signed:
                pairs.append(("signing_key", channel.signing_certificate, "SigningCertificateRef"))
            if channel.profile.encrypted:
                pairs.append(("encryption_key", channel.encryption_certificate, "EncryptionCertificateRef"))
            for key_name, certificate, ref in pairs:
                key = keys[key_name]
                if key is None or certificate is None or certificate.der is None:
                    continue
                if not key_matches_certificate(key, certificate.der):
                    problems.append(
                        f"{key_name} does not match our {ref} of channel {channel.channel.channel_id}"
                    )
            cert = channel.client_certificate
            if tls_client and cert is not None and cert.der is not None and cert.der != tls_client:
                problems.append(
                    f"tls_client_cert is not our ClientCertificateRef of channel {channel.channel.channel_id}"
                )
        if problems:
            yield Finding(ERROR, f"CPA {entry.cpa_id}", "; ".join(sorted(set(problems))))
        else:
            yield Finding(OK, f"CPA {entry.cpa_id}", "our keys and certificates match the CPA")


def _check_identity(settings: Settings) -> Iterator[Finding]:
    test_oins = [oin for oin in settings.party_ids if oin.startswith(TEST_OIN_PREFIX)]
    if not settings.party_ids:
        yield Finding(ERROR, "party_ids", "empty: we cannot tell which side of a CPA we are")
    elif test_oins:
        yield Finding(WARN, "party_ids", f"test OIN {', '.join(test_oins)}: {TEST_MATERIAL}")
    else:
        yield Finding(OK, "party_ids", ", ".join(settings.party_ids))


def _check_policy(settings: Settings) -> Iterator[Finding]:
    if settings.allow_sha1:
        yield Finding(WARN, "allow_sha1", "SHA-1 accepted for legacy peers (SIGN001 forbids it)")
    if settings.test_faults:
        yield Finding(
            WARN,
            "test_faults",
            f"{settings.test_faults}: this endpoint misbehaves on purpose, for tests only",
        )
    if settings.proxy_client_cert_header and not settings.proxy_allowlist:
        yield Finding(
            WARN, "proxy_client_cert_header", "set, but proxy_allowlist is empty: no proxy is trusted"
        )


def _check_dev_material(settings: Settings) -> Finding | None:
    names = [
        f.name
        for f in declared()
        if isinstance(getattr(settings, f.name), Path) and _is_dev_material(getattr(settings, f.name))
    ]
    if not names:
        return None
    return Finding(WARN, "dev material", f"certs/dev in use by {', '.join(names)}: {TEST_MATERIAL}")


def _check_cpa_expiry(settings: Settings, database_ok: bool, now: datetime) -> Iterator[Finding]:
    """A CPA or a certificate in it that expires within expiry_warning_days (WARN) or has (ERROR)."""
    if settings.cpa_expiry_warn_days is not None:
        yield Finding(
            WARN,
            "cpa_expiry_warn_days",
            f"deprecated: the old name of expiry_warning_days (now {settings.expiry_warning_days} days), "
            "which governs CPAs, their certificates and our own certificate files alike; "
            "rename it to expiry_warning_days",
        )
    if not database_ok:
        return
    from ggk_ebms.cpa.hygiene import ERROR as EXPIRED
    from ggk_ebms.store.cpa_expiry import stored_expiries
    from ggk_ebms.store.db import Database

    database = Database(settings.effective_database_url)
    try:
        found = stored_expiries(settings, database, now)
    except GgkEbmsError as exc:
        yield Finding(ERROR, "CPA expiry", f"stored CPAs cannot be read: {exc}")
        return
    finally:
        database.dispose()
    for expiry in found:
        yield Finding(
            ERROR if expiry.level == EXPIRED else WARN, f"CPA {expiry.cpa_id}", expiry.describe(now)
        )


def _check_exchanges(settings: Settings, database_ok: bool) -> Iterator[Finding]:
    """The served gemeentecodes against the CBS list, and the stored exchange changes
    (docs/exchanges.md): a stale change, or an exchange CPA profile that is not stored."""
    from ggk_ebms.gemeentecodes import cbs_gemeentecodes
    from ggk_ebms.store.exchanges import ExchangeStore
    from ggk_ebms.store.routes import RouteStore
    from ggk_ebms.stuf.generations import parse_generation

    cbs = cbs_gemeentecodes()
    for code in settings.served_gemeentecodes:
        if code not in cbs and code not in settings.test_gemeentecodes:
            yield Finding(
                ERROR,
                "served_gemeentecodes",
                f"{code} is not in the CBS list {cbs.year} nor in test_gemeentecodes",
            )
    if settings.served_gemeentecodes:
        yield Finding(OK, "served_gemeentecodes", ", ".join(settings.served_gemeentecodes))
    if not database_ok:
        return
    from ggk_ebms.store.cpas import CpaRepository
    from ggk_ebms.store.db import Database

    database = Database(settings.effective_database_url)
    try:
        exchanges, problems = ExchangeStore(database).current()
        stored = {entry.cpa_id for entry in CpaRepository(database).list()}
        current_routes = RouteStore(database).current()
        routes = current_routes.table().routes if current_routes is not None else ()
    except GgkEbmsError as exc:
        yield Finding(ERROR, "exchanges", f"cannot be read: {exc}")
        return
    finally:
        database.dispose()
    for problem in problems:
        yield Finding(WARN, "exchanges", problem)
    for exchange in exchanges:
        if exchange.cpa_id and exchange.cpa_id not in stored:
            yield Finding(ERROR, f"exchange {exchange.key}", f"CPA profile {exchange.cpa_id} is not stored")
    # A route's stuf_version/payload_version are labels from before exchanges: the exchange decides,
    # so a label that says otherwise misleads whoever reads the routes file.
    for route in routes:
        of_route = exchanges.for_berichttype(route.berichttype)
        if of_route is None:
            continue
        labels = []
        try:
            if parse_generation(route.stuf_version) is not of_route.stuf_version:
                labels.append(f"stuf_version {route.stuf_version}")
        except ValueError:
            labels.append(f"stuf_version {route.stuf_version}")
        if route.payload_version and route.payload_version != of_route.payload_version:
            labels.append(f"payload_version {route.payload_version}")
        if labels:
            yield Finding(
                WARN,
                f"route {route.name}",
                f"{' and '.join(labels)} differ from exchange {of_route.describe()}; the exchange decides",
            )


def run_checks(settings: Settings, now: datetime) -> list[Finding]:
    """Every check of ``config check``, in the order they are printed."""
    findings: list[Finding] = []
    findings += _check_identity(settings)
    passphrase = _check_passphrase(settings)
    if passphrase is not None:
        findings.append(passphrase)
    findings += _check_pair(settings, "tls_server_cert", "tls_server_key", now)
    findings += _check_pair(settings, "tls_client_cert", "tls_client_key", now)
    findings += _check_trust_store(settings, now)
    findings.append(_check_key(settings, "signing_key"))
    findings.append(_check_key(settings, "encryption_key"))
    findings += _check_folders(settings)
    database = _check_database(settings)
    findings.append(database)
    findings += _check_keys_against_cpas(settings, database.level == OK)
    findings += _check_cpa_expiry(settings, database.level == OK, now)
    findings += _check_exchanges(settings, database.level == OK)
    findings += _check_policy(settings)
    dev = _check_dev_material(settings)
    if dev is not None:
        findings.append(dev)
    return findings


def _settings_source(config_file: Path | None) -> str:
    """Which settings file ``load`` reads, in its own order of precedence."""
    if config_file is not None:
        return str(config_file)
    if os.environ.get(CONFIG_ENV):
        return f"{os.environ[CONFIG_ENV]} (${CONFIG_ENV})"
    if Path(DEFAULT_CONFIG_FILE).is_file():
        return DEFAULT_CONFIG_FILE
    return "no settings file: defaults and environment"


_COLOURS: Final = {OK: "green", WARN: "yellow", ERROR: "red"}


def _print(finding: Finding) -> None:
    click.secho(f"{finding.level:<5}", fg=_COLOURS[finding.level], nl=False)
    click.echo(f" {finding.subject}: {finding.text}")


def _check_document(findings: list[Finding]) -> dict[str, Any]:
    """``config check --json`` (docs/cli.md): every finding in order, and the counts."""
    return {
        "findings": [{"level": f.level, "subject": f.subject, "text": f.text} for f in findings],
        "errors": sum(1 for f in findings if f.level == ERROR),
        "warnings": sum(1 for f in findings if f.level == WARN),
    }


@config.command("check")
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Check the settings, the files they name and the database; exit 1 on any ERROR."""
    config_file: Path | None = getattr(ctx.find_root().obj, "config_file", None)
    try:
        settings = load(config_file)
    except GgkEbmsError as exc:
        unusable = [Finding(ERROR, "settings", str(exc))]
        if as_json:
            click.echo(dumps(_check_document(unusable)))
        else:
            _print(unusable[0])
        ctx.exit(1)
    findings = [Finding(OK, "settings", _settings_source(config_file))]
    findings += run_checks(settings, datetime.now(UTC))
    document = _check_document(findings)

    def text() -> None:
        for finding in findings:
            _print(finding)
        click.echo(f"{document['errors']} error(s), {document['warnings']} warning(s)")

    emit(document, as_json=as_json, text=text)
    ctx.exit(1 if document["errors"] else 0)


# --- docs -------------------------------------------------------------------------------------------


def _type_name(typ: Any) -> str:
    if typing.get_origin(typ) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(typ) if a is not type(None)]
        return f"{_type_name(inner[0])}, optional"
    if typing.get_origin(typ) is list:
        return "list of text (TOML array; comma-separated in the environment)"
    names: dict[Any, str] = {bool: "boolean", int: "integer", float: "number", str: "text", Path: "path"}
    return names.get(typ, str(typ))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def configuration_markdown() -> str:
    """docs/configuration.md, generated from the declarations in ggk_ebms/config.py."""
    hints = typing.get_type_hints(Settings)
    defaults = Settings()
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `ggk-ebms config docs` from src/ggk_ebms/config.py; do not edit by hand. -->",
        "",
        f"Settings come from one TOML file plus `{ENV_PREFIX}*` environment variables. Precedence:",
        "built-in default < settings file < environment. The file is `--config FILE`, else",
        f"`${CONFIG_ENV}`, else `./{DEFAULT_CONFIG_FILE}` if it exists. Unknown keys are an error.",
        "Relative paths in a settings file are relative to that file. `ggk-ebms config show` prints",
        "the effective values (secrets masked); `ggk-ebms config check` checks them, the files they",
        "name and the database.",
        "",
        "The defaults run the endpoint as the dev gemeente with the dev PKI in `certs/dev/`: test material,",
        "never for production.",
        "",
    ]
    for f in declared():
        default = getattr(defaults, f.name)
        lines += [
            f"## `{f.name}`",
            "",
            str(f.metadata["help"]),
            "",
            f"- type: {_type_name(hints[f.name])}",
            f"- default: `{_toml_value(default)}`" if default not in (None, "", []) else "- default: empty",
            f"- environment: `{ENV_PREFIX}{f.name.upper()}`",
        ]
        if f.metadata.get("secret"):
            lines.append("- secret: masked by `config show`")
        lines.append("")
    return "\n".join(lines)


@config.command("docs")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DOCS_FILE,
    show_default=True,
    help="File to write.",
)
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if the file is out of date.")
def docs(out: Path, check_only: bool) -> None:
    """Write docs/configuration.md from the settings declarations."""
    text = configuration_markdown()
    if check_only:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current != text:
            _fail(f"{out} is out of date: run `ggk-ebms config docs`")
        click.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}")
