"""``ggk-ebms cpa``: validate, import, list, show, export, delete and create CPAs.

The productbeheerder's commands. Validation runs before anything is stored and prints every
finding with its rule, location and advice (docs/cpa.md); an import with an error stores nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from ggk_ebms.cli.main import fail, settings_of
from ggk_ebms.cli.output import Column, echo_table, emit, json_option
from ggk_ebms.clock import SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.cpa.create import (
    DEFAULT_ACTIONS,
    DEFAULT_PERSIST_DURATION,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_SERVICE,
    AgreementRequest,
    PartyRequest,
    certificates_from_pem,
    create_agreement,
)
from ggk_ebms.cpa.duration import format_duration, parse_duration
from ggk_ebms.cpa.findings import Finding, Validation
from ggk_ebms.cpa.hygiene import ERROR, require_our_party
from ggk_ebms.cpa.lint import validate_cpa
from ggk_ebms.cpa.model import Profile
from ggk_ebms.cpa.overlap import Candidate, newest_for_pair
from ggk_ebms.cpa.parse import parse_agreement, parse_datetime
from ggk_ebms.cpa.record import agreement_record, validity_state
from ggk_ebms.cpa.schema import load_schema
from ggk_ebms.cpa.summary import describe_agreement, validity_label
from ggk_ebms.errors import CpaError, GgkEbmsError

if TYPE_CHECKING:
    from ggk_ebms.cpa.model import Agreement
    from ggk_ebms.store.cpas import CpaRepository
    from ggk_ebms.store.db import Database


@click.group()
def cpa() -> None:
    """Validate, import, inspect and create CPAs (Collaboration Protocol Agreements)."""


# --- validation shared by validate, import and create ------------------------------------------------


def _validate_bytes(settings: Settings, data: bytes) -> Validation:
    try:
        schema = load_schema(settings.cpa_schema)
    except GgkEbmsError as exc:
        fail(str(exc))
    return validate_cpa(
        data,
        now=SystemClock().now(),
        allow_sha1=settings.allow_sha1,
        schema=schema,
        max_bytes=settings.max_cpa_bytes,
    )


def _read_file(path: Path, settings: Settings) -> bytes | Finding:
    """The file's bytes, or a finding saying why it cannot be validated at all."""
    try:
        size = path.stat().st_size
        if size > settings.max_cpa_bytes:
            return Finding(
                "error",
                "CPA-SIZE",
                "/",
                f"the file is {size} bytes, over max_cpa_bytes ({settings.max_cpa_bytes})",
                "Check that this is the right file; raise max_cpa_bytes only if so.",
            )
        return path.read_bytes()
    except FileNotFoundError:
        return Finding("error", "CPA-FILE", "/", "the file does not exist", "Check the path.")
    except IsADirectoryError:
        return Finding("error", "CPA-FILE", "/", "this is a folder, not a file", "Name the CPA file itself.")
    except OSError as exc:
        return Finding(
            "error", "CPA-FILE", "/", f"the file cannot be read: {exc.strerror}", "Check the path."
        )


def _print_findings(name: str, findings: list[Finding]) -> None:
    for f in findings:
        colour = "red" if f.severity == "error" else "yellow"
        click.secho(f"{name}: {f.severity.upper()} {f.rule} at {f.location}", fg=colour)
        click.echo(f"    {f.message}")
        click.echo(f"    what to do: {f.advice}")
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    if errors:
        click.secho(f"{name}: {errors} error(s), {warnings} warning(s)", fg="red", bold=True)
    else:
        click.secho(f"{name}: valid, {warnings} warning(s)", fg="green", bold=True)


def _check_file(path: Path, settings: Settings) -> Validation:
    data = _read_file(path, settings)
    if isinstance(data, Finding):
        return Validation([data])
    return _validate_bytes(settings, data)


@cpa.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def validate_command(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Check CPA FILES without storing them; exit 1 when any has an error."""
    settings = settings_of(ctx)
    any_error = False
    for path in files:
        validation = _check_file(path, settings)
        _print_findings(str(path), validation.findings)
        any_error = any_error or not validation.ok
    sys.exit(1 if any_error else 0)


# --- the store -------------------------------------------------------------------------------------


@contextmanager
def _repository(settings: Settings) -> Iterator[CpaRepository]:
    """The CPA repository; any store error (also CpaNotFoundError) ends the command with one line."""
    # The store (SQLAlchemy) is imported here: validate and create never touch a database.
    from ggk_ebms.store.cpas import CpaRepository
    from ggk_ebms.store.db import Database

    try:
        db = Database.from_settings(settings)
    except GgkEbmsError as exc:
        fail(str(exc))
    try:
        if settings.auto_migrate:
            db.upgrade()
        yield CpaRepository(db)
    except GgkEbmsError as exc:
        fail(str(exc))
    finally:
        db.dispose()


@cpa.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace a stored CPA with the same CPAId.")
@click.pass_context
def import_command(ctx: click.Context, files: tuple[Path, ...], overwrite: bool) -> None:
    """Validate CPA FILES and store the valid ones; a file with an error is not stored."""
    settings = settings_of(ctx)
    failed = False
    checked: list[tuple[Path, Validation]] = []
    for path in files:
        validation = _check_file(path, settings)
        if validation.findings:
            _print_findings(str(path), validation.findings)
        if not validation.ok or validation.agreement is None:
            click.secho(f"{path}: not imported", fg="red")
            failed = True
            continue
        checked.append((path, validation))
    if checked:
        with _repository(settings) as repo:
            for path, validation in checked:
                agreement = validation.agreement
                assert agreement is not None
                try:
                    require_our_party(agreement, settings.party_ids)
                    repo.add_agreement(agreement, overwrite=overwrite)
                except CpaError as exc:
                    click.secho(f"{path}: not imported: {exc}", fg="red")
                    failed = True
                    continue
                click.secho(f"{path}: imported as {agreement.cpa_id}", fg="green")
                _audit(settings, repo.db, "cpa-import", agreement.cpa_id, path.name)
    sys.exit(1 if failed else 0)


CPA_COLUMNS = [
    Column("cpa_id", "CPAId"),
    Column("parties", "parties"),
    Column("profiles_text", "profiles"),
    Column("validity_text", "validity"),
    Column("status", "status"),
    Column("actief", "actief (Ping Pong)"),
    Column("profielnaam", "profielnaam"),
    Column("connectietype", "connectietype"),
]


@cpa.command("list")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List stored CPAs: id, parties, profiles, validity and status."""
    settings = settings_of(ctx)
    now = SystemClock().now()
    from ggk_ebms.store.cpa_expiry import stored_expiries
    from ggk_ebms.store.cpa_portal import CpaPortalStore

    with _repository(settings) as repo:
        stored = repo.list()
        expiring = stored_expiries(settings, repo.db, now)
        portals = CpaPortalStore(repo.db).all()
    records: list[dict[str, Any]] = []
    for item in stored:
        portal = portals.get(item.cpa_id)
        records.append(
            {
                "cpa_id": item.cpa_id,
                "party_ids": list(item.party_ids),
                "profiles": list(item.profiles),
                "start": item.start,
                "end": item.end,
                "validity": validity_state(item.start, item.end, now),
                "status": item.status,
                "sha256": item.sha256,
                "imported_at": item.imported_at,
                "updated_at": item.updated_at,
                "activated_at": portal.geactiveerd_op if portal else None,
                "profielnaam": portal.profielnaam if portal else None,
                "connectietype": portal.connectietype if portal else None,
            }
        )
    # A renewal overlap: several valid CPAs join the same parties; the newest is the one we use.
    pairs: dict[frozenset[str], list[Candidate]] = {}
    for item in stored:
        if item.start <= now < item.end:
            key = frozenset(item.party_ids)
            pairs.setdefault(key, []).append(Candidate(item.cpa_id, key, item.start, item.imported_at))
    in_use = [
        (sorted(choice.chosen.party_ids), choice.describe())
        for choice in (newest_for_pair(c) for c in pairs.values() if len(c) > 1)
        if choice is not None
    ]
    marks = {"expired": " EXPIRED", "not yet valid": " not yet valid", "valid": ""}
    rows = [
        {
            **r,
            "parties": " ".join(r["party_ids"]),
            "profiles_text": ",".join(r["profiles"]),
            "validity_text": f"{r['start']:%Y-%m-%d} .. {r['end']:%Y-%m-%d}{marks[r['validity']]}",
            "actief": f"{r['activated_at']:%Y-%m-%d %H:%M}" if r["activated_at"] else "no",
        }
        for r in records
    ]

    def text() -> None:
        echo_table(rows, CPA_COLUMNS, empty="no CPAs stored")
        for parties, described in in_use:
            click.echo(f"in use for {' '.join(parties)}: {described}")
        for expiry in expiring:
            label = "error" if expiry.level == ERROR else "warning"
            click.secho(f"{label}: {expiry.describe(now)}", fg="red" if expiry.level == ERROR else "yellow")

    emit(
        {
            "cpas": records,
            "in_use": [{"party_ids": parties, "chosen": described} for parties, described in in_use],
            "expiry": [
                {"level": "error" if e.level == ERROR else "warning", "text": e.describe(now)}
                for e in expiring
            ],
        },
        as_json=as_json,
        text=text,
    )


@cpa.command("show")
@click.argument("cpa_id")
@json_option
@click.pass_context
def show_command(ctx: click.Context, cpa_id: str, as_json: bool) -> None:
    """Show a stored CPA: parties, actions, endpoints, certificates and reliability settings."""
    settings = settings_of(ctx)
    with _repository(settings) as repo:
        stored = repo.get(cpa_id)
    try:
        agreement = parse_agreement(stored.raw, max_bytes=max(settings.max_cpa_bytes, len(stored.raw)))
    except GgkEbmsError as exc:
        fail(f"stored CPA {cpa_id} cannot be read: {exc}")
    now = SystemClock().now()
    document = {
        "cpa": agreement_record(agreement, now=now),
        "stored": {
            "sha256": stored.sha256,
            "imported_at": stored.imported_at,
            "updated_at": stored.updated_at,
        },
        "portal": _portal_record(settings, cpa_id),
    }

    def text() -> None:
        for line in describe_agreement(agreement, now=now):
            click.echo(line)
        click.echo("")
        click.echo(f"stored: sha256 {stored.sha256}, imported {stored.imported_at:%Y-%m-%d %H:%M}, "
                   f"updated {stored.updated_at:%Y-%m-%d %H:%M}")  # fmt: skip
        _show_portal(settings, cpa_id)

    emit(document, as_json=as_json, text=text)


def _portal_record(settings: Settings, cpa_id: str) -> dict[str, Any] | None:
    """The portal request fields and activation for ``cpa show --json`` (certificates: stored or not)."""
    from ggk_ebms.store.cpa_portal import CpaPortalStore

    with _repository(settings) as repo:
        portal = CpaPortalStore(repo.db).get(cpa_id)
    if portal is None:
        return None
    return {
        "activated_at": portal.geactiveerd_op,
        "profielnaam": portal.profielnaam,
        "oin_of_hrn": portal.oin_of_hrn,
        "ingangsdatum": portal.ingangsdatum,
        "einddatum": portal.einddatum,
        "connectietype": portal.connectietype,
        "endpoint": portal.endpoint,
        "server_certificate_stored": bool(portal.server_certificaat),
        "client_certificate_stored": bool(portal.client_certificaat),
        "updated_at": portal.updated_at,
    }


def _show_portal(settings: Settings, cpa_id: str) -> None:
    """The portal request fields and the activation (docs/operations.md "CPA beheer")."""
    from ggk_ebms.store.cpa_portal import CpaPortalStore

    with _repository(settings) as repo:
        portal = CpaPortalStore(repo.db).get(cpa_id)
    click.echo("")
    if portal is None or portal.geactiveerd_op is None:
        click.echo("actief: no (not yet activated by a successful Ping Pong: `ggk-ebms ping --cpa ...`)")
    else:
        click.echo(f"actief: since {portal.geactiveerd_op:%Y-%m-%d %H:%M:%S} UTC (Ping Pong)")
    if portal is None:
        click.echo("portal request fields: none stored (`ggk-ebms cpa portal CPA_ID ...`)")
        return
    click.echo("portal request fields:")
    for label, value in (
        ("profielnaam", portal.profielnaam),
        ("OIN/HRN", portal.oin_of_hrn),
        ("ingangsdatum", portal.ingangsdatum and f"{portal.ingangsdatum:%Y-%m-%d}"),
        ("einddatum", portal.einddatum and f"{portal.einddatum:%Y-%m-%d}"),
        ("connectietype", portal.connectietype),
        ("endpoint", portal.endpoint),
        ("server certificate", "PEM, stored" if portal.server_certificaat else None),
        ("client certificate", "PEM, stored" if portal.client_certificaat else None),
    ):
        click.echo(f"  {label:<20} {value or ''}")


@cpa.command("portal")
@click.argument("cpa_id")
@click.option("--profielnaam", default=None, help="e.g. gemeente + product.")
@click.option("--oin", "oin_of_hrn", default=None, help="OIN (20 digits) or HRN (8 digits).")
@click.option("--ingangsdatum", default=None, help="YYYY-MM-DD (UTC).")
@click.option("--einddatum", default=None, help="YYYY-MM-DD (UTC).")
@click.option("--connectietype", type=click.Choice(["Diginetwerk", "Internet"]), default=None)
@click.option("--endpoint", default=None, help="https:// endpoint URL.")
@click.option("--server-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None)
@click.option("--client-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None)
@click.pass_context
def portal_command(
    ctx: click.Context,
    cpa_id: str,
    profielnaam: str | None,
    oin_of_hrn: str | None,
    ingangsdatum: str | None,
    einddatum: str | None,
    connectietype: str | None,
    endpoint: str | None,
    server_cert: Path | None,
    client_cert: Path | None,
) -> None:
    """Store the GGk portal's CPA request fields with stored CPA CPA_ID (shown by list/show)."""
    from ggk_ebms.cli.ops_support import service_context
    from ggk_ebms.services.cpa_beheer import PortalFields, save_request

    def day(value: str | None, option: str) -> datetime | None:
        return None if value is None else _moment(value, option)

    def pem(path: Path | None) -> str | None:
        return None if path is None else path.read_text(encoding="ascii", errors="replace")

    fields = PortalFields(
        profielnaam=profielnaam,
        oin_of_hrn=oin_of_hrn,
        ingangsdatum=day(ingangsdatum, "--ingangsdatum"),
        einddatum=day(einddatum, "--einddatum"),
        connectietype=connectietype,
        endpoint=endpoint,
        server_certificaat=pem(server_cert),
        client_certificaat=pem(client_cert),
    )
    with _repository(settings_of(ctx)) as repo:
        try:
            save_request(service_context(settings_of(ctx), repo.db), cpa_id, fields)
        except GgkEbmsError as exc:
            fail(str(exc))
    click.echo(f"portal request fields of {cpa_id} stored")


@cpa.command("export")
@click.argument("cpa_id")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="File to write.")
@click.pass_context
def export_command(ctx: click.Context, cpa_id: str, output: Path | None) -> None:
    """Write a stored CPA exactly as it was imported (to stdout, or -o FILE)."""
    settings = settings_of(ctx)
    with _repository(settings) as repo:
        stored = repo.get(cpa_id)
    if output is None:
        _write_stdout(stored.raw)
        return
    try:
        output.write_bytes(stored.raw)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    click.echo(f"{cpa_id} written to {output}", err=True)


@cpa.command("delete")
@click.argument("cpa_id")
@click.pass_context
def delete_command(ctx: click.Context, cpa_id: str) -> None:
    """Delete a stored CPA."""
    settings = settings_of(ctx)
    with _repository(settings) as repo:
        repo.delete(cpa_id)
        _audit(settings, repo.db, "cpa-delete", cpa_id, None)
    click.echo(f"{cpa_id} deleted")


def _audit(settings: Settings, database: Database, action: str, subject: str, detail: str | None) -> None:
    from ggk_ebms.cli.ops_support import service_context
    from ggk_ebms.services.audit import record

    record(service_context(settings, database), action, subject, detail)


# --- create ----------------------------------------------------------------------------------------


def _pem(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"{what} {path} cannot be read: {exc.strerror}")


def _moment(value: str, option: str) -> datetime:
    text = value.strip()
    if len(text) == 10:  # a bare date (2026-01-01) means its first instant, UTC
        text += "T00:00:00Z"
    try:
        return parse_datetime(text)
    except ValueError:
        fail(f"{option} {value!r} is not a date (2026-01-01) or date-time (2026-01-01T00:00:00Z)")


def _duration(value: str, option: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        fail(f"{option}: {exc}")


_PROFILES = [p.value for p in Profile]
_CONNECTIONS = ["diginetwerk", "internet"]


@cpa.command("create")
@click.option(
    "--profile",
    "profile",
    type=click.Choice(_PROFILES),
    default=Profile.OSB_RM.value,
    show_default=True,
    help="Digikoppeling profile.",
)
@click.option(
    "--profielnaam",
    "--profile-name",
    "profile_name",
    help="Profielnaam of the GGk portal request (a Comment; stored with the CPA by --import).",
)
@click.option("--party-name", required=True, help="Our party's name (partyName).")
@click.option("--party-oin", help="Our OIN. Default: the first of the party_ids setting.")
@click.option("--party-role", default="Gemeente", show_default=True, help="Our role name (EB007).")
@click.option("--party-endpoint", required=True, help="Our https endpoint URL.")
@click.option("--party-server-cert", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--party-client-cert", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option(
    "--party-signing-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Default: the client certificate.",
)
@click.option(
    "--party-encryption-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Default: the client certificate.",
)
@click.option("--connection", type=click.Choice(_CONNECTIONS), default="diginetwerk", show_default=True)
@click.option(
    "--connectietype",
    type=click.Choice(["Diginetwerk", "Internet"]),
    default=None,
    help="The portal's name for our --connection (overrides it).",
)
@click.option("--partner-name", required=True, help="The counterpart's name (partyName).")
@click.option("--partner-oin", required=True, help="The counterpart's OIN.")
@click.option("--partner-role", default="GGk", show_default=True, help="The counterpart's role name.")
@click.option("--partner-endpoint", required=True, help="The counterpart's https endpoint URL.")
@click.option("--partner-server-cert", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--partner-client-cert", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--partner-signing-cert", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--partner-encryption-cert", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--partner-connection", type=click.Choice(_CONNECTIONS), default="diginetwerk", show_default=True
)
@click.option("--start", help="Start (ingangsdatum). Default: now.")
@click.option("--end", help="End (einddatum). Default: the earliest expiry of the certificates.")
@click.option("--service", default=DEFAULT_SERVICE, show_default=True)
@click.option(
    "--action", "actions", multiple=True, help=f"Action (repeatable). Default: {', '.join(DEFAULT_ACTIONS)}."
)
@click.option("--retries", type=int, default=DEFAULT_RETRIES, show_default=True)
@click.option("--retry-interval", default=format_duration(DEFAULT_RETRY_INTERVAL), show_default=True)
@click.option("--persist-duration", default=format_duration(DEFAULT_PERSIST_DURATION), show_default=True)
@click.option(
    "--sync-reply", is_flag=True, help="syncReplyMode mshSignalsOnly (osb-rm only; EB015 discourages it)."
)
@click.option("--cpa-id", help="CPAId. Default: [service]_[our OIN]_[partner OIN]_[version] (BP3).")
@click.option("--cpa-version", default="1", show_default=True, help="Version part of the default CPAId.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="File to write (default stdout)."
)
@click.option(
    "--import",
    "import_",
    is_flag=True,
    help="Also store the CPA, with the portal request fields (profielnaam, OIN, dates, connectietype, "
    "endpoint, certificates), as `cpa import` and `cpa portal` would.",
)
@click.pass_context
def create_command(ctx: click.Context, /, **opts: object) -> None:  # fmt: skip
    """Create a Digikoppeling CPA between our party and a partner, validated before it is written."""
    settings = settings_of(ctx)
    party_oin = str(opts["party_oin"] or (settings.party_ids[0] if settings.party_ids else ""))

    def side(prefix: str, oin: str, connection: object) -> PartyRequest:
        server = _pem(_path(opts[f"{prefix}_server_cert"]), f"--{prefix}-server-cert")
        client = _pem(_path(opts[f"{prefix}_client_cert"]), f"--{prefix}-client-cert")
        assert server is not None
        assert client is not None
        return PartyRequest(
            name=str(opts[f"{prefix}_name"]),
            oin=oin,
            endpoint=str(opts[f"{prefix}_endpoint"]),
            server_cert_pem=server,
            client_cert_pem=client,
            role=str(opts[f"{prefix}_role"]),
            connection="internet" if connection == "internet" else "diginetwerk",
            signing_cert_pem=_pem(_path(opts[f"{prefix}_signing_cert"]), f"--{prefix}-signing-cert"),
            encryption_cert_pem=_pem(_path(opts[f"{prefix}_encryption_cert"]), f"--{prefix}-encryption-cert"),
        )

    connection = str(opts["connectietype"]).lower() if opts["connectietype"] else opts["connection"]
    party = side("party", party_oin, connection)
    partner = side("partner", str(opts["partner_oin"]), opts["partner_connection"])
    start = (
        _moment(str(opts["start"]), "--start")
        if opts["start"]
        else SystemClock().now().replace(microsecond=0)
    )
    end = _moment(str(opts["end"]), "--end") if opts["end"] else _earliest_expiry(party, partner)
    actions = cast(tuple[str, ...], opts["actions"]) or DEFAULT_ACTIONS
    comments = (f"profielnaam: {opts['profile_name']}",) if opts["profile_name"] else ()
    request = AgreementRequest(
        party=party,
        partner=partner,
        start=start,
        end=end,
        profile=Profile(str(opts["profile"])),
        service=str(opts["service"]),
        actions=actions,
        retries=int(str(opts["retries"])),
        retry_interval=_duration(str(opts["retry_interval"]), "--retry-interval"),
        persist_duration=_duration(str(opts["persist_duration"]), "--persist-duration"),
        sync_reply=bool(opts["sync_reply"]),
        cpa_id=str(opts["cpa_id"]) if opts["cpa_id"] else None,
        cpa_version=str(opts["cpa_version"]),
        comments=comments,
    )
    try:
        data = create_agreement(request)
    except GgkEbmsError as exc:
        fail(str(exc))
    validation = _validate_bytes(settings, data)
    if not validation.ok:
        _print_findings("created CPA", validation.findings)
        fail("the created CPA does not pass validation; nothing written")
    output = _path(opts["output"])
    agreement = validation.agreement
    assert agreement is not None
    if opts["import_"]:
        profielnaam = str(opts["profile_name"]) if opts["profile_name"] else None
        _import_created(settings, agreement, request, profielnaam)
    if output is None:
        if not opts["import_"]:
            _write_stdout(data)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    click.echo(
        f"{output}: CPA {agreement.cpa_id} ({request.profile.value}), valid "
        f"{validity_label(agreement, SystemClock().now())}, {len(validation.warnings)} warning(s)",
        err=True,
    )


def _import_created(
    settings: Settings, agreement: Agreement, request: AgreementRequest, profielnaam: str | None
) -> None:
    """Store a created CPA and its portal request fields (docs/operations.md "CPA beheer")."""
    from ggk_ebms.cli.ops_support import service_context
    from ggk_ebms.services.cpa_beheer import check_request, fields_of_request, save_request

    try:
        fields = fields_of_request(request, profielnaam)
        check_request(fields)  # before the CPA is stored: both or neither
    except GgkEbmsError as exc:
        fail(f"created CPA not imported: {exc}")
    with _repository(settings) as repo:
        try:
            require_our_party(agreement, settings.party_ids)
            repo.add_agreement(agreement)
        except CpaError as exc:
            fail(f"created CPA not imported: {exc}")
        _audit(settings, repo.db, "cpa-import", agreement.cpa_id, "cpa create --import")
        try:
            save_request(service_context(settings, repo.db), agreement.cpa_id, fields)
        except GgkEbmsError as exc:
            fail(f"CPA {agreement.cpa_id} imported, but its portal request fields were not stored: {exc}")
    click.echo(f"imported as {agreement.cpa_id}, with its portal request fields", err=True)


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _path(value: object) -> Path | None:
    return value if isinstance(value, Path) else None


def _earliest_expiry(*sides: PartyRequest) -> datetime:
    """EB010: a CPA's validity follows its certificates; default End is the first expiry."""
    pems = [
        pem
        for side in sides
        for pem in (
            side.server_cert_pem,
            side.client_cert_pem,
            side.signing_cert_pem,
            side.encryption_cert_pem,
        )
        if pem is not None
    ]
    try:
        return min(certificates_from_pem(pem, "certificate")[0].not_valid_after_utc for pem in pems)
    except GgkEbmsError as exc:
        fail(str(exc))
