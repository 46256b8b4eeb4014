"""The target parsers of ggk_ebms/xml.py are made once per thread and reused: every parse still
reads its own document only, a refused or broken document leaves nothing behind for the next
one, a caller keeps the sinks of its own parse, and threads never share a parser."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest
from lxml import etree

from ggk_ebms import xml
from ggk_ebms.errors import UnsafeXmlError, XmlError
from ggk_ebms.xml import parse_outline, parse_streaming_text

MAX = 1 << 20


def document(n: int) -> bytes:
    return (
        f'<r xmlns="urn:t"><Header><Id>{n}</Id></Header>'
        f"<Body><Deep><Id>{n * 7}</Id></Deep><Text>{'x' * (n % 13)}</Text></Body></r>"
    ).encode()


def outline(data: bytes, **kw: Any) -> bytes:
    root = parse_outline(
        data,
        max_bytes=MAX,
        keep=lambda tag: tag.endswith("}Header"),
        pick=lambda tag: tag.endswith("}Id"),
        **kw,
    )
    return etree.tostring(root)


class Collect:
    def __init__(self) -> None:
        self.text = ""

    def feed(self, text: str) -> None:
        self.text += text


def streamed(data: bytes) -> tuple[bytes, list[str]]:
    root, sinks = parse_streaming_text(
        data, max_bytes=MAX, sink_for=lambda tag: Collect() if tag.endswith("}Text") else None
    )
    return etree.tostring(root), [sink.text for sink in sinks.values() if isinstance(sink, Collect)]


def in_thread(work: Any) -> Any:
    """``work()`` in a new thread (its own parsers); its result or its exception."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(_catch(work)))
    thread.start()
    thread.join(30)
    [result] = out
    if isinstance(result, BaseException):
        raise result
    return result


def _catch(work: Any) -> Any:
    try:
        return work()
    except BaseException as exc:  # handed back to the test's thread
        return exc


def test_a_thread_makes_one_parser_per_target_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    real = xml._new_parser

    def counting(**kw: Any) -> etree.XMLParser:
        made.append(kw.get("target"))
        return real(**kw)

    monkeypatch.setattr(xml, "_new_parser", counting)

    def many() -> None:
        for n in range(25):
            outline(document(n))
            streamed(document(n))

    in_thread(many)
    assert len(made) == 2 and {type(t).__name__ for t in made} == {"_OutlineTarget", "_DivertingTarget"}


def test_after_a_refusal_or_a_broken_document_the_next_parse_reads_its_own() -> None:
    def sequence() -> list[bytes]:
        first = outline(document(1))
        with pytest.raises(UnsafeXmlError):
            outline(document(2), max_depth=2)
        with pytest.raises(XmlError):
            outline(b"<r><Header></r>")
        with pytest.raises(UnsafeXmlError):
            streamed(b'<!DOCTYPE r [<!ENTITY e "e">]><r>&e;</r>')
        with pytest.raises(XmlError):
            streamed(b"<r><Text>open")
        return [first, outline(document(3)), streamed(document(4))[0]]

    first, third, fourth = in_thread(sequence)
    assert first == outline(document(1)) and b"<Id>1</Id>" in first
    assert third == outline(document(3)) and b">3<" in third and b">2<" not in third
    assert fourth == streamed(document(4))[0]


def test_each_caller_keeps_the_sinks_of_its_own_parse() -> None:
    def two() -> tuple[list[str], list[str]]:
        _, first = streamed(document(5))
        _, second = streamed(document(6))
        return first, second

    first, second = in_thread(two)
    assert first == ["x" * 5] and second == ["x" * 6]


def test_threads_parse_side_by_side_each_its_own_documents() -> None:
    expected = {n: (outline(document(n)), streamed(document(n))) for n in range(40)}
    failures: list[str] = []

    def reader(offset: int) -> None:
        for round_ in range(20):
            for n in range(offset, 40, 4):
                if (outline(document(n)), streamed(document(n))) != expected[n]:
                    failures.append(f"thread {offset}, round {round_}, document {n}")

    threads = [threading.Thread(target=reader, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []


def test_an_idle_target_keeps_nothing_of_the_last_parse() -> None:
    """The sinks (a decoded payload, or its temporary file) live as long as the caller keeps
    them, not until the thread's next parse."""

    def parse_and_drop() -> None:
        _, sinks = parse_streaming_text(
            document(9), max_bytes=MAX, sink_for=lambda tag: Collect() if tag.endswith("}Text") else None
        )
        [sink] = sinks.values()
        assert isinstance(sink, Collect)
        kept = weakref.ref(sink)
        del sinks, sink
        gc.collect()  # the thread, and its idle parser and target, still live
        assert kept() is None

    in_thread(parse_and_drop)
