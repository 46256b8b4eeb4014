"""The load generator's figures (bench/loadgen.py): the p99 over a whole phase and over the
messages due once its connections are open (``p99_warm``)."""

from __future__ import annotations

from bench.loadgen import WARM_AFTER, LoadResult


def _phase(samples: list[tuple[float, float]]) -> LoadResult:
    """A phase of (due seconds into the phase, latency seconds) pairs, all answered."""
    result = LoadResult(sent=len(samples), ok=len(samples), elapsed=10.0)
    for due, latency in samples:
        result.dues.append(due)
        result.latencies.append(latency)
    return result


def test_the_warm_p99_leaves_out_the_messages_due_while_connections_open() -> None:
    # 100 messages: the first 10 due in the first 0.1 s, slow (TLS handshakes); then fast ones.
    opening = [(n * 0.01, 0.050) for n in range(10)]
    steady = [(WARM_AFTER + n * 0.01, 0.005) for n in range(90)]
    result = _phase(opening + steady)
    assert result.percentile_ms(99) == 50.0
    assert result.percentile_ms(99, due_after=WARM_AFTER) == 5.0
    summary = result.summary()
    assert (summary["p99_ms"], summary["p99_warm_ms"]) == (50.0, 5.0)


def test_a_slow_moment_after_the_opening_counts_in_both() -> None:
    samples = [(WARM_AFTER + n * 0.01, 0.005) for n in range(99)] + [(5.0, 0.080)]
    result = _phase(samples)
    assert result.percentile_ms(100) == result.percentile_ms(100, due_after=WARM_AFTER) == 80.0


def test_no_message_due_after_the_opening_gives_no_figure() -> None:
    result = _phase([(0.0, 0.01)])
    assert result.percentile_ms(99) == 10.0
    assert result.percentile_ms(99, due_after=WARM_AFTER) is None
