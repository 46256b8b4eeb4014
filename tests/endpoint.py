"""Start a real endpoint (TLS on loopback, real database) inside a test's event loop."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ggk_ebms.config import DEV_GEMEENTE_OIN, DEV_RINIS_OIN, Settings
from ggk_ebms.cpa.create import AgreementRequest, PartyRequest, create_agreement
from ggk_ebms.cpa.model import Profile
from ggk_ebms.server.autoimport import import_cpa_dir
from ggk_ebms.server.run import Endpoint, start_endpoint

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV = PROJECT_ROOT / "certs" / "dev"
GEMEENTE = DEV_GEMEENTE_OIN
RINIS = DEV_RINIS_OIN
SERVICE = "ggk:berichtenverkeer:1.0"
ACTION = "envelopHeenbericht-ggk_Di01"
CPA_RM = "ggk-berichtenverkeer-1-0_00000099000003630000_00000099000001000000_osb-rm-1"


def party_settings(party: str, tmp: Path, db_url: str, cpa_dir: Path, **changes: Any) -> Settings:
    certs = DEV / party
    values: dict[str, Any] = {
        "party_ids": [GEMEENTE if party == "gemeente" else RINIS],
        "data_dir": tmp / party,
        "database_url": db_url,
        "cpa_dir": cpa_dir,
        "host": "127.0.0.1",
        "port": 0,
        "tls_server_cert": certs / "server.pem",
        "tls_server_key": certs / "server-key.pem",
        "tls_client_cert": certs / "client.pem",
        "tls_client_key": certs / "client-key.pem",
        "tls_trust_store": DEV / "ca.pem",
        "signing_key": certs / "client-key.pem",
        "encryption_key": certs / "client-key.pem",
        "worker_enabled": False,
        "routes_file": None,
        "api_port": 0,  # the management API on a free port (docs/api.md)
    }
    values.update(changes)
    return Settings(**values)


def sync_cpa(cpa_version: str = "sync-1") -> bytes:
    """An osb-rm dev CPA with syncReplyMode mshSignalsOnly (signals in the HTTP response)."""

    def side(name: str, oin: str, role: str, port: int, party: str) -> PartyRequest:
        return PartyRequest(
            name=name,
            oin=oin,
            role=role,
            endpoint=f"https://localhost:{port}/ebms",
            server_cert_pem=(DEV / party / "server.pem").read_bytes(),
            client_cert_pem=(DEV / party / "client.pem").read_bytes(),
        )

    return create_agreement(
        AgreementRequest(
            profile=Profile.OSB_RM,
            party=side("Gemeente (dev)", GEMEENTE, "Gemeente", 8443, "gemeente"),
            partner=side("RINIS (dev)", RINIS, "GGk", 8444, "rinis"),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2035, 12, 1, tzinfo=UTC),
            sync_reply=True,
            cpa_version=cpa_version,
        )
    )


def cpa_folder(tmp: Path) -> Path:
    folder = tmp / "cpa"
    folder.mkdir(parents=True, exist_ok=True)
    for path in (PROJECT_ROOT / "cpa").glob("*.xml"):
        shutil.copy(path, folder / path.name)
    (folder / "dev-osb-rm-sync.xml").write_bytes(sync_cpa())
    return folder


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Endpoint]:
    def on_database(database: Any) -> None:
        for line in import_cpa_dir(settings, database):
            if "not imported" in line:
                raise AssertionError(line)

    endpoint = await start_endpoint(settings, on_database=on_database)
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def url(endpoint: Endpoint) -> str:
    return f"https://localhost:{endpoint.port}/ebms"
