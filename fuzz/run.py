"""Run one fuzz target under atheris (coverage-guided, libFuzzer).

    pip install -e '.[fuzz]'
    python -m fuzz.run ebms -- -max_total_time=600 fuzz/corpus/ebms

Targets: mime, xml, ebms, stuf, cpa, datetime (fuzz/targets.py). Arguments after ``--`` go to
libFuzzer (a corpus folder, -max_total_time, -jobs ...). A crash leaves ``crash-<sha1>`` with the
input; copy it to tests/hostile/ or a unit test once the parser is fixed.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in _names():
        print(f"usage: python -m fuzz.run TARGET [-- libFuzzer args]; targets: {', '.join(_names())}")
        return 2
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        print("atheris is not installed: pip install -e '.[fuzz]' (needs clang's libFuzzer)")
        return 2
    with atheris.instrument_imports():
        from fuzz.targets import TARGETS
    target = TARGETS[argv[0]]
    rest = argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    atheris.Setup([sys.argv[0], *rest], target)
    atheris.Fuzz()
    return 0


def _names() -> list[str]:
    from fuzz.targets import TARGETS

    return sorted(TARGETS)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
