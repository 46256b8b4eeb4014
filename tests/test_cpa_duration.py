"""xsd:duration parsing: the full lexical form, approximations for months/years, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ggk_ebms.cpa.duration import XsdDuration, format_duration, parse_duration, parse_xsd_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT3H", timedelta(hours=3)),
        ("P1D", timedelta(days=1)),
        ("PT5M", timedelta(minutes=5)),  # M after T is minutes ...
        ("P1M", timedelta(days=30)),  # ... before T it is months (30 days, documented approximation)
        ("P1Y", timedelta(days=365)),
        ("P2D", timedelta(days=2)),
        ("PT30M", timedelta(minutes=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1.000001S", timedelta(seconds=1, microseconds=1)),
        ("PT1.0000019S", timedelta(seconds=1, microseconds=1)),  # truncated below a microsecond
        ("P1Y2M3DT4H5M6.7S", timedelta(days=365 + 60 + 3, hours=4, minutes=5, seconds=6, milliseconds=700)),
        ("PT36H", timedelta(hours=36)),  # components may exceed their "natural" range
        ("PT0S", timedelta(0)),
        ("P0D", timedelta(0)),
        ("  PT3H\n", timedelta(hours=3)),  # whiteSpace collapse
        ("PT90M", timedelta(minutes=90)),
    ],
)
def test_valid_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",  # no component
        "PT",  # T without time
        "P1DT",  # T without time
        "-PT3H",  # negative: refused, never made positive
        "PT3h",  # lower-case designator
        "3H",  # no P
        "PT1.5H",  # only seconds may have a fraction
        "P1.5D",
        "PT3H2H",  # repeated component
        "PT5M3H",  # wrong order
        "P1H",  # hours before T
        "P T3H",  # inner whitespace
        "PT.5S",  # fraction needs a whole part
        "PT-3H",
        "P1W",  # weeks are ISO 8601, not xsd:duration
        "P999999999999Y",  # beyond timedelta
    ],
)
def test_invalid_durations_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_duration(text)


def test_components_kept_exactly() -> None:
    parsed = parse_xsd_duration("P1Y2M3DT4H5M6.25S")
    assert parsed == XsdDuration(1, 2, 3, 4, 5, Decimal("6.25"))


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), "P1M", datetime(2026, 2, 28, tzinfo=UTC)),  # clipped to month end
        (datetime(2028, 1, 31, tzinfo=UTC), "P1M", datetime(2028, 2, 29, tzinfo=UTC)),  # leap year
        (datetime(2026, 11, 15, tzinfo=UTC), "P2M", datetime(2027, 1, 15, tzinfo=UTC)),  # over the year end
        (datetime(2026, 3, 1, tzinfo=UTC), "P1YT3H", datetime(2027, 3, 1, 3, tzinfo=UTC)),
        (datetime(2026, 3, 1, tzinfo=UTC), "PT3H", datetime(2026, 3, 1, 3, tzinfo=UTC)),
    ],
)
def test_add_to_uses_the_calendar(start: datetime, text: str, expected: datetime) -> None:
    assert parse_xsd_duration(text).add_to(start) == expected


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=3), "PT3H"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=2, minutes=5), "P2DT5M"),
        (timedelta(seconds=1, microseconds=500000), "PT1.5S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


def test_format_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100_000)))
def test_format_then_parse_round_trips(delta: timedelta) -> None:
    assert parse_duration(format_duration(delta)) == delta


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_value_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert result >= timedelta(0)
