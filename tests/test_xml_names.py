"""``xml.local_name`` and ``xml.namespace_of`` answer what ``etree.QName`` answers, for every element."""

from __future__ import annotations

import pytest
from lxml import etree

from ggk_ebms.errors import XmlError
from ggk_ebms.xml import local_name, namespace_of, parse

_DOCUMENT = b"""<r xmlns:a="urn:a" xmlns:b="http://example.org/b#x">
  <a:x/><y xmlns="urn:default"><z/><b:w b:attr="1"/></y><plain/>
  <a:Bericht-v3.2_x xmlns:c="urn:c"><c:c/></a:Bericht-v3.2_x>
</r>"""


def test_names_agree_with_qname_for_every_element() -> None:
    root = parse(_DOCUMENT)
    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    assert len(elements) == 8
    for element in elements:
        assert local_name(element) == etree.QName(element).localname, element.tag
        assert namespace_of(element) == etree.QName(element).namespace, element.tag
    assert [namespace_of(el) for el in elements[:3]] == [None, "urn:a", "urn:default"]
    (w,) = root.iter("{http://example.org/b#x}w")
    assert (namespace_of(w), local_name(w)) == ("http://example.org/b#x", "w")


def test_a_namespace_uri_cannot_hold_the_brace_the_names_split_on() -> None:
    # Both helpers split the Clark tag at "}"; libxml2 refuses such a URI, so no parsed tag has two.
    with pytest.raises(XmlError, match="not a valid URI"):
        parse(b'<r xmlns="urn:a}b"/>')
