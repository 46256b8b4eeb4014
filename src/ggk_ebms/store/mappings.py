"""URL and certificate mappings (the ebms-core REST v19 ``urlMappings``/``certificateMappings``).

The sender honours both: a URL mapping replaces the endpoint a CPA names for a partner, a
certificate mapping replaces a certificate a CPA names (docs/api.md, "Mappings"). They let an
operator follow a partner's move or certificate renewal before a new CPA is agreed.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from ggk_ebms.clock import Clock, SystemClock
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import CPA_ID_MAX, URL_MAX, certificate_mapping, url_mapping


@dataclass(frozen=True)
class UrlMapping:
    source: str
    destination: str


@dataclass(frozen=True)
class CertificateMapping:
    source: bytes  # DER
    destination: bytes  # DER
    cpa_id: str  # '' for every CPA


def _check_url(value: str, what: str) -> None:
    if not value or len(value) > URL_MAX or not value.startswith(("https://", "http://")):
        raise ValueError(f"{what} must be an http(s) URL of at most {URL_MAX} characters")


class MappingStore:
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    # --- URL mappings -----------------------------------------------------------------------------

    def put_url(self, source: str, destination: str) -> None:
        _check_url(source, "source")
        _check_url(destination, "destination")
        now = self.clock.now()
        with self.db.session() as session:
            updated = session.execute(
                sa.update(url_mapping)
                .where(url_mapping.c.source == source)
                .values(destination=destination, updated_at=now)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.execute(
                    sa.insert(url_mapping).values(source=source, destination=destination, updated_at=now)
                )

    def delete_url(self, source: str) -> bool:
        with self.db.session() as session:
            result = session.execute(sa.delete(url_mapping).where(url_mapping.c.source == source))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def urls(self) -> builtins.list[UrlMapping]:
        with self.db.session() as session:
            rows = session.execute(sa.select(url_mapping).order_by(url_mapping.c.source)).all()
        return [UrlMapping(row.source, row.destination) for row in rows]

    def map_url(self, url: str) -> str:
        """The endpoint to post to for the CPA's ``url``: its mapping, else itself."""
        with self.db.session() as session:
            mapped = session.execute(
                sa.select(url_mapping.c.destination).where(url_mapping.c.source == url)
            ).scalar_one_or_none()
        return mapped or url

    # --- certificate mappings ---------------------------------------------------------------------

    def put_certificate(self, source: bytes, destination: bytes, cpa_id: str = "") -> None:
        if len(cpa_id) > CPA_ID_MAX:
            raise ValueError(f"cpaId is at most {CPA_ID_MAX} characters")
        digest = hashlib.sha256(source).hexdigest()
        now = self.clock.now()
        with self.db.session() as session:
            updated = session.execute(
                sa.update(certificate_mapping)
                .where(certificate_mapping.c.source_sha256 == digest, certificate_mapping.c.cpa_id == cpa_id)
                .values(destination=destination, source=source, updated_at=now)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                session.execute(
                    sa.insert(certificate_mapping).values(
                        cpa_id=cpa_id,
                        source_sha256=digest,
                        source=source,
                        destination=destination,
                        updated_at=now,
                    )
                )

    def delete_certificate(self, source: bytes, cpa_id: str = "") -> bool:
        digest = hashlib.sha256(source).hexdigest()
        with self.db.session() as session:
            result = session.execute(
                sa.delete(certificate_mapping).where(
                    certificate_mapping.c.source_sha256 == digest, certificate_mapping.c.cpa_id == cpa_id
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def certificates(self) -> builtins.list[CertificateMapping]:
        with self.db.session() as session:
            rows = session.execute(sa.select(certificate_mapping).order_by(certificate_mapping.c.pk)).all()
        return [CertificateMapping(row.source, row.destination, row.cpa_id) for row in rows]

    def map_certificate(self, der: bytes, cpa_id: str) -> bytes:
        """The certificate that stands for ``der`` on CPA ``cpa_id``: a mapping for this CPA
        first, then one for every CPA, else ``der`` itself."""
        digest = hashlib.sha256(der).hexdigest()
        with self.db.session() as session:
            rows = session.execute(
                sa.select(certificate_mapping.c.cpa_id, certificate_mapping.c.destination).where(
                    certificate_mapping.c.source_sha256 == digest,
                    certificate_mapping.c.cpa_id.in_([cpa_id, ""]),
                )
            ).all()
        by_cpa = {row.cpa_id: bytes(row.destination) for row in rows}
        return by_cpa.get(cpa_id) or by_cpa.get("") or der

    def apply(self, url: str, server_cert_der: bytes | None, cpa_id: str) -> tuple[str, bytes | None]:
        """Where to post for CPA ``cpa_id`` and which server certificate to expect there, after
        the URL and certificate mappings (the sender and the ping both go through this)."""
        mapped_url = self.map_url(url)
        if server_cert_der is None:
            return mapped_url, None
        return mapped_url, self.map_certificate(server_cert_der, cpa_id)
