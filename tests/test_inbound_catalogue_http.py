"""The negative-case catalogue (docs/ebms.md catalogue) over real HTTPS against `serve`-equivalent endpoint.

The reference templates (../shared/interop/ebms-core/soap-templates) are filled in for our dev
osb-rm CPA with syncReplyMode mshSignalsOnly, so each MessageError comes back in the HTTP 200,
as in the reference adapter's integration test. Each case asserts the exact code, location and
description, and that the refused message is stored as Failed with its error code.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from ebms_support import TemplateValues, render_template
from ggk_ebms.store.messages import MessageStore
from test_ebms_catalogue import ERROR_CASES
from tests import peer
from tests.endpoint import ACTION, GEMEENTE, RINIS, SERVICE, cpa_folder, party_settings, running, url

pytestmark = pytest.mark.shared

EB = "{http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd}"
CPA_SYNC = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_sync-1"


def _dev_values(change: dict[str, object]) -> TemplateValues:
    now = datetime.now(UTC)
    base = TemplateValues(
        cpa_id=CPA_SYNC,
        from_party_id=RINIS,
        to_party_id=GEMEENTE,
        from_role="GGk",
        to_role="Gemeente",
        service=SERVICE,
        action=ACTION,
        timestamp=now,
        time_to_live=now + timedelta(hours=1),
    )
    return replace(base, **change)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return party_settings("gemeente", tmp_path, f"sqlite:///{tmp_path / 'cat.db'}", cpa_folder(tmp_path))


async def test_catalogue_over_https(settings) -> None:  # type: ignore[no-untyped-def]
    """All MessageError rows in one endpoint run (starting a server per row would be slow)."""
    failures = []
    async with running(settings) as endpoint:
        for rule, case in ERROR_CASES.items():
            change = dict(case.change)
            if "time_to_live" in change:
                change["time_to_live"] = datetime.now(UTC) - timedelta(minutes=5)
            values = _dev_values(change)
            values.uuid = f"catalogue-{rule}"
            soap = render_template(case.template, values)
            if case.attachments:
                ctype, body = peer.multipart(
                    soap, [(cid, "application/xml", b"<p/>") for cid in case.attachments]
                )
            else:
                ctype, body = "text/xml; charset=UTF-8", soap
            answer = await peer.post(url(endpoint), body, content_type=ctype)
            if answer.status != 200:
                failures.append(f"{rule}: HTTP {answer.status} {answer.text[:300]}")
                continue
            error = etree.fromstring(answer.body).find(f".//{EB}ErrorList/{EB}Error")
            if error is None:
                failures.append(f"{rule}: no eb:Error in {answer.text[:300]}")
                continue
            got = (
                error.get(f"{EB}errorCode"),
                error.get(f"{EB}location"),
                error.findtext(f"{EB}Description"),
            )
            want = (str(case.code), case.location, case.description)
            if got != want:
                failures.append(f"{rule}: got {got}, want {want}")
        store = MessageStore(endpoint.database)
        failed = store.list(direction="in", status="Failed", limit=1000)
    assert not failures, "\n".join(failures)
    assert len(failed) == len(ERROR_CASES)
    assert all(m.error_code for m in failed)
