"""routes.toml: a good file loads, a bad one is refused with every error and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggk_ebms.errors import ConfigError
from ggk_ebms.routing.load import load_routes, parse_routes
from ggk_ebms.routing.table import (
    Channel,
    DirectoryTarget,
    EbmsTarget,
    HttpTarget,
    MailboxTarget,
    RouteStatus,
)

GOOD = """\
[endpoint]
gemeentecodes = ["0363", "0014", "9999"]
test_gemeentecodes = ["9999"]

[[sender]]
id = "00000004003214345001"
gemeentecodes = ["*"]

[[route]]
name = "amsterdam-start"
gemeentecode = "0363"
berichttype = "WMO305"
payload_version = "3.2"
target = { type = "directory", path = "in/0363", write_envelope = true }

[[route]]
name = "groningen-jeugd"
gemeentecode = "0014"
berichttype = "*"
channel = "portaal"
[route.target]
type = "http"
url = "https://jeugd.groningen.example/ggk"
client_cert = "/etc/ggk/client.pem"
client_key = "/etc/ggk/client-key.pem"

[[route]]
name = "verband"
gemeentecode = "*"
berichttype = "WMO402"
status = "Inactief"
allowed_senders = ["cpa-cak"]
target = { type = "ebms", cpa_id = "cpa-verband", service = "urn:osb:services:ggk", action = "ontvang" }

[[route]]
name = "rest"
gemeentecode = "*"
berichttype = "*"
target = { type = "mailbox" }
"""


def test_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(GOOD, encoding="utf-8")
    table = load_routes(path)
    assert table.served_gemeentecodes == {"0363", "0014", "9999"}
    start, jeugd, verband, rest = table.routes
    assert start.target == DirectoryTarget(tmp_path / "in" / "0363", write_envelope=True, write_metadata=True)
    assert start.payload_version == "3.2"
    assert isinstance(jeugd.target, HttpTarget)
    assert jeugd.target.client_cert == Path("/etc/ggk/client.pem")
    assert jeugd.channel is Channel.PORTAAL
    assert verband.status is RouteStatus.INACTIEF
    assert verband.target == EbmsTarget("cpa-verband", "urn:osb:services:ggk", "ontvang")
    assert verband.allowed_senders == ("cpa-cak",)
    assert rest.target == MailboxTarget()
    assert table.match("0363", "WMO305").route == start
    assert table.authorize("00000004003214345001", "0363", start).allowed


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_routes(text)
    return str(caught.value).splitlines()[1:]


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


# change to GOOD, expected error line
BAD = [
    (
        'berichttype = "WMO305"',
        'berichttype = "WMO399"',
        "routes.toml line 12: route 'amsterdam-start': berichttype 'WMO399' is not a known berichttype",
    ),
    (
        'gemeentecodes = ["0363", "0014", "9999"]',
        'gemeentecodes = ["0363", "0014", "9999", "0548"]',
        "routes.toml line 2: endpoint: gemeentecode '0548' is not in the CBS list 2026 "
        "(add it to test_gemeentecodes if it is a test gemeente)",
    ),
    (
        'gemeentecode = "0014"',
        'gemeentecode = "0384"',
        "routes.toml line 18: route 'groningen-jeugd': gemeentecode '0384' is not in endpoint.gemeentecodes",
    ),
    (
        'status = "Inactief"',
        'status = "uit"',
        "routes.toml line 31: route 'verband': status 'uit' is not actief or inactief",
    ),
    (
        'client_key = "/etc/ggk/client-key.pem"\n',
        "",
        "routes.toml line 24: route 'groningen-jeugd': target: client_cert and client_key go together",
    ),
    (
        'target = { type = "mailbox" }',
        'target = { type = "ftp" }',
        "routes.toml line 39: route 'rest': target type 'ftp' is not directory, http, ebms or mailbox",
    ),
    (
        'payload_version = "3.2"',
        'payload_versie = "3.2"',
        "routes.toml line 13: route 'amsterdam-start': unknown key 'payload_versie'",
    ),
    (
        'name = "rest"',
        'name = "amsterdam-start"',
        "routes.toml: route name 'amsterdam-start' is used twice",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD, ids=[b[2].split(": ")[-1][:40] for b in BAD])
def test_bad_file_names_the_line(old: str, new: str, expected: str) -> None:
    assert _errors(_replace(old, new)) == [expected]


def test_all_errors_are_reported_at_once() -> None:
    text = _replace('berichttype = "WMO305"', 'berichttype = "WMO399"').replace(
        'status = "Inactief"', 'status = "uit"'
    )
    assert len(_errors(text)) == 2


def test_toml_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_routes("[[route]\nname = ")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read routes file"):
        load_routes(tmp_path / "absent.toml")
