"""Log output: readable text (the default) or one JSON object per line for log shippers.

A JSON line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (the rendered
message) and, when the log call gave them, ``MessageId``, ``CPAId``, ``gemeentecode`` and
``berichttype`` (ebMS 2.0 §3.1.6 MessageId and §3.1.2 CPAId; StUF-GGk routing keys). Callers
attach those with ``extra=log_fields(...)``. Nothing else from the record is copied: log records
can carry arbitrary objects, and a shipper must never receive personal data. As a last line of
defence any nine-digit number passing the BSN eleven-test is masked in the event text.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Final

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Record attribute -> JSON key. The record attributes are what ``log_fields`` sets.
_FIELDS: Final = (
    ("ggk_message_id", "MessageId"),
    ("ggk_cpa_id", "CPAId"),
    ("ggk_gemeentecode", "gemeentecode"),
    ("ggk_berichttype", "berichttype"),
)
_NINE_DIGITS = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")
BSN_MASK: Final = "[bsn]"


def log_fields(
    *,
    message_id: str | None = None,
    cpa_id: str | None = None,
    gemeentecode: str | None = None,
    berichttype: str | None = None,
) -> dict[str, str]:
    """``extra=`` for a log call about one message: the fields a JSON line carries separately."""
    values = {
        "ggk_message_id": message_id,
        "ggk_cpa_id": cpa_id,
        "ggk_gemeentecode": gemeentecode,
        "ggk_berichttype": berichttype,
    }
    return {key: value for key, value in values.items() if value}


def is_bsn(digits: str) -> bool:
    """The BSN eleven-test (elfproef): sum of digit x weight (9..2, last digit -1) divisible by 11."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


def mask_bsns(text: str) -> str:
    return _NINE_DIGITS.sub(lambda m: BSN_MASK if is_bsn(m.group(0)) else m.group(0), text)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line; no traceback text (it may quote data), only the exception type."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": mask_bsns(record.getMessage()),
        }
        for attribute, key in _FIELDS:
            value = getattr(record, attribute, None)
            if value:
                line[key] = str(value)  # identifiers: kept exact so lines correlate
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str, level: str) -> None:
    """Point the root logger's single stderr handler at the chosen format and level."""
    if log_format not in FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    formatter = JsonLineFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(level.upper())
    logging.getLogger("ggk_ebms").setLevel(level.upper())
