"""Every xsd:dateTime parse yields a value or the documented refusal (ValueError), never a crash.

Out-of-range values that once raised OverflowError: a 24:00:00 on the last day of year 9999, an
offset that moves year 1 before the start of the calendar, and a year of 60 digits.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ggk_ebms.clock import parse_xsd_datetime
from ggk_ebms.cpa.parse import parse_datetime
from ggk_ebms.ebms.parse import parse_xsd_datetime as ebms_parse

OUT_OF_RANGE = [
    "9999-12-31T24:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "1" * 60 + "-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_out_of_range_values_are_refused_with_value_error(text: str) -> None:
    for parse in (parse_xsd_datetime, ebms_parse, parse_datetime):
        with pytest.raises(ValueError, match=r"range|longer than"):
            parse(text)


def test_edges_that_fit_are_accepted() -> None:
    assert parse_xsd_datetime("9999-12-31T23:59:59Z") == (
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        True,
    )
    assert parse_xsd_datetime("0001-01-01T00:00:00-14:00")[0] == datetime(1, 1, 1, 14, tzinfo=UTC)
    assert parse_xsd_datetime("2026-12-31T24:00:00")[0] == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_xsd_datetime("2026-12-31T24:00:00")[1] is False


def test_overlong_input_is_refused_before_matching() -> None:
    with pytest.raises(ValueError, match="longer than"):
        parse_xsd_datetime("2026-01-01T00:00:00." + "0" * 100 + "Z")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gives_a_value_or_value_error(text: str) -> None:
    try:
        value, _ = parse_xsd_datetime(text)
    except ValueError:
        return
    assert value.tzinfo is UTC


_digits = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")


@settings(max_examples=400, deadline=None)
@given(
    year=st.one_of(
        st.integers(0, 99999).map(lambda n: f"{n:04d}"), st.text("0123456789", min_size=5, max_size=70)
    ),
    month=_digits,
    day=_digits,
    hour=_digits,
    minute=_digits,
    second=_digits,
    zone=st.one_of(
        st.just(""),
        st.just("Z"),
        st.tuples(st.sampled_from("+-"), _digits, _digits).map(lambda t: f"{t[0]}{t[1]}:{t[2]}"),
    ),
)
def test_well_shaped_values_give_a_value_or_value_error(
    year: str, month: str, day: str, hour: str, minute: str, second: str, zone: str
) -> None:
    text = f"{year}-{month}-{day}T{hour}:{minute}:{second}{zone}"
    for parse in (parse_xsd_datetime, ebms_parse):
        try:
            value, zoned = parse(text)
        except ValueError:
            continue
        assert value.tzinfo is UTC
        assert zoned == bool(zone)


@pytest.mark.parametrize("stamp", ["99991231246060999", "00010101000000000", "1" * 60])
def test_stuf_tijdstip_bericht_is_text_or_a_stuf_refusal(stamp: str) -> None:
    """StUF keeps tijdstipBericht as the digits it got (never a datetime, so nothing overflows);
    more than 17 digits is StUF055 (not schema-conform)."""
    from ggk_ebms.errors import StufError
    from ggk_ebms.stuf.envelope import parse_envelope
    from tests.test_stuf_envelope import _di01

    original = _di01().decode()
    start = original.index("<StUF:tijdstipBericht>") + len("<StUF:tijdstipBericht>")
    end = original.index("</StUF:tijdstipBericht>")
    data = (original[:start] + stamp + original[end:]).encode()
    if len(stamp) > 17:
        with pytest.raises(StufError) as caught:
            parse_envelope(data)
        assert caught.value.code == "StUF055"
    else:
        assert parse_envelope(data).stuurgegevens.tijdstip_bericht == stamp
