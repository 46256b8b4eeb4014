"""What xmlsec may read by URI: the MIME parts of the message in hand, and nothing else.

libxmlsec resolves a ``ds:Reference`` or ``xenc:CipherReference`` URI through its IO callbacks; by
default those open local files and fetch http/ftp URLs, so a signature naming
``file:///etc/hostname`` would make the endpoint read (and digest) a file of its own host
(docs/signing.md: only cid: references to parts of this message; file:, http: and same-document
tricks are refused, so xmlsec's default resolvers are switched off). Installing this module's resolver removes
the default callbacks for the whole process and registers one set that answers ``cid:<content-id>``
only, and only for the parts the current call put in scope with ``serving``.

Why a resolver at all, rather than digesting the parts ourselves and signing only ``URI=""``:
python-xmlsec always processes every Reference of a SignedInfo, so the cid: References must be
resolvable for xmlsec to sign or verify the signature; resolving them through xmlsec keeps one
implementation of the digest (the verifier also compares the part digests itself first, to name
the failing part in its error).

Thread-safety: the callbacks are process-global, the parts are not. ``serving`` puts the parts in
a ``ContextVar``; xmlsec calls the callbacks synchronously on the thread (and in the context) that
called sign/verify/decrypt, so concurrent calls in other threads or tasks each see their own parts.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import unquote

import xmlsec

_PARTS: ContextVar[Mapping[str, bytes] | None] = ContextVar("ggk_ebms_xmlsec_parts", default=None)
_LOCK = threading.Lock()
_installed = False


def install() -> None:
    """Remove xmlsec's default file/http/ftp resolvers and register the cid: resolver (once)."""
    global _installed
    with _LOCK:
        if _installed:
            return
        xmlsec.cleanup_callbacks()
        xmlsec.register_callbacks(_match, _open, _read, _close)
        _installed = True


@contextmanager
def serving(parts: Mapping[str, bytes]) -> Iterator[None]:
    """Make ``parts`` (Content-ID without ``<>`` -> bytes) resolvable as ``cid:`` for this call."""
    install()
    token = _PARTS.set(parts)
    try:
        yield
    finally:
        _PARTS.reset(token)


def content_id_of(uri: str, parts: Mapping[str, bytes]) -> str | None:
    """The Content-ID in ``parts`` that a ``cid:`` URI names, or None.

    RFC 2392 writes a cid URL as the %-encoded Content-ID; ebMS peers write it raw. An exact match
    wins; otherwise the %-decoded form is tried. Any other scheme names no part.
    """
    if uri[:4].lower() != "cid:" or len(uri) == 4:
        return None
    raw = uri[4:]
    if raw in parts:
        return raw
    decoded = unquote(raw)
    return decoded if decoded in parts else None


def _match(uri: bytes) -> bool:
    parts = _PARTS.get()
    if parts is None:
        return False
    return content_id_of(uri.decode("utf-8", "replace"), parts) is not None


def _open(uri: bytes) -> io.BytesIO:
    parts = _PARTS.get() or {}
    content_id = content_id_of(uri.decode("utf-8", "replace"), parts)
    if content_id is None:  # _match said yes a moment ago; never serve anything else
        raise LookupError("no such MIME part")
    return io.BytesIO(parts[content_id])


def _read(stream: io.BytesIO, buffer: memoryview) -> int:
    return stream.readinto(buffer)


def _close(stream: io.BytesIO) -> None:
    stream.close()
