"""The CPA Beheer tab: the CPAs with validity and activation, download, upload and validate, the
GGk portal's request form that creates a CPA, and Ping Pong (stuf-ggk: a CPA is actief after a
Ping answered by a Pong)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from ggk_ebms.api import actions
from ggk_ebms.console import exports
from ggk_ebms.console.rights import may_manage_product
from ggk_ebms.console.tab_support import Page, ProductTab, day
from ggk_ebms.console.web import CTX_KEY, Who, in_thread, render
from ggk_ebms.cpa.create import AgreementRequest, Connection, PartyRequest, create_agreement
from ggk_ebms.errors import GgkEbmsError
from ggk_ebms.services import audit, cpa_beheer
from ggk_ebms.services.context import ServiceContext, ServiceError
from ggk_ebms.store.cpas import CpaRepository

WARN_BEFORE = timedelta(days=60)  # the dashboard warns as early


def add_routes(app: web.Application, page: Callable[[Page], Any], tab: ProductTab, p: str) -> None:
    @page
    async def cpa_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        tab.whole_installation(who)
        cpas = await in_thread(cpa_beheer.list_cpas, sctx)
        now = sctx.clock.now()
        return render(
            request, "cpa.html", who, product=product, tab="cpa", cpas=cpas, now=now,
            warn_before=now + WARN_BEFORE, findings=None, ping=None,
            may_edit=may_manage_product(who.session.user.role),
        )  # fmt: skip

    @page
    async def cpa_download(request: web.Request, who: Who) -> web.StreamResponse:
        _, _, sctx = tab.product(request, who)
        tab.whole_installation(who)
        cpa_id = request.match_info["cpa_id"]
        stored = await in_thread(CpaRepository(sctx.database).find, cpa_id)
        if stored is None:
            raise web.HTTPNotFound()
        return exports.download(stored.raw, f"{cpa_id}.xml", "application/xml")

    async def _cpa_result(
        request: web.Request, who: Who, product: str, sctx: ServiceContext, **extra: Any
    ) -> web.StreamResponse:
        cpas = await in_thread(cpa_beheer.list_cpas, sctx)
        now = sctx.clock.now()
        values: dict[str, Any] = {"findings": None, "ping": None, **extra}
        return render(
            request, "cpa.html", who, product=product, tab="cpa", cpas=cpas, now=now,
            warn_before=now + WARN_BEFORE, may_edit=True, **values,
        )  # fmt: skip

    @page
    async def cpa_upload(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        tab.manager(who)
        form = await request.post()
        upload = form.get("cpa")
        limit = request.app[CTX_KEY].settings.max_cpa_bytes
        raw = upload.file.read(limit + 1) if isinstance(upload, FileField) else b""
        if len(raw) > limit:
            raise ServiceError(f"een CPA is hoogstens {limit} bytes")
        if not raw:
            raise ServiceError("kies een CPA-bestand")
        ctx = request.app[CTX_KEY]
        validation = await in_thread(actions.validate, ctx, raw)
        imported = None
        if validation.ok and validation.agreement is not None and form.get("importeren") == "ja":
            agreement = await in_thread(functools.partial(actions.insert_cpa, ctx, raw, overwrite=False))
            imported = agreement.cpa_id
        return await _cpa_result(request, who, product, sctx, findings=validation, imported=imported)

    @page
    async def cpa_create(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        tab.manager(who)
        form = await request.post()
        ctx = request.app[CTX_KEY]

        def text(key: str) -> str:
            value = form.get(key)
            return value.strip() if isinstance(value, str) else ""

        raw, fields = await in_thread(_create_cpa, ctx.settings, text)
        try:
            agreement = await in_thread(functools.partial(actions.insert_cpa, ctx, raw, overwrite=False))
        except actions.InvalidCpa as exc:
            return await _cpa_result(request, who, product, sctx, findings=exc.validation)
        await in_thread(cpa_beheer.save_request, sctx, agreement.cpa_id, fields)
        return await _cpa_result(request, who, product, sctx, imported=agreement.cpa_id)

    @page
    async def cpa_ping(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        tab.manager(who)
        cpa_id = request.match_info["cpa_id"]
        ctx = request.app[CTX_KEY]
        try:
            result = await actions.ping_cpa(ctx, cpa_id)
        except GgkEbmsError as exc:
            raise ServiceError(f"Ping onder {cpa_id} kan niet: {exc}") from None
        if result.ok:
            await in_thread(cpa_beheer.register_pong, sctx, cpa_id)
        await in_thread(
            audit.record, sctx, "cpa-ping", cpa_id, "Pong" if result.ok else result.diagnosis.summary
        )
        return await _cpa_result(request, who, product, sctx, ping=(cpa_id, result))

    r = app.router
    r.add_get(p + "/cpa", cpa_page)
    r.add_post(p + "/cpa/upload", cpa_upload)
    r.add_post(p + "/cpa/aanvraag", cpa_create)
    r.add_get(p + "/cpa/{cpa_id}/download", cpa_download)
    r.add_post(p + "/cpa/{cpa_id}/ping", cpa_ping)


def _create_cpa(settings: Any, text: Callable[[str], str]) -> tuple[bytes, cpa_beheer.PortalFields]:
    """The portal's request form: the partner's fields from the form, ours from the settings."""
    start = day(text("ingangsdatum")) or datetime.now(UTC).replace(microsecond=0)
    end = day(text("einddatum"))
    if end is None:
        raise ServiceError("vul de einddatum in")
    connectie: Connection = "internet" if text("connectietype") == "Internet" else "diginetwerk"
    server_pem = text("server_certificaat")
    client_pem = text("client_certificaat")
    try:
        ours = PartyRequest(
            name=text("eigen_profielnaam") or "Gemeente",
            oin=settings.party_ids[0],
            endpoint=text("eigen_endpoint"),
            server_cert_pem=Path(settings.tls_server_cert).read_bytes(),
            client_cert_pem=Path(settings.tls_client_cert).read_bytes(),
            role="Gemeente",
            connection=connectie,
        )
        theirs = PartyRequest(
            name=text("profielnaam"),
            oin=text("oin_of_hrn"),
            endpoint=text("endpoint"),
            server_cert_pem=server_pem.encode("ascii", "replace"),
            client_cert_pem=client_pem.encode("ascii", "replace"),
            role="GGk",
            connection=connectie,
        )
        raw = create_agreement(AgreementRequest(party=ours, partner=theirs, start=start, end=end))
    except (GgkEbmsError, OSError, ValueError) as exc:
        raise ServiceError(f"de CPA kan niet worden gemaakt: {exc}") from None
    fields = cpa_beheer.PortalFields(
        profielnaam=text("profielnaam") or None,
        oin_of_hrn=text("oin_of_hrn") or None,
        ingangsdatum=start,
        einddatum=end,
        connectietype="Internet" if connectie == "internet" else "Diginetwerk",
        endpoint=text("endpoint") or None,
        server_certificaat=server_pem or None,
        client_certificaat=client_pem or None,
    )
    return raw, fields
