"""Read a routes.toml into a ``RoutingTable``, refusing it with line-level errors.

TOML only: PyYAML is not a dependency of this project. The format (docs/stuf-routing.md)::

    [endpoint]
    gemeentecodes = ["0363", "9999"]    # served; each must be a CBS code…
    test_gemeentecodes = ["9999"]        # …or listed here (the portal's test gemeente)

    [[sender]]
    id = "00000004003214345001"          # OIN or CPAId
    gemeentecodes = ["*"]                # "*": every served gemeentecode

    [[route]]
    name = "amsterdam-wmo-toewijzing"
    gemeentecode = "0363"                # or "*"
    berichttype = "WMO305"               # or "*"
    status = "actief"                    # actief | inactief
    channel = "Digikoppeling"            # Digikoppeling | Portaal
    stuf_version = "2.1"
    payload_version = "3.2"
    allowed_senders = []                 # empty: any sender whose scope covers the gemeentecode
    target = { type = "directory", path = "in/0363", write_envelope = true, write_metadata = true }

Every error is collected and reported at once, each with its line ("routes.toml line 12: route
'gemeente-0363': berichttype 'WMO399' is not a known berichttype"), because a productbeheerder
fixes a file faster from a full list. Gemeentecodes are
checked against the CBS list (GGk handleiding: routing).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from ggk_ebms.errors import ConfigError
from ggk_ebms.gemeentecodes import GemeenteLijst, cbs_gemeentecodes, is_gemeentecode_form
from ggk_ebms.payloads.catalogue import DEFAULT_CATALOGUE, Catalogue
from ggk_ebms.routing.table import (
    WILDCARD,
    Channel,
    DirectoryTarget,
    EbmsTarget,
    HttpTarget,
    MailboxTarget,
    Route,
    RouteStatus,
    RoutingTable,
    Target,
)

_TOP_KEYS: Final = {"endpoint", "sender", "route"}
_ENDPOINT_KEYS: Final = {"gemeentecodes", "test_gemeentecodes"}
_SENDER_KEYS: Final = {"id", "gemeentecodes"}
_ROUTE_KEYS: Final = {
    "name",
    "gemeentecode",
    "berichttype",
    "status",
    "channel",
    "stuf_version",
    "payload_version",
    "allowed_senders",
    "target",
}
_TARGET_KEYS: Final = {
    "directory": {"type", "path", "write_envelope", "write_metadata"},
    "http": {"type", "url", "client_cert", "client_key", "trust_store"},
    "ebms": {"type", "cpa_id", "service", "action"},
    "mailbox": {"type"},
}
_HEADER: Final = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?")


def load_routes(
    path: Path, *, gemeenten: GemeenteLijst | None = None, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> RoutingTable:
    """Read and check ``path``; relative target paths are taken from the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read routes file {path}: {exc.strerror}") from None
    return parse_routes(
        text, source=path.name, base_dir=path.parent, gemeenten=gemeenten, catalogue=catalogue
    )


def parse_routes(
    text: str,
    *,
    source: str = "routes.toml",
    base_dir: Path | None = None,
    gemeenten: GemeenteLijst | None = None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
) -> RoutingTable:
    """The pure half of ``load_routes``: TOML text in, a checked ``RoutingTable`` out."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    reader = _Reader(text, source, base_dir, gemeenten or cbs_gemeentecodes(), catalogue)
    return reader.read(document)


class _Reader:
    def __init__(
        self, text: str, source: str, base_dir: Path | None, gemeenten: GemeenteLijst, catalogue: Catalogue
    ) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.base_dir = base_dir
        self.gemeenten = gemeenten
        self.catalogue = catalogue
        self.errors: list[str] = []
        self.headers = [
            (number, m.group(1)) for number, line in enumerate(self.lines, 1) if (m := _HEADER.match(line))
        ]

    # -- line finding: tomllib gives values only, so find the line of a table or key in the text --
    def _table_range(self, table: str, index: int | None) -> tuple[int, int]:
        starts = [n for n, name in self.headers if name == table]
        if index is None or index >= len(starts):
            return (starts[0], len(self.lines)) if starts else (1, len(self.lines))
        start = starts[index]
        following = [n for n, name in self.headers if n > start and not name.startswith(f"{table}.")]
        return start, (following[0] - 1 if following else len(self.lines))

    def _line(self, table: str, index: int | None, key: str | None = None) -> int:
        start, end = self._table_range(table, index)
        if key is not None:
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=|[{{,]\s*{re.escape(key)}\s*=")
            for number in range(start, end + 1):
                if pattern.search(self.lines[number - 1]):
                    return number
        return start

    def _error(self, table: str, index: int | None, key: str | None, what: str) -> None:
        self.errors.append(f"{self.source} line {self._line(table, index, key)}: {what}")

    # -- reading --
    def read(self, document: dict[str, Any]) -> RoutingTable:
        for key in document:
            if key not in _TOP_KEYS:
                self._error(key, None, None, f"unknown table {key!r} (expected endpoint, sender, route)")
        served = self._endpoint(document.get("endpoint", {}))
        scopes = self._senders(document.get("sender", []), served)
        routes = [
            route
            for index, raw in enumerate(_array(document.get("route", [])))
            if (route := self._route(index, raw, served)) is not None
        ]
        table: RoutingTable | None = None
        if not self.errors:
            try:
                table = RoutingTable(routes, served, sender_scopes=scopes, catalogue=self.catalogue)
            except ConfigError as exc:
                self.errors.append(f"{self.source}: {exc}")
        if self.errors or table is None:
            raise ConfigError("routes file refused:\n" + "\n".join(self.errors))
        return table

    def _endpoint(self, raw: object) -> frozenset[str]:
        if not isinstance(raw, dict):
            self._error("endpoint", None, None, "endpoint must be a table")
            return frozenset()
        for key in raw:
            if key not in _ENDPOINT_KEYS:
                self._error("endpoint", None, key, f"endpoint: unknown key {key!r}")
        tests = self._codes(raw.get("test_gemeentecodes", []), "endpoint", None, "test_gemeentecodes")
        codes = self._codes(raw.get("gemeentecodes"), "endpoint", None, "gemeentecodes")
        if not codes:
            self._error(
                "endpoint", None, "gemeentecodes", "endpoint: gemeentecodes must list at least one code"
            )
        for code in codes:
            if code not in self.gemeenten and code not in tests:
                self._error(
                    "endpoint",
                    None,
                    "gemeentecodes",
                    f"endpoint: gemeentecode {code!r} is not in the CBS list {self.gemeenten.year} "
                    "(add it to test_gemeentecodes if it is a test gemeente)",
                )
        return frozenset(codes)

    def _codes(self, raw: object, table: str, index: int | None, key: str) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            self._error(table, index, key, f"{table}: {key} must be a list of strings")
            return []
        for value in raw:
            if not is_gemeentecode_form(value):
                self._error(table, index, key, f"{table}: {key}: {value!r} is not a 4-digit gemeentecode")
        return [v for v in raw if is_gemeentecode_form(v)]

    def _senders(self, raw: object, served: frozenset[str]) -> dict[str, list[str]]:
        scopes: dict[str, list[str]] = {}
        for index, sender in enumerate(_array(raw)):
            if not isinstance(sender, dict):
                self._error("sender", index, None, "sender must be a table")
                continue
            for key in sender:
                if key not in _SENDER_KEYS:
                    self._error("sender", index, key, f"sender: unknown key {key!r}")
            ident = sender.get("id")
            if not isinstance(ident, str) or not ident:
                self._error("sender", index, "id", "sender: id (OIN or CPAId) is required")
                continue
            if ident in scopes:
                self._error("sender", index, "id", f"sender {ident!r} is listed twice")
            codes = sender.get("gemeentecodes", [WILDCARD])
            if codes == [WILDCARD]:
                scopes[ident] = [WILDCARD]
                continue
            checked = self._codes(codes, "sender", index, "gemeentecodes")
            for code in checked:
                if code not in served:
                    self._error(
                        "sender",
                        index,
                        "gemeentecodes",
                        f"sender {ident!r}: gemeentecode {code!r} is not served",
                    )
            scopes[ident] = checked
        return scopes

    def _route(self, index: int, raw: object, served: frozenset[str]) -> Route | None:
        if not isinstance(raw, dict):
            self._error("route", index, None, "route must be a table")
            return None
        name = raw.get("name")
        label = f"route {name!r}" if isinstance(name, str) and name else f"route #{index + 1}"
        before = len(self.errors)

        def fail(key: str | None, what: str) -> None:
            self._error("route", index, key, f"{label}: {what}")

        if not isinstance(name, str) or not name:
            fail("name", "name is required")
        for key in raw:
            if key not in _ROUTE_KEYS:
                fail(key, f"unknown key {key!r}")
        gemeentecode = raw.get("gemeentecode")
        if gemeentecode != WILDCARD:
            if not isinstance(gemeentecode, str) or not is_gemeentecode_form(gemeentecode):
                fail("gemeentecode", f"gemeentecode {gemeentecode!r} is not a 4-digit code or '*'")
            elif gemeentecode not in served:
                fail("gemeentecode", f"gemeentecode {gemeentecode!r} is not in endpoint.gemeentecodes")
        berichttype = raw.get("berichttype")
        if berichttype != WILDCARD and (
            not isinstance(berichttype, str) or berichttype not in self.catalogue
        ):
            fail("berichttype", f"berichttype {berichttype!r} is not a known berichttype")
        status = _enum(RouteStatus, raw.get("status", "actief"))
        if status is None:
            fail("status", f"status {raw.get('status')!r} is not actief or inactief")
        channel = _enum(Channel, raw.get("channel", "Digikoppeling"))
        if channel is None:
            fail("channel", f"channel {raw.get('channel')!r} is not Digikoppeling or Portaal")
        stuf_version = raw.get("stuf_version", "2.1")
        payload_version = raw.get("payload_version")
        if not isinstance(stuf_version, str):
            fail("stuf_version", 'stuf_version must be a string such as "2.1"')
        if payload_version is not None and not isinstance(payload_version, str):
            fail("payload_version", 'payload_version must be a string such as "3.2"')
        senders = raw.get("allowed_senders", [])
        if not isinstance(senders, list) or not all(isinstance(s, str) and s for s in senders):
            fail("allowed_senders", "allowed_senders must be a list of OINs or CPAIds")
            senders = []
        target = self._target(raw.get("target"), fail)
        if len(self.errors) > before or target is None or status is None or channel is None:
            return None
        return Route(
            name=str(name),
            gemeentecode=str(gemeentecode),
            berichttype=str(berichttype),
            target=target,
            status=status,
            channel=channel,
            stuf_version=str(stuf_version),
            payload_version=payload_version,
            allowed_senders=tuple(senders),
        )

    def _target(self, raw: object, fail: Callable[[str | None, str], None]) -> Target | None:
        if not isinstance(raw, dict):
            fail("target", "target is required: a table with type = directory | http | ebms | mailbox")
            return None
        kind = raw.get("type")
        if kind not in _TARGET_KEYS:
            fail("type", f"target type {kind!r} is not directory, http, ebms or mailbox")
            return None
        for key in raw:
            if key not in _TARGET_KEYS[kind]:
                fail(key, f"target: unknown key {key!r} for type {kind}")
        strings = {k: v for k, v in raw.items() if isinstance(v, str) and v}
        missing = {
            "directory": ["path"],
            "http": ["url"],
            "ebms": ["cpa_id", "service", "action"],
            "mailbox": [],
        }[kind]
        for key in missing:
            if key not in strings:
                fail(key, f"target: {key} is required for type {kind}")
        if any(key not in strings for key in missing):
            return None
        if kind == "directory":
            flags = {
                k: raw.get(k, default) for k, default in (("write_envelope", False), ("write_metadata", True))
            }
            for key, value in flags.items():
                if not isinstance(value, bool):
                    fail(key, f"target: {key} must be true or false")
            return DirectoryTarget(
                self._path(strings["path"]), flags["write_envelope"] is True, flags["write_metadata"] is True
            )
        if kind == "http":
            url = strings["url"]
            if not url.startswith(("https://", "http://")):
                fail("url", "target: url must start with https:// (or http:// on a trusted network)")
            optional = {
                k: self._path(strings[k]) if k in strings else None
                for k in ("client_cert", "client_key", "trust_store")
            }
            if (optional["client_cert"] is None) != (optional["client_key"] is None):
                fail("client_cert", "target: client_cert and client_key go together")
            return HttpTarget(url, optional["client_cert"], optional["client_key"], optional["trust_store"])
        if kind == "ebms":
            return EbmsTarget(strings["cpa_id"], strings["service"], strings["action"])
        return MailboxTarget()

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path


def _array(raw: object) -> list[object]:
    return raw if isinstance(raw, list) else [raw]


_E = TypeVar("_E", RouteStatus, Channel)


def _enum(kind: type[_E], value: object) -> _E | None:
    if not isinstance(value, str):
        return None
    for member in kind:
        if member.value.lower() == value.lower():
            return member
    return None
