"""Safe logs: escaped and capped partner values, one-line refusals, rate-limited floods."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ggk_ebms import logsafe


def test_escape_makes_control_characters_visible() -> None:
    assert logsafe.escape("id\n2026 INFO forged") == "id\\x0a2026 INFO forged"
    assert logsafe.escape("a\rb\x00c\x7fd\u2028e") == "a\\x0db\\x00c\\x7fd\\u2028e"
    assert logsafe.escape(b"\x01ab") == "\\x01ab"


def test_escape_caps_the_length() -> None:
    text = logsafe.escape("x" * 1000, max_chars=10)
    assert text == "x" * 10 + "...(+990 chars)"


@given(st.text(max_size=500))
def test_escaped_text_is_one_printable_line(value: str) -> None:
    out = logsafe.escape(value, max_chars=100)
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029") for c in out)
    assert len(out) <= 100 * 6 + 30


def test_installed_factory_escapes_every_argument(caplog: pytest.LogCaptureFixture) -> None:
    logsafe.install()
    log = logging.getLogger("ggk_ebms.test")
    with caplog.at_level(logging.INFO):
        log.info("message %s (%s) refused, %d parts", "m1@x\n2026-12-05 INFO forged", "A\r\nB", 3)
    assert caplog.messages == ["message m1@x\\x0a2026-12-05 INFO forged (A\\x0d\\x0aB) refused, 3 parts"]


def test_malformed_http_request_is_one_info_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    logsafe.install()
    log = logging.getLogger("aiohttp.server")
    with caplog.at_level(logging.INFO):
        try:
            raise BadHttpMessage("Invalid header\nvalue")
        except BadHttpMessage:
            log.exception("Error handling request from %s", "127.0.0.1")
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith("refused a malformed HTTP request from 127.0.0.1: 400")


def test_rate_limit_lets_a_burst_through_then_counts() -> None:
    now = [0.0]
    limiter = logsafe.RateLimitFilter(burst=3, window=10.0, monotonic=lambda: now[0])

    def record(arg: str) -> logging.LogRecord:
        return logging.LogRecord("x", logging.WARNING, __file__, 1, "refused %s", (arg,), None)

    passed = [limiter.filter(record(str(n))) for n in range(10)]
    assert passed == [True, True, True] + [False] * 7
    now[0] = 10.0
    last = record("again")
    assert limiter.filter(last)
    assert last.getMessage() == "refused again [7 similar lines suppressed]"
    other = logging.LogRecord("x", logging.WARNING, __file__, 1, "another line", None, None)
    assert limiter.filter(other)
