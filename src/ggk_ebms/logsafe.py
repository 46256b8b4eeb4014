"""Safe logs: partner-controlled values escaped and capped, refusals on one line, floods damped.

A partner decides the text of a MessageId, an Action, a CPAId, a HTTP request line. Written to
the log as is, a ``&#10;`` in a MessageId (XML turns it into a newline) forges a second log line,
and a megabyte-long value floods the disk. So (docs/security.md, "Logs"):

- ``escape`` turns every control character (C0, DEL, C1, the Unicode line and paragraph
  separators) into a visible ``\\xNN``/``\\uNNNN`` escape and caps the length;
- ``install`` puts a log-record factory in place that applies ``escape`` to every argument of
  every record (our own format strings stay as written), and rewrites aiohttp's report of a
  malformed HTTP request (ERROR with a traceback) into one INFO line without one;
- ``RateLimitFilter`` lets a burst of identical lines (same logger, level and format string)
  through and then counts instead of writing, reporting the count with the next line let through.

Pure helpers except ``install``, which changes the process's logging once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

DEFAULT_MAX_CHARS: Final = 300

# C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators that some log viewers
# render as line breaks.
_ESCAPED: Final = frozenset([*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029])
_TABLE: Final = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _ESCAPED}
_PLAIN: Final = (int, float, bool, type(None))


def escape(value: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """``value`` as one printable line of at most about ``max_chars`` characters."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value[: max_chars + 1]).decode("ascii", "backslashreplace")
        total = len(value)
    else:
        text = str(value)
        total = len(text)
    if len(text) > max_chars:
        text = text[:max_chars]
    text = text.translate(_TABLE)
    if total > max_chars:
        text += f"...(+{total - max_chars} chars)"
    return text


def _escape_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(a if isinstance(a, _PLAIN) else escape(a) for a in args)
    if isinstance(args, Mapping):
        return {k: (v if isinstance(v, _PLAIN) else escape(v)) for k, v in args.items()}
    return args


def _is_http_parse_error(exc_info: Any) -> bool:
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return False
    try:
        from aiohttp.http_exceptions import HttpProcessingError
    except ImportError:  # pragma: no cover - aiohttp is a runtime dependency
        return False
    return isinstance(exc_info[1], HttpProcessingError)


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Make every log record of this process safe (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name.startswith("aiohttp.server") and _is_http_parse_error(record.exc_info):
                # A malformed request is the client's problem: one line, no traceback (aiohttp
                # answers it with 400 and closes the connection).
                assert record.exc_info is not None
                reason = record.exc_info[1]
                record.msg, record.args = (
                    "refused a malformed HTTP request from %s: %s",
                    (
                        (record.args[0] if isinstance(record.args, tuple) and record.args else "?"),
                        reason,
                    ),
                )
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.exc_info, record.exc_text = None, None
            record.args = _escape_args(record.args)
            if not record.args and isinstance(record.msg, str):
                record.msg = escape(record.msg, max_chars=4 * DEFAULT_MAX_CHARS)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


class RateLimitFilter(logging.Filter):
    """At most ``burst`` identical lines per ``window`` seconds; the rest counted, then reported.

    "Identical" means the same logger, level and format string (so one line per refused request
    of the same kind), whatever its arguments.
    """

    def __init__(
        self, *, burst: int = 20, window: float = 10.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # key -> [window start, lines in window, suppressed since last report]
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._monotonic()
        with self._lock:
            state = self._seen.get(key)
            if state is None or now - state[0] >= self._window:
                suppressed = int(state[2]) if state is not None else 0
                if len(self._seen) > 10_000:  # bounded memory whatever the variety of lines
                    self._seen.clear()
                self._seen[key] = [now, 1, 0]
            elif state[1] < self._burst:
                state[1] += 1
                suppressed = int(state[2])
                state[2] = 0
            else:
                state[2] += 1
                return False
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar lines suppressed]"
        return True


def install_rate_limit(burst: int = 20, window: float = 10.0) -> None:
    """Put one ``RateLimitFilter`` on each handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RateLimitFilter) for f in handler.filters):
            handler.addFilter(RateLimitFilter(burst=burst, window=window))
