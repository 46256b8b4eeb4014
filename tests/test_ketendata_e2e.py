"""Ketendata from traffic that really went through the adapter: RINIS sends messages over ebMS
to the gemeente endpoint, the gemeente sends one back; the weekly task (as `serve` runs it, on a
fake clock at the Sunday slot) makes the file set with every message, and no BSN or name."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ggk_ebms.clock import FixedClock, SystemClock, UuidIdGenerator
from ggk_ebms.delivery.outbound import queue_stuf
from ggk_ebms.ketendata.schedule import latest_slot, parse_day, parse_time, zone
from ggk_ebms.pipeline.outbound import submit_message
from ggk_ebms.runtime import Runtime
from ggk_ebms.services import ketendata as service
from ggk_ebms.store.messages import NewPart
from ggk_ebms.stuf.envelope import build_di01, parse_envelope
from ggk_ebms.stuf.model import Systeem
from tests.ketendata_support import AGB_A, CLIENTS, NAMES, jw301, jw305, wmo315
from tests.outbound_support import eventually, free_port, make_cpa, side_settings, started, status_of
from tests.test_ketendata import assert_no_personal_data, read

pytestmark = pytest.mark.slow

DI01 = "envelopHeenbericht-ggk_Di01"
TIMEOUT = 90.0


def _di01(payload: bytes, functie: str, zender: str, ontvanger: str) -> bytes:
    return build_di01(
        zender=Systeem(zender, "Zorgsysteem"),
        ontvanger=Systeem(ontvanger, "GGk"),
        functie=functie,
        payload=payload,
        ids=UuidIdGenerator(),
        tijdstip=datetime.now(UTC),
        functie_versie=3,
        functie_subversie=2,
    ).data


async def test_traffic_over_ebms_to_the_weekly_file_set(tmp_path: Path) -> None:
    g_port, r_port = free_port(), free_port()
    cpa_id, cpa = make_cpa(g_port, r_port, version="keten-1")
    gemeente = side_settings(
        "gemeente",
        tmp_path,
        f"sqlite:///{tmp_path / 'g.db'}",
        cpa,
        g_port,
        ketendata_key_file=tmp_path / "secret" / "ketendata.key",
    )
    rinis = side_settings("rinis", tmp_path, f"sqlite:///{tmp_path / 'r.db'}", cpa, r_port)
    incoming = [
        ("JW305", jw305("S-1", CLIENTS[0], "300200")),
        ("WMO315", wmo315("V-1", CLIENTS[1])),
    ]
    async with started(rinis) as counterpart, started(gemeente) as us:
        sent = []
        for functie, payload in incoming:
            sent.append(
                await asyncio.to_thread(
                    submit_message,
                    rinis,
                    counterpart.database,
                    cpa_id=cpa_id,
                    service="ggk:berichtenverkeer:1.0",
                    action=DI01,
                    parts=[
                        NewPart(
                            f"{uuid.uuid4()}@rinis.test",
                            "application/xml",
                            _di01(payload, functie, AGB_A, "0363"),
                        )
                    ],
                    ids=UuidIdGenerator("rinis.test"),
                    clock=SystemClock(),
                )
            )
        outgoing = _di01(jw301("T-1", CLIENTS[0], ["300200"]), "JW301", "0363", AGB_A)
        ours = await asyncio.to_thread(
            queue_stuf,
            gemeente,
            us.database,
            cpa_id=cpa_id,
            stuf=parse_envelope(outgoing),
            data=outgoing,
            gemeentecode="0363",
            ids=UuidIdGenerator("gemeente.test"),
            clock=SystemClock(),
        )
        await eventually(
            lambda: (
                all(status_of(counterpart.database, m.pk) == "Delivered" for m in sent)
                and status_of(us.database, ours.pk) == "Delivered"
            ),
            timeout=TIMEOUT,
            what="all messages Delivered",
        )

        # The weekly task as serve runs it, on a clock at the next Sunday 06:00 slot.
        now = datetime.now(UTC)
        slot = latest_slot(
            now + timedelta(days=7),
            weekday=parse_day("sunday"),
            at=parse_time("06:00"),
            tz=zone("Europe/Amsterdam"),
        )
        task = asyncio.create_task(
            service.ketendata_task(gemeente, clock=FixedClock(slot), interval=0.05)(
                Runtime.build(gemeente, us.database)
            )
        )
        ctx = service.KetendataContext(gemeente, us.database, FixedClock(slot))
        try:
            exports = await eventually(
                lambda: [e for e in service.list_exports(ctx) if e.kind == "weekly" and e.messages] or None,
                timeout=TIMEOUT,
                what="the weekly export",
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        (export,) = exports
        assert export.messages == 3 and export.period_until == slot
        files = {
            f.filename: f.data or b""
            for f in service.fetch_files(ctx, [f.pk for f in service.list_files(ctx)])
        }
    assert {"JW301.csv", "JW305.csv", "WMO315.csv", "JW305_StartProduct.csv"} <= set(files)
    assert read(files, "JW305.csv")[0]["Richting"] == "ontvangen"
    assert read(files, "JW301.csv")[0]["Richting"] == "verzonden"
    assert read(files, "JW305.csv")[0]["Client_Bsn"] == read(files, "JW301.csv")[0]["Client_Bsn"]
    assert_no_personal_data(files)
    assert not any(name in b"".join(files.values()).decode() for name in NAMES)
