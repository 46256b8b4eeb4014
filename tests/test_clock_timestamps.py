"""``format_timestamp``: the xsd:dateTime we write in every ebMS header and Acknowledgment
(ebMS 2.0 §3.1.6.2, in UTC with a ``Z``, milliseconds cut off, not rounded), whatever the
zone of the datetime it is given; and ``parse_xsd_datetime`` reads it back to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ggk_ebms.clock import format_timestamp, parse_xsd_datetime

_ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
)
_MOMENTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES)


def _spelled_out(moment: datetime) -> str:
    """The same value written field by field: an independent statement of the format."""
    u = moment if moment.tzinfo is None else moment.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


@given(_MOMENTS)
def test_a_timestamp_is_utc_with_a_z_and_milliseconds_cut_off(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert text == _spelled_out(moment)
    parsed, zoned = parse_xsd_datetime(text)
    assert zoned
    as_utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    assert parsed == as_utc.replace(microsecond=as_utc.microsecond // 1000 * 1000)


def test_examples() -> None:
    assert format_timestamp(datetime(2026, 12, 6, 16, 5, 3, 123999, tzinfo=UTC)) == "2026-12-06T16:05:03.123Z"
    assert format_timestamp(datetime(2026, 12, 6, 16, 5, 3)) == "2026-12-06T16:05:03.000Z"  # naive is UTC
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 1, 1, 1, 0, tzinfo=plus_two)) == "2025-12-31T23:00:00.000Z"
    assert format_timestamp(datetime(999, 5, 5, 1, 1, 1, 1000, tzinfo=UTC)) == "0999-05-05T01:01:01.001Z"
