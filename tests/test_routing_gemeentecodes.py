"""Our gemeentecode data equals the CBS 2026 list in ../shared, and the generator reproduces it."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, require_shared
from ggk_ebms.gemeentecodes import (
    cbs_gemeentecodes,
    is_agb_code_form,
    is_gemeentecode_form,
    parse_gemeentecodes,
)


def _shared_rows() -> dict[str, tuple[str, str]]:
    path = require_shared("data", "gemeentecodes", "cbs_gemeentecodes_2026.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            row["gemeentecode"]: (row["gemeentenaam"], row["provincie"])
            for row in csv.DictReader(handle, delimiter=";")
        }


def test_packaged_list_equals_the_cbs_list() -> None:
    shared = _shared_rows()
    ours = cbs_gemeentecodes(2026)
    assert len(ours) == len(shared) == 342
    assert {g.code: (g.naam, g.provincie) for g in ours} == shared


def test_generator_reproduces_the_packaged_file(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate", PROJECT_ROOT / "scripts" / "generate_gemeentecodes.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = require_shared("data", "gemeentecodes", "cbs_gemeentecodes_2026.csv")
    module.main([str(source), "2026", "--out-dir", str(tmp_path)])
    generated = (tmp_path / "gemeentecodes_2026.tsv").read_text(encoding="utf-8")
    packaged = (PROJECT_ROOT / "src" / "ggk_ebms" / "data" / "gemeentecodes_2026.tsv").read_text(
        encoding="utf-8"
    )
    assert generated == packaged


def test_known_codes() -> None:
    lijst = cbs_gemeentecodes()
    assert "0363" in lijst
    assert lijst.get("0363").naam == "Amsterdam"  # type: ignore[union-attr]
    assert "0548" not in lijst  # the VNG examples' code, gone by 2026 (iStandaarden examples)
    assert "9999" not in lijst  # portal test gemeente: allowed only through configuration


@pytest.mark.parametrize(
    ("value", "gemeente", "agb"),
    [("0363", True, False), ("GM0363", False, False), ("42420001", False, True), ("CAK", False, False)],
)
def test_code_forms(value: str, gemeente: bool, agb: bool) -> None:
    assert (is_gemeentecode_form(value), is_agb_code_form(value)) == (gemeente, agb)


def test_malformed_data_is_refused() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_gemeentecodes("code\tnaam\tprovincie\n363\tAmsterdam\tNoord-Holland\n", 2026)
