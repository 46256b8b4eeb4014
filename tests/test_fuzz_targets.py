"""Hypothesis drives the fuzz targets of fuzz/targets.py: any input gives a value or that
parser's documented refusal, never another exception (atheris does the long runs: fuzz/run.py)."""

from __future__ import annotations

import pytest
from fuzz.targets import TARGETS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import peer
from tests.endpoint import CPA_RM, GEMEENTE, PROJECT_ROOT, RINIS

PING = peer.ping_envelope(CPA_RM, RINIS, GEMEENTE, sync_reply=True)
CPA = (PROJECT_ROOT / "cpa" / "dev-osb-rm.xml").read_bytes()
SEEDS = {
    "mime": b'multipart/related; type="text/xml"; boundary="b"\n--b\r\nContent-Type: text/xml\r\n\r\n'
    + PING
    + b"\r\n--b--\r\n",
    "xml": PING,
    "ebms": PING,
    "stuf": PING,
    "cpa": CPA,
    "datetime": b"2026-12-05T12:00:00.5+01:00",
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few bytes replaced, inserted or cut: near-valid input reaches deep code."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["replace", "insert", "cut"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if action == "replace":
            data[pos : pos + len(chunk)] = chunk
        elif action == "insert":
            data[pos:pos] = chunk
        else:
            del data[pos : pos + len(chunk)]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seed_is_handled(name: str) -> None:
    TARGETS[name](SEEDS[name])


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutations_give_a_value_or_a_documented_refusal(name: str) -> None:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.one_of(st.binary(max_size=2048), mutated(SEEDS[name])))
    def run(data: bytes) -> None:
        TARGETS[name](data)

    run()
