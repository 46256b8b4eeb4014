"""The product tabs: Aanleveren, Berichtenlog, Ophalen, Routeren and CPA Beheer.

Every handler first checks that the product in the path is among the user's products, and shows
only the berichttypes of that product (console.rights): what a user may not see is neither in
the pages nor in their exports.
"""

from __future__ import annotations

import dataclasses
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from ggk_ebms.console import cpa_tab, exports
from ggk_ebms.console.masking import as_text, mask_personal
from ggk_ebms.console.rights import may_manage_product, visible_berichttypes
from ggk_ebms.console.tab_support import Page, ProductTab, day, ids, shown, spool, tab_url
from ggk_ebms.console.web import CTX_KEY, Who, in_thread, render
from ggk_ebms.services import aanleveren, bericht, ophalen, routeren
from ggk_ebms.services.berichtenlog import MAX_PAGE, LogFilter, LogRow, berichtenlog
from ggk_ebms.services.context import ServiceContext, ServiceError
from ggk_ebms.store.routes import RouteStore

PAGE_SIZE = 50


def add_routes(app: web.Application, page: Callable[[Page], Any], forbidden: type[Exception]) -> None:
    tab = ProductTab(forbidden)
    p = "/p/{product:[a-z-]+}"

    # --- Aanleveren -----------------------------------------------------------------------------

    def _visible_verslag(
        verslag: aanleveren.Verslag, types: tuple[str, ...], sctx: ServiceContext
    ) -> aanleveren.Verslag:
        # A file whose berichttype could not be read is the uploader's own problem and shown;
        # a file of another product is not. Of another gemeente, a file is shown only to the
        # uploader, whose verslag tells why it was refused ("niet geautoriseerd").
        def shown(f: aanleveren.FileResult) -> bool:
            uploader = verslag.verzender == sctx.actor
            own = uploader or f.gemeentecode is None or sctx.may_act_for(f.gemeentecode)
            return (f.berichttype is None or f.berichttype in types) and own

        keep = tuple(f for f in verslag.bestanden if shown(f))
        fouten = tuple(f for f in verslag.fouten if shown(f))
        return dataclasses.replace(verslag, bestanden=keep, fouten=fouten)

    def _own_batch(who: Who, verslag: aanleveren.Verslag) -> bool:
        # A medewerker sees their own uploads; a beheerder every upload (the files of products
        # they lack are still left out of the verslag). A batch may hold files of several
        # gemeenten, so an account limited to some gemeentecodes sees only its own uploads: a
        # batch's name and counts are not another gemeente's to see (docs/console.md).
        user = who.session.user
        if verslag.verzender == user.username:
            return True
        return may_manage_product(user.role) and user.gemeentecodes is None

    @page
    async def aanleveren_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        found = await in_thread(aanleveren.list_batches, sctx, aanleveren.BatchQuery(limit=200))
        batches = [b for b in found if _own_batch(who, b)][:50]
        template = "batches.html" if request.query.get("fragment") == "1" else "aanleveren.html"
        return render(request, template, who, product=product, tab="aanleveren", batches=batches)

    @page
    async def aanleveren_upload(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        limit = request.app[CTX_KEY].settings.aanlever_max_zip_bytes
        form = await request.post()
        field = form.get("bestand")
        if not isinstance(field, FileField):
            raise ServiceError("kies een ZIP- of XML-bestand")
        name = Path(field.filename or "upload").name[:200]
        with tempfile.TemporaryDirectory(prefix="ggk-console-") as tmp:
            target = Path(tmp) / "upload.bin"
            await in_thread(spool, field.file, target, limit)  # disk work off the event loop
            allowed = frozenset(visible_berichttypes(who.session.user.products))
            upload = aanleveren.Upload(name, target, berichttypes=allowed)
            verslag = await in_thread(aanleveren.aanleveren, sctx, upload)
        url = f"{tab_url(product, 'aanleveren')}/{verslag.batch}"
        if request.headers.get("X-Requested-With") == "fetch":
            return web.json_response({"verslag": url})
        raise web.HTTPSeeOther(url)

    @page
    async def verslag_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, _, sctx = tab.product(request, who)
        batch = int(request.match_info["batch"])
        types = visible_berichttypes(who.session.user.products)
        full = await in_thread(aanleveren.verslag, sctx, batch)
        if not _own_batch(who, full):
            raise tab.forbidden("Deze aanlevering is van een andere gebruiker.")
        verslag = _visible_verslag(full, types, sctx)
        fmt = request.match_info.get("fmt")
        if fmt == "csv":
            return exports.download(exports.verslag_csv(verslag), f"verslag_{batch}.csv", "text/csv")
        if fmt == "pdf":
            data = await in_thread(exports.verslag_pdf, verslag)
            return exports.download(data, f"verslag_{batch}.pdf", "application/pdf")
        return render(request, "verslag.html", who, product=product, tab="aanleveren", v=verslag)

    # --- Berichtenlog ---------------------------------------------------------------------------

    def _log_filter(request: web.Request, types: tuple[str, ...], limit: int, offset: int) -> LogFilter:
        q = request.query
        chosen = q.get("berichttype") or None
        if chosen is not None and chosen not in types:
            raise ServiceError(f"berichttype {chosen} hoort niet bij dit product")
        return LogFilter(
            since=day(q.get("van")),
            until=day(q.get("tot"), end=True),
            berichttype=chosen,
            berichttypes=types,
            gemeentecode=q.get("gemeentecode") or None,
            direction=q.get("richting") or None,
            status=q.get("status") or None,
            referentienummer=q.get("referentienummer") or None,
            limit=limit,
            offset=offset,
        )

    @page
    async def log_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        offset_text = request.query.get("offset", "0")
        offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 9 else 0
        if not types:
            return render(
                request, "berichtenlog.html", who, product=product, tab="berichtenlog", page=None,
                types=types, q=shown(request), PAGE_SIZE=PAGE_SIZE,
            )  # fmt: skip
        result = await in_thread(berichtenlog, sctx, _log_filter(request, types, PAGE_SIZE, offset))
        return render(
            request, "berichtenlog.html", who, product=product, tab="berichtenlog", page=result, types=types,
            q=shown(request), PAGE_SIZE=PAGE_SIZE,
        )  # fmt: skip

    @page
    async def log_csv(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        rows: tuple[LogRow, ...] = ()
        if types:
            rows = (await in_thread(berichtenlog, sctx, _log_filter(request, types, MAX_PAGE, 0))).rows
        return exports.download(exports.log_csv(rows), f"berichtenlog_{product}.csv", "text/csv")

    @page
    async def message_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        detail = await in_thread(bericht.bericht, sctx, int(request.match_info["pk"]), types)
        payload = None
        if detail.payload is not None:
            payload = (
                as_text(detail.payload) if who.session.user.personal_data else mask_personal(detail.payload)
            )
        return render(
            request, "bericht.html", who, product=product, tab="berichtenlog", d=detail, payload=payload,
            masked=not who.session.user.personal_data,
        )  # fmt: skip

    # --- Ophalen --------------------------------------------------------------------------------

    def _visible_items(sctx: ServiceContext, types: tuple[str, ...]) -> tuple[ophalen.OphaalItem, ...]:
        if not types:
            return ()
        items = ophalen.list_items(sctx, ophalen.OphaalQuery(limit=1000))
        return tuple(i for i in items if i.berichttype in types)

    def _own(sctx: ServiceContext, types: tuple[str, ...], ids: list[int]) -> list[int]:
        visible = {i.id for i in _visible_items(sctx, types)}
        if not set(ids) <= visible:
            raise tab.forbidden("Een of meer gekozen berichten horen niet bij dit product.")
        return ids

    @page
    async def ophalen_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        items = await in_thread(_visible_items, sctx, types)
        s = sctx.settings
        return render(
            request, "ophalen.html", who, product=product, tab="ophalen", items=items,
            gelezen_hours=s.mailbox_gelezen_hours, max_days=s.mailbox_max_days,
            removed_days=s.mailbox_removed_log_days,
        )  # fmt: skip

    @page
    async def ophalen_action(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        form = await request.post()
        chosen = await in_thread(_own, sctx, types, ids(form))
        action = request.match_info["action"]
        if action == "download":
            result = await in_thread(ophalen.download, sctx, chosen)
            return exports.download(result.data, result.filename, "application/zip")
        if action == "ongelezen":
            await in_thread(ophalen.unmark, sctx, chosen)
        else:
            await in_thread(ophalen.delete, sctx, chosen)
        raise web.HTTPSeeOther(tab_url(product, "ophalen"))

    # --- Routeren -------------------------------------------------------------------------------

    def _routes(sctx: ServiceContext, types: tuple[str, ...]) -> list[dict[str, Any]]:
        stored = RouteStore(sctx.database, sctx.clock).current()
        if stored is None:
            return []
        routes = tomllib.loads(stored.text).get("route", [])
        shown = []
        for route in routes:
            kinds = route.get("berichttype", "*")
            listed = kinds if isinstance(kinds, list) else [kinds]
            if "*" in listed or any(k in types for k in listed):
                shown.append(route)
        return shown

    @page
    async def routeren_page(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        tab.whole_installation(who)
        routes = await in_thread(_routes, sctx, types)
        return render(
            request, "routeren.html", who, product=product, tab="routeren", routes=routes,
            may_edit=may_manage_product(who.session.user.role),
        )  # fmt: skip

    @page
    async def routeren_save(request: web.Request, who: Who) -> web.StreamResponse:
        product, types, sctx = tab.product(request, who)
        tab.manager(who)
        name = request.match_info["name"]
        if name not in {r.get("name") for r in await in_thread(_routes, sctx, types)}:
            raise tab.forbidden("Deze route hoort niet bij dit product.")
        form = await request.post()

        def field(key: str) -> str | None:
            value = form.get(key)
            return value.strip() or None if isinstance(value, str) else None

        change = routeren.RouteChange(
            name=name,
            gemeentecode=field("gemeentecode"),
            status=field("status"),
            channel=field("channel"),
            stuf_version=field("stuf_version"),
            payload_version=field("payload_version"),
        )
        await in_thread(routeren.set_route, sctx, change)
        raise web.HTTPSeeOther(tab_url(product, "routeren"))

    r = app.router
    r.add_get(p + "/", _redirect)
    r.add_get(p + "/aanleveren", aanleveren_page)
    r.add_post(p + "/aanleveren", aanleveren_upload)
    r.add_get(p + "/aanleveren/{batch:[0-9]{1,12}}", verslag_page)
    r.add_get(p + "/aanleveren/{batch:[0-9]{1,12}}.{fmt:csv|pdf}", verslag_page)
    r.add_get(p + "/berichtenlog", log_page)
    r.add_get(p + "/berichtenlog.csv", log_csv)
    r.add_get(p + "/bericht/{pk:[0-9]{1,12}}", message_page)
    r.add_get(p + "/ophalen", ophalen_page)
    r.add_post(p + "/ophalen/{action:download|ongelezen|verwijderen}", ophalen_action)
    r.add_get(p + "/routeren", routeren_page)
    r.add_post(p + "/routeren/{name}", routeren_save)
    cpa_tab.add_routes(app, page, tab, p)


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(tab_url(request.match_info["product"], "aanleveren"))
