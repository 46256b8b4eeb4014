"""The ebMS ``URI=""`` Reference and SignedInfo in canonical form, without an XPath engine.

ebMS 2.0 §4.1.3 signs the envelope through three transforms: enveloped-signature, the XPath filter
``not(ancestor-or-self::node()[@SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"] |
ancestor-or-self::node()[@SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"])`` and C14N.
libxmlsec evaluates that filter once per node of the document (XMLDSig §6.6.3: every node of the
input, attributes and namespace nodes included, is a context node), which is most of the cost of a
verification. This module computes the same octets with one walk of the tree.

Why removing subtrees from a copy and canonicalising the rest gives exactly the octets libxmlsec
digests (the argument is written out in docs/signing.md "Fast signature check"):

- ``URI=""`` is the whole document without comment nodes (XMLDSig §4.3.3.3); C14N without
  comments (C14N 1.0 §2.1) drops the same comment nodes, so they need no removal.
- enveloped-signature (XMLDSig §6.6.4) removes the ``ds:Signature`` element with all its
  descendants, attributes and namespace nodes: a whole subtree.
- the filter keeps a node unless the node itself or one of its ancestors is an element with a
  ``SOAP:actor`` attribute (SOAP 1.1 envelope namespace, XPath 1.0 string equality, so the exact
  attribute value) equal to one of the two URIs. Attribute and namespace nodes have their element
  as parent (XPath 1.0 §5.3, §5.4) and carry no attributes themselves, so they go exactly when
  their element goes; text, processing instructions and comments go with their ancestor element.
  The root node has no attributes and always stays. What is removed is therefore again a union of
  whole element subtrees, never a node inside an element that stays.
- every element that stays has all its ancestors in the node set, so C14N (inclusive or exclusive)
  renders it, its namespace declarations and attributes exactly as in the whole document: the
  document-subset rules (C14N 1.0 §2.4 xml:* inheritance, namespace rendering relative to the
  nearest output ancestor) only differ where an ancestor is missing. Removing an element joins the
  text before and after it; C14N writes adjacent text nodes one after the other, so the octets are
  the same.

The canonical SignedInfo is libxml2's C14N of that subtree written out on its own, which puts every
namespace in scope on the apex and keeps each element's prefix, with the ``xml:*`` attributes
inclusive C14N 1.0 inherits onto the apex of a subset added to it.

Pure: elements in, octets out; nothing here reads a file, a key or the network (SignedInfo is
read back through the hardened ``ggk_ebms.xml.parse``).
"""

from __future__ import annotations

import copy
from typing import Final

from lxml import etree

from ggk_ebms.ns import ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT, SOAP_ENV, XML
from ggk_ebms.xml import parse

__all__ = ["EXCLUDING_ACTORS", "envelope_octets", "signed_info_octets"]

EXCLUDING_ACTORS: Final = frozenset({ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT})
_ACTOR: Final = f"{{{SOAP_ENV}}}actor"
_XML_ATTRIBUTE: Final = f"{{{XML}}}"


def envelope_octets(root: etree._Element, signature: etree._Element, *, exclusive: bool) -> bytes | None:
    """The C14N octets of ``root``'s document after enveloped-signature and the ebMS actor filter.

    ``signature`` is the one ``ds:Signature`` of that document (enveloped-signature removes it).
    None when the document element itself is filtered out (the node set is then the root node
    and the prolog alone, which this construction cannot express): the caller verifies with libxmlsec.
    """
    if root.get(_ACTOR) in EXCLUDING_ACTORS:
        return None
    path = _index_path(root, signature)
    tree = copy.deepcopy(root.getroottree())
    pruned = tree.getroot()
    doomed = [_follow(pruned, path)]
    doomed += [element for element in pruned.iter(etree.Element) if element.get(_ACTOR) in EXCLUDING_ACTORS]
    for element in doomed:
        _remove_keeping_tail(element)
    return etree.tostring(tree, method="c14n", exclusive=exclusive, with_comments=False)


def signed_info_octets(signed_info: etree._Element, *, exclusive: bool) -> bytes:
    """The C14N octets of ``signed_info`` as a document subset (XMLDSig §4.3.1)."""
    # Serialised on its own, the subtree carries every namespace in scope on its apex (lxml copies
    # the inherited declarations onto it) and keeps each element's prefix; read back, it is a
    # document whose C14N is the subset's. lxml's C14N of the subtree in place is not: with a
    # default namespace declared on an ancestor it writes xmlns="" on the descendants.
    # Without its tail: text after SignedInfo belongs to the Signature, not to the subset.
    standalone = parse(etree.tostring(signed_info, with_tail=False), what="SignedInfo")
    if not exclusive:
        # Inclusive C14N 1.0 §2.4: the apex of a subset also takes the xml:* attributes of its
        # ancestors, the nearest one winning; exclusive C14N does not (Exc-C14N §3).
        ancestor = signed_info.getparent()
        while ancestor is not None:
            for name, value in ancestor.attrib.items():
                if str(name).startswith(_XML_ATTRIBUTE) and standalone.get(name) is None:
                    standalone.set(name, value)
            ancestor = ancestor.getparent()
    return etree.tostring(standalone, method="c14n", exclusive=exclusive, with_comments=False)


def _index_path(root: etree._Element, element: etree._Element) -> list[int]:
    """Child positions from ``root`` down to ``element`` (to find it again in a copy)."""
    path: list[int] = []
    node = element
    while node is not root:
        parent = node.getparent()
        if parent is None:
            raise ValueError("the element is not inside the document")
        path.append(parent.index(node))
        node = parent
    path.reverse()
    return path


def _follow(root: etree._Element, path: list[int]) -> etree._Element:
    node = root
    for index in path:
        node = node[index]
    return node


def _remove_keeping_tail(element: etree._Element) -> None:
    """Take ``element`` and its subtree out; its tail is text of the parent and stays (lxml moves
    the tail with the element otherwise)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)
