"""/api/v1/events: business outcomes in the feed (a Fo01 refusal with its code), the
processed filter, and /api/v1/messages paging over the same store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ggk_ebms.store.tables import message, stuf_message
from tests.api_support import call, token
from tests.endpoint import cpa_folder, party_settings, running

pytestmark = pytest.mark.slow

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _received(database, message_id: str, berichtcode: str, fout_code: str | None) -> int:  # type: ignore[no-untyped-def]
    row = {
        "direction": "in", "message_id": message_id, "cpa_id": "cpa-1", "conversation_id": "c",
        "from_party_id": "rinis", "to_party_id": "gemeente", "service": "s", "action": "a",
        "kind": "business", "timestamp": NOW, "status": "Received", "sync_reply": False,
        "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    with database.session() as session:
        pk = session.execute(sa.insert(message).values(**row).returning(message.c.pk)).scalar_one()
        session.execute(
            sa.insert(stuf_message).values(
                message_pk=pk,
                direction="in",
                berichtcode=berichtcode,
                berichttype="WMO301",
                referentienummer=f"ref-{pk}",
                cross_refnummer="heen-1",
                zender="GGK",
                ontvanger="0363",
                cross_ref_unknown=False,
                fout_code=fout_code,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    return int(pk)


async def test_events_feed_carries_stuf_outcomes(tmp_path: Path, db_url: str) -> None:
    settings = party_settings("gemeente", tmp_path, db_url, cpa_folder(tmp_path))
    async with running(settings) as endpoint:
        _received(endpoint.database, "fo01@test", "Fo01", "StUF055")
        _received(endpoint.database, "di01@test", "Di01", None)
        app = token(endpoint, "app", "read", "send")
        status, _, body = await call(endpoint, "GET", "/api/v1/events?type=RECEIVED", app)
        assert status == 200, body
        page = json.loads(body)
        by_id = {e["message_id"]: e for e in page["items"]}
        assert by_id["fo01@test"]["stuf"] == {
            "berichtcode": "Fo01",
            "berichttype": "WMO301",
            "fout_code": "StUF055",
            "cross_refnummer": "heen-1",
        }
        assert by_id["di01@test"]["stuf"]["berichtcode"] == "Di01" and not by_id["di01@test"]["processed"]
        status, _, _ = await call(endpoint, "PATCH", "/service/rest/v19/ebms/events/fo01@test", app)
        assert status == 204
        status, _, body = await call(endpoint, "GET", "/api/v1/events?unprocessed=true", app)
        assert [e["message_id"] for e in json.loads(body)["items"]] == ["di01@test"]
        status, _, body = await call(
            endpoint, "GET", "/service/rest/v19/ebms/events/unprocessed?eventTypes=RECEIVED", app
        )
        assert json.loads(body) == [{"messageId": "di01@test", "type": "RECEIVED"}]
        status, _, body = await call(
            endpoint, "GET", "/service/rest/v19/ebms/messages/unprocessed?cpaId=cpa-1", app
        )
        assert sorted(json.loads(body)) == ["di01@test", "fo01@test"]
        status, _, body = await call(endpoint, "GET", "/api/v1/messages?direction=in&limit=1", app)
        page = json.loads(body)
        assert (
            page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["message_id"] == "di01@test"
        )
        status, _, body = await call(endpoint, "GET", f"/api/v1/messages/{page['items'][0]['pk']}", app)
        assert status == 200 and json.loads(body)["parts"] == []
