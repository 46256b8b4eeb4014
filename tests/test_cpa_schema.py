"""Our CPPA 2.0 schema against the official one, and the network-free schema loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpa_support import cpa_bytes, mutate, official_schema, shared_cpas
from ggk_ebms.cpa.model import Profile
from ggk_ebms.cpa.schema import BUILTIN_SCHEMA, load_schema, schema_problems
from ggk_ebms.errors import ConfigError
from ggk_ebms.xml import parse


def test_builtin_schema_is_ours_and_loads_once() -> None:
    assert BUILTIN_SCHEMA.is_file()
    assert load_schema() is load_schema()
    assert b"ggk-ebms" in BUILTIN_SCHEMA.read_bytes()


def test_every_reference_cpa_is_valid_against_our_schema() -> None:
    ours = load_schema()
    for path in shared_cpas():
        assert schema_problems(parse(path.read_bytes()), ours) == [], path.name


def test_every_reference_cpa_is_valid_against_the_official_schema() -> None:
    official = official_schema()
    for path in shared_cpas():
        assert schema_problems(parse(path.read_bytes()), official) == [], path.name


@pytest.mark.parametrize("profile", list(Profile))
def test_generated_cpas_are_valid_against_both_schemas(profile: Profile) -> None:
    root = parse(cpa_bytes(profile))
    assert schema_problems(root, load_schema()) == []
    assert schema_problems(root, official_schema()) == []


MALFORMED = [
    ("missing Status", '<cppa:Status cppa:value="agreed"/>', "", "Status"),
    ("bad Status value", 'cppa:value="agreed"', 'cppa:value="accepted"', "accepted"),
    ("bad syncReplyMode", 'cppa:syncReplyMode="none"', 'cppa:syncReplyMode="sometimes"', "sometimes"),
    ("bad ackRequested", 'cppa:ackRequested="always"', 'cppa:ackRequested="yes"', "yes"),
    ("bad actor", 'cppa:actor="urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"', 'cppa:actor="me"', "actor"),
    ("bad MessageOrderSemantics", ">NotGuaranteed<", ">Sometimes<", "Sometimes"),
    ("bad Start", "<cppa:Start>2026-01-01T00:00:00Z<", "<cppa:Start>1 jan<", "Start"),
    ("bad duration", "<cppa:RetryInterval>PT3H<", "<cppa:RetryInterval>3 hours<", "RetryInterval"),
    ("missing cpaid", 'cppa:cpaid="', 'cppa:cpaidx="', "cpaid"),
    ("duplicate certId", 'cppa:certId="A_ServerCert">', 'cppa:certId="A_ClientCert">', "A_ClientCert"),
    ("unknown element", "<cppa:Status", "<cppa:Unexpected/><cppa:Status", "Unexpected"),
]


@pytest.mark.parametrize(("case", "old", "new", "mentions"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_cpas_are_refused_by_our_schema(case: str, old: str, new: str, mentions: str) -> None:
    data = mutate(cpa_bytes(), old, new, 1)
    problems = schema_problems(parse(data), load_schema())
    assert problems, case
    assert any(mentions in p.message for p in problems), problems


def test_problem_locations_have_no_prefixes() -> None:
    data = mutate(cpa_bytes(), 'cppa:syncReplyMode="none"', 'cppa:syncReplyMode="sometimes"', 1)
    problem = schema_problems(parse(data), load_schema())[0]
    assert problem.location.startswith("/CollaborationProtocolAgreement/PartyInfo[1]/DeliveryChannel[1]")
    assert ":" not in problem.location


def _schema_folder(tmp_path: Path, main: str, extra: dict[str, str] | None = None) -> Path:
    (tmp_path / "main.xsd").write_text(main, encoding="utf-8")
    for name, text in (extra or {}).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / "main.xsd"


_XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://example.invalid/other.xsd", "never URLs"),
        ("file:///etc/passwd", "never URLs"),
        ("../outside.xsd", "outside"),
        ("missing.xsd", "does not exist"),
    ],
)
def test_schema_imports_stay_inside_the_folder(tmp_path: Path, location: str, message: str) -> None:
    (tmp_path / "outside.xsd").write_text(f"<xs:schema {_XS}/>", encoding="utf-8")
    folder = tmp_path / "schemas"
    folder.mkdir()
    main = f'<xs:schema {_XS}><xs:import namespace="urn:x" schemaLocation="{location}"/></xs:schema>'
    with pytest.raises(ConfigError, match=message):
        load_schema(_schema_folder(folder, main))


def test_schema_with_doctype_refused(tmp_path: Path) -> None:
    main = f'<!DOCTYPE xs:schema SYSTEM "http://example.invalid/x.dtd"><xs:schema {_XS}/>'
    with pytest.raises(ConfigError, match="DOCTYPE"):
        load_schema(_schema_folder(tmp_path, main))


def test_local_imports_are_followed(tmp_path: Path) -> None:
    main = (
        f'<xs:schema {_XS} targetNamespace="urn:a" xmlns:b="urn:b">'
        '<xs:import namespace="urn:b" schemaLocation="b.xsd"/>'
        '<xs:element name="root"><xs:complexType><xs:sequence><xs:element ref="b:leaf"/>'
        "</xs:sequence></xs:complexType></xs:element></xs:schema>"
    )
    b = f'<xs:schema {_XS} targetNamespace="urn:b"><xs:element name="leaf" type="xs:int"/></xs:schema>'
    schema = load_schema(_schema_folder(tmp_path, main, {"b.xsd": b}))
    assert schema_problems(parse(b'<root xmlns="urn:a"><leaf xmlns="urn:b">1</leaf></root>'), schema) == []
    assert schema_problems(parse(b'<root xmlns="urn:a"><leaf xmlns="urn:b">x</leaf></root>'), schema)


def test_missing_schema_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_schema(tmp_path / "nope.xsd")
