"""CPA beheer: the GGk portal's CPA request fields kept with the CPA, and activation by Ping Pong.

The portal asks the productbeheerder for profielnaam, OIN (or HRN for an external
dienstverlener), ingangsdatum, einddatum, connectietype (Diginetwerk or Internet), endpoint and
the server and client certificate as PEM; after the CPA is imported, a Ping answered by a Pong
makes the GGk activate it (GGk handleiding: CPA Beheer). ``register_pong`` records that moment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ggk_ebms.cpa.create import AgreementRequest, certificates_from_pem
from ggk_ebms.errors import CpaNotFoundError
from ggk_ebms.services import audit
from ggk_ebms.services.context import NotFoundError, ServiceContext, ServiceError
from ggk_ebms.store.cpa_portal import CpaPortalStore, PortalFields, StoredPortal
from ggk_ebms.store.cpas import CpaRepository, StoredCpa
from ggk_ebms.store.tables import CONNECTIETYPES

__all__ = [
    "CpaOverview",
    "PortalFields",
    "check_request",
    "fields_of_request",
    "list_cpas",
    "register_pong",
    "save_request",
    "show_cpa",
]

_OIN: Final = re.compile(r"[0-9]{20}")
_HRN: Final = re.compile(r"[0-9]{8}")  # KvK handelsregisternummer


@dataclass(frozen=True)
class CpaOverview:
    cpa_id: str
    status: str  # stored CPA status
    start: datetime
    end: datetime
    party_ids: tuple[str, ...]
    profiles: tuple[str, ...]
    actief: bool  # activated after a successful Ping Pong
    geactiveerd_op: datetime | None
    aanvraag: PortalFields  # the portal request fields (empty when never given)


def _overview(stored: StoredCpa, portal: StoredPortal | None) -> CpaOverview:
    fields = PortalFields()
    if portal is not None:
        fields = PortalFields(**{k: getattr(portal, k) for k in PortalFields.__dataclass_fields__})
    return CpaOverview(
        cpa_id=stored.cpa_id,
        status=stored.status,
        start=stored.start,
        end=stored.end,
        party_ids=tuple(stored.party_ids),
        profiles=tuple(stored.profiles),
        actief=portal is not None and portal.geactiveerd_op is not None,
        geactiveerd_op=portal.geactiveerd_op if portal else None,
        aanvraag=fields,
    )


def check_request(fields: PortalFields) -> None:
    """ServiceError (Dutch) when a field breaks the portal's rules; before anything is stored."""
    _check(fields)


def _check(fields: PortalFields) -> None:
    if fields.connectietype is not None and fields.connectietype not in CONNECTIETYPES:
        raise ServiceError(f"connectietype is {' of '.join(CONNECTIETYPES)}, niet {fields.connectietype!r}")
    if fields.oin_of_hrn is not None and not (
        _OIN.fullmatch(fields.oin_of_hrn) or _HRN.fullmatch(fields.oin_of_hrn)
    ):
        raise ServiceError("OIN is 20 cijfers, HRN (KvK-nummer) 8 cijfers")
    if fields.endpoint is not None and not fields.endpoint.startswith("https://"):
        raise ServiceError("het endpoint is een https://-adres")
    if fields.ingangsdatum and fields.einddatum and fields.einddatum <= fields.ingangsdatum:
        raise ServiceError("de einddatum ligt na de ingangsdatum")
    for name in ("server_certificaat", "client_certificaat"):
        pem = getattr(fields, name)
        if pem is None:
            continue
        text = pem.strip()
        if not text.startswith("-----BEGIN CERTIFICATE-----") or not text.endswith(
            "-----END CERTIFICATE-----"
        ):
            raise ServiceError(f"{name}: PEM van -----BEGIN CERTIFICATE----- tot -----END CERTIFICATE-----")
        try:
            x509.load_pem_x509_certificate(text.encode("ascii"))
        except ValueError as exc:
            raise ServiceError(f"{name} is geen leesbaar certificaat: {exc}") from None


def _leaf_pem(pem: bytes, what: str) -> str:
    # The portal asks for one certificate per field; a PEM file with a chain gives its leaf.
    leaf = certificates_from_pem(pem, what)[0]
    return leaf.public_bytes(Encoding.PEM).decode("ascii")


def fields_of_request(request: AgreementRequest, profielnaam: str | None) -> PortalFields:
    """The portal request fields that a created CPA answers (``cpa create``): our side's OIN,
    endpoint, connectietype and certificates, and the agreed ingangsdatum and einddatum."""
    party = request.party
    return PortalFields(
        profielnaam=profielnaam,
        oin_of_hrn=party.oin,
        ingangsdatum=request.start,
        einddatum=request.end,
        connectietype="Internet" if party.connection == "internet" else "Diginetwerk",
        endpoint=party.endpoint,
        server_certificaat=_leaf_pem(party.server_cert_pem, "server certificate"),
        client_certificaat=_leaf_pem(party.client_cert_pem, "client certificate"),
    )


def save_request(ctx: ServiceContext, cpa_id: str, fields: PortalFields) -> CpaOverview:
    """Store (or change) the portal request fields of a stored CPA."""
    _check(fields)
    try:
        CpaPortalStore(ctx.database).save(cpa_id, fields, at=ctx.clock.now())
    except CpaNotFoundError:
        raise NotFoundError(f"geen CPA {cpa_id}") from None
    given = ", ".join(k for k in PortalFields.__dataclass_fields__ if getattr(fields, k) is not None)
    audit.record(ctx, "cpa-portal", cpa_id, f"velden: {given}")
    return show_cpa(ctx, cpa_id)


def register_pong(ctx: ServiceContext, cpa_id: str) -> CpaOverview:
    """A Ping under this CPA was answered by a Pong: the CPA is actief from now (first time only)."""
    store = CpaPortalStore(ctx.database)
    current = store.get(cpa_id)
    if current is None or current.geactiveerd_op is None:
        try:
            store.activate(cpa_id, at=ctx.clock.now())
        except CpaNotFoundError:
            raise NotFoundError(f"geen CPA {cpa_id}") from None
        audit.record(ctx, "cpa-activate", cpa_id, "Ping Pong geslaagd")
    return show_cpa(ctx, cpa_id)


def show_cpa(ctx: ServiceContext, cpa_id: str) -> CpaOverview:
    stored = CpaRepository(ctx.database).find(cpa_id)
    if stored is None:
        raise NotFoundError(f"geen CPA {cpa_id}")
    return _overview(stored, CpaPortalStore(ctx.database).get(cpa_id))


def list_cpas(ctx: ServiceContext) -> tuple[CpaOverview, ...]:
    portals = CpaPortalStore(ctx.database).all()
    return tuple(_overview(s, portals.get(s.cpa_id)) for s in CpaRepository(ctx.database).list())
