"""The fuzz targets: one function per parser that reads partner-controlled bytes.

Each target feeds the bytes to one entry point and lets only that entry point's documented
refusals pass; anything else (an OverflowError, a RecursionError, an AttributeError...) escapes
and is a finding. Used by ``fuzz/run.py`` (atheris, coverage-guided) and by the hypothesis
properties of tests/test_fuzz_targets.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from ggk_ebms.errors import CpaError, MimeError, SoapFaultError, StufError, XmlError
from ggk_ebms.xml import parse as parse_xml

MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    refusals: tuple[type[BaseException], ...]

    def __call__(self, data: bytes) -> None:
        with contextlib.suppress(*self.refusals):
            self.run(data)


def _mime(data: bytes) -> object:
    from ggk_ebms.mime.related import split_body

    # The first line plays the Content-Type header, the rest the body, so both get mutated.
    head, _, body = data.partition(b"\n")
    return split_body(head.decode("latin-1"), body)


def _xml(data: bytes) -> object:
    return parse_xml(data, max_bytes=MAX_BYTES, what="fuzz input")


def _ebms(data: bytes) -> object:
    from ggk_ebms.ebms.parse import parse_envelope

    return parse_envelope(data, max_bytes=MAX_BYTES)


def _stuf(data: bytes) -> object:
    from ggk_ebms.stuf.envelope import parse_envelope

    return parse_envelope(data, max_bytes=MAX_BYTES)


def _cpa(data: bytes) -> object:
    from ggk_ebms.cpa.parse import parse_agreement

    return parse_agreement(data, max_bytes=MAX_BYTES)


def _datetime(data: bytes) -> object:
    from ggk_ebms.clock import parse_xsd_datetime

    return parse_xsd_datetime(data.decode("utf-8", "replace"))


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("mime", _mime, (MimeError,)),
        Target("xml", _xml, (XmlError,)),
        Target("ebms", _ebms, (XmlError, SoapFaultError)),
        Target("stuf", _stuf, (XmlError, StufError)),
        Target("cpa", _cpa, (XmlError, CpaError)),
        Target("datetime", _datetime, (ValueError,)),
    )
}
