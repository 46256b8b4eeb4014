"""Import the CPAs in ``cpa_dir`` and the ``routes_file`` at start, so the endpoint runs on its dev
CPAs and dev routing table out of the box.

Only CPAs whose CPAId is not stored yet are imported, each after full validation; a stored CPA is
never replaced from the folder (that is ``cpa import --overwrite``, a deliberate act). Each file
gives one line saying what happened, so the productbeheerder can see why a CPA is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

from ggk_ebms.clock import SystemClock
from ggk_ebms.config import Settings
from ggk_ebms.cpa.hygiene import require_our_party
from ggk_ebms.cpa.lint import validate_cpa
from ggk_ebms.cpa.schema import load_schema
from ggk_ebms.errors import ConfigError, CpaError
from ggk_ebms.store.cpas import CpaRepository
from ggk_ebms.store.db import Database
from ggk_ebms.store.routes import RouteStore


def import_cpa_dir(settings: Settings, database: Database) -> Iterator[str]:
    folder = settings.cpa_dir
    if not folder.is_dir():
        yield f"cpa auto-import: folder {folder} does not exist; nothing imported"
        return
    repository = CpaRepository(database)
    schema = load_schema(settings.cpa_schema)
    now = SystemClock().now()
    for path in sorted(folder.glob("*.xml")):
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield f"cpa auto-import: {path}: cannot be read: {exc.strerror}"
            continue
        validation = validate_cpa(
            data, now=now, allow_sha1=settings.allow_sha1, schema=schema, max_bytes=settings.max_cpa_bytes
        )
        agreement = validation.agreement
        if not validation.ok or agreement is None:
            errors = [f for f in validation.findings if f.severity == "error"]
            first = errors[0] if errors else None
            detail = f"{first.rule}: {first.message}" if first else "not readable"
            yield f"cpa auto-import: {path}: not imported, {len(errors)} error(s), first {detail}"
            continue
        if repository.find(agreement.cpa_id) is not None:
            continue
        try:
            require_our_party(agreement, settings.party_ids)
            repository.add_agreement(agreement)
        except CpaError as exc:  # another process imported it a moment ago
            yield f"cpa auto-import: {path}: not imported: {exc}"
            continue
        yield f"cpa auto-import: {path}: imported as {agreement.cpa_id}"


def import_routes_file(settings: Settings, database: Database) -> Iterator[str]:
    """Import ``routes_file`` when no routing table is stored yet (first start on a database).

    A stored table is never replaced from the file: that is `routes import`, a deliberate act.
    """
    path = settings.routes_file
    if path is None:
        return
    store = RouteStore(database)
    if store.current() is not None:
        return
    if not path.is_file():
        yield f"routes auto-import: {path} does not exist; no routing table, messages are held"
        return
    try:
        stored, _ = store.replace(path.read_text(encoding="utf-8"), source=path.name, base_dir=path.parent)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        yield f"routes auto-import: {path}: not imported: {exc}"
        return
    yield f"routes auto-import: {path}: {stored.route_count} route(s) in force"
