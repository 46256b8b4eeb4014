"""Settings: one TOML file plus ``GGK_EBMS_*`` environment overrides, each setting declared once.

Every setting is a field of ``Settings`` with its help text in ``metadata["help"]``; the CLI's
``config show`` and docs/configuration.md are generated from these declarations, so there is no
second list to keep in step. Precedence: built-in default < settings file < environment.

The defaults run the endpoint as the dev gemeente with the dev PKI in ``certs/dev/`` and the dev
CPAs in ``cpa/`` on a SQLite file: test material, never for production (``config check`` says so).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, get_type_hints

from ggk_ebms.errors import ConfigError

ENV_PREFIX: Final = "GGK_EBMS_"
CONFIG_ENV: Final = "GGK_EBMS_CONFIG"
DEFAULT_CONFIG_FILE: Final = "ggk-ebms.toml"

DEV_GEMEENTE_OIN: Final = "00000099000003630000"
# The organisation name in every certificate of the project's test PKI (ggk_ebms.testing.pki):
# production code recognises test material by it without importing the test-only package.
TEST_ORGANIZATION: Final = "ggk-ebms TEST - not for production"
DEV_RINIS_OIN: Final = "00000099000001000000"


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """Declare a setting: its default, its help text, and whether ``config show`` masks it."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, "secret": secret})
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    # --- identity -------------------------------------------------------------------------------
    party_ids: list[str] = setting(
        [DEV_GEMEENTE_OIN],
        "Our own PartyIds (OINs, type urn:osb:oin). Decides which side of a CPA we are.",
    )
    # --- storage --------------------------------------------------------------------------------
    data_dir: Path = setting(Path("var"), "Folder for the SQLite database, mailboxes and other state.")
    database_url: str = setting(
        "",
        "SQLAlchemy URL. Empty: a SQLite file in data_dir. Production: "
        "postgresql+psycopg://user@host:5432/dbname.",
        secret=True,
    )
    auto_migrate: bool = setting(True, "Apply database migrations when the server or worker starts.")
    db_connect_timeout: int = setting(
        2,
        "PostgreSQL: seconds to set up a connection (libpq connect_timeout, at least 2). Together "
        "with db_ping_timeout this bounds how long a request waits on a vanished database.",
    )
    db_ping_timeout: float = setting(
        2.0,
        "PostgreSQL: seconds a pooled connection gets to answer its liveness check before each "
        "use; a silent one is dropped and a new one tried (then 503 if that fails too).",
    )
    db_statement_timeout: float = setting(
        30.0,
        "PostgreSQL: longest statement or commit, in seconds: the server cancels it "
        "(statement_timeout) and our side gives up on a connection that stays silent 1 s longer.",
    )
    db_idle_in_transaction_timeout: float = setting(
        60.0,
        "PostgreSQL: the server ends a session that sits idle inside a transaction this long "
        "(idle_in_transaction_session_timeout), so a stuck client holds no locks.",
    )
    # --- CPAs -----------------------------------------------------------------------------------
    cpa_dir: Path = setting(Path("cpa"), "Folder of CPA files imported at start when cpa_autoimport is on.")
    cpa_autoimport: bool = setting(True, "At start, import CPAs from cpa_dir whose CPAId is not stored yet.")
    cpa_schema: Path | None = setting(
        None,
        "Official CPPA 2.0 XSD (cpp-cpa-2_0.xsd). Empty: the built-in Digikoppeling CPA schema.",
    )
    max_cpa_bytes: int = setting(5 * 1024 * 1024, "Largest CPA file accepted, in bytes.")
    legacy_crypto_cpas: list[str] = setting(
        [],
        "CPAIds whose peer may use legacy XML encryption: RSA v1.5 key transport and 3DES (decrypt "
        "only). ENC003/ENC004 forbid both; only for peers that cannot do better (docs/signing.md).",
    )
    allow_sha1: bool = setting(
        False, "Accept SHA-1 digests/signatures for legacy peers (SIGN001 forbids it; warns when on)."
    )
    routes_file: Path | None = setting(
        Path("dev/routes.toml"),
        "Routing table (TOML) imported at start when no table is stored yet. Later changes: "
        "`ggk-ebms routes import FILE`. The default is the dev table (0363 to var/inbox).",
    )
    retention_days: int = setting(
        60,
        "Received messages in a final state are forgotten after this many days (the GGk portal "
        "keeps its berichtenlog 60 days), never inside a CPA's duplicate window: max((1 + Retries) "
        "x RetryInterval, PersistDuration) + 1 day (ebMS 2.0 §6.5.3). 0: keep everything.",
    )
    # --- server ---------------------------------------------------------------------------------
    host: str = setting("127.0.0.1", "Address the HTTPS server binds to.")
    port: int = setting(8443, "Port of the HTTPS server.")
    path: str = setting("/ebms", "URL path of the ebMS endpoint.")
    max_body_bytes: int = setting(
        32 * 1024 * 1024,
        "Largest HTTP request body, counted while streaming (also chunked). GGk caps StUF at 25 MB.",
    )
    shutdown_grace_seconds: float = setting(10.0, "Time in-flight requests get to finish on shutdown.")
    processes: int = setting(
        0,
        "Server processes `serve` starts, sharing the port (SO_REUSEPORT; Linux spreads connections "
        "over them). 0: one per CPU core (one when port is 0). Above 1 a fixed port is needed; "
        "migrations and CPA import run once, first; the scheduled work runs in a process of its own "
        "at a lower CPU priority.",
    )
    client_cert_mode: str = setting(
        "cpa-or-oin",
        "How a TLS client certificate is matched to the From party: 'strict' (the CPA's client "
        "certificate only) or 'cpa-or-oin' (that, or a certificate carrying the From OIN).",
    )
    gateway_oins: list[str] = setting(
        [],
        "OINs of gateways (EB014) whose TLS client certificate may send for the From party of any "
        "of our CPAs, besides that party's own certificate. Empty: none.",
    )
    proxy_client_cert_header: str = setting(
        "", "Header a TLS-terminating proxy puts the client certificate in (URL-encoded PEM). Empty: off."
    )
    proxy_allowlist: list[str] = setting(
        [], "Proxy addresses whose proxy_client_cert_header is trusted. Nobody else's is read."
    )
    # --- limits (docs/security.md, "Limits") ---------------------------------------------------
    max_connections: int = setting(
        512,
        "Most TCP connections the server holds at once (all clients together); further clients "
        "wait in the kernel's accept queue until one closes.",
    )
    max_connections_per_client: int = setting(
        64,
        "Most connections one TLS client certificate may hold at once; a further one waits for one "
        "of them to close (closed after header_timeout if none does). A hub such as RINIS sends "
        "everything over one certificate: keep it above its connection pool.",
    )
    tls_handshake_timeout: float = setting(
        10.0, "Seconds a client gets to complete the TLS handshake after connecting."
    )
    header_timeout: float = setting(
        10.0,
        "Seconds from a new connection, or from the first byte of a next request, until its HTTP "
        "request line and headers must be complete (slow-loris guard).",
    )
    body_timeout: float = setting(
        20.0,
        "Longest pause, in seconds, while a request body is arriving; also the grace period "
        "before body_min_rate applies.",
    )
    body_min_rate: int = setting(
        8192,
        "Least average speed of a request body, in bytes per second, once it has taken longer "
        "than body_timeout; a slower body gets 408 and the connection is closed.",
    )
    keepalive_timeout: float = setting(
        15.0, "Seconds an idle keep-alive connection stays open after a response."
    )
    spool_threshold_bytes: int = setting(
        1024 * 1024,
        "Request bodies above this size are spooled to a temporary file while they arrive, so "
        "unfinished bodies do not hold memory.",
    )
    spool_dir: Path | None = setting(
        None, "Folder for spooled request bodies. Empty: the system temp folder."
    )
    max_parallel_per_client: int = setting(
        4,
        "Requests of one client certificate processed at once (MIME split, XML parse, signature "
        "checks, storage); more wait for a free turn up to request_timeout.",
    )
    request_timeout: float = setting(
        30.0,
        "Seconds a request may wait for its turn and be processed before it is answered with "
        "503 (the sender retries; nothing acknowledged is lost).",
    )
    allow_compressed_bodies: bool = setting(
        False,
        "Accept request bodies with a Content-Encoding (gzip, deflate, br). Off: refused with 415 "
        "before any decompression (a 1 MB gzip body can inflate to 1 GiB).",
    )
    accept_backoff_max_seconds: float = setting(
        1.0,
        "Longest pause of the accept loop after an accept error (out of file descriptors); the "
        "pause doubles from 10 ms per error in a row, and the error is logged at most every 10 s.",
    )
    # --- TLS and keys ---------------------------------------------------------------------------
    tls_server_cert: Path = setting(
        Path("certs/dev/gemeente/server.pem"), "Our TLS server certificate (PEM)."
    )
    tls_server_key: Path = setting(Path("certs/dev/gemeente/server-key.pem"), "Key of tls_server_cert.")
    tls_client_cert: Path = setting(
        Path("certs/dev/gemeente/client.pem"), "Our TLS client certificate for outbound requests (PEM)."
    )
    tls_client_key: Path = setting(Path("certs/dev/gemeente/client-key.pem"), "Key of tls_client_cert.")
    tls_trust_store: Path = setting(
        Path("certs/dev/ca.pem"),
        "CA certificates (PEM bundle) that partner TLS certificates must chain to. Production: "
        "Staat der Nederlanden Private Root CA - G1 and its intermediates.",
    )
    revocation_mode: str = setting(
        "fail-closed",
        "Revocation checks (CRL, and OCSP where a certificate names a responder) of partners' TLS "
        "client and signing certificates: 'fail-closed' refuses when no CRL/OCSP answer can be "
        "had, 'fail-open' accepts then (with a warning), 'off' checks nothing. A certificate "
        "naming neither CRL nor OCSP is not checked.",
    )
    revocation_cache_seconds: float = setting(
        3600.0, "Longest time a CRL or OCSP answer is reused (never past its nextUpdate)."
    )
    revocation_fetch_timeout: float = setting(5.0, "Seconds to download a CRL or get an OCSP answer.")
    signing_chain_check: bool = setting(
        True,
        "A partner's signing certificate (from the CPA) must chain to tls_trust_store; off only "
        "for partners that sign with a certificate outside that trust store.",
    )
    expiry_warning_days: int = setting(
        30,
        "Warn this many days before our own certificate files, a CPA or a certificate in a CPA "
        "expire (`config check`, `cpa list` and the log at start and daily); the one expiry setting.",
    )
    allow_dev_certificates_public: bool = setting(
        False,
        "Let `serve` bind a non-loopback address while using the dev certificates of certs/dev/ "
        "(their private keys are public). Only for a closed test network.",
    )
    signing_key: Path = setting(
        Path("certs/dev/gemeente/client-key.pem"),
        "Private key that signs messages (-s/-e profiles); must match our CPA signing certificate.",
    )
    encryption_key: Path = setting(
        Path("certs/dev/gemeente/client-key.pem"),
        "Private key that decrypts payloads (-e profiles); must match our CPA encryption certificate.",
    )
    key_passphrase_env: str = setting(
        "", "Name of an environment variable holding the passphrase of encrypted private keys."
    )
    key_passphrase_file: Path | None = setting(None, "File holding the passphrase of encrypted private keys.")
    message_id_host: str = setting(
        "",
        "Host part of our MessageIds (<uuid>@<host>, EB013): the host name of our endpoint as the "
        "CPA names it. Empty: the 'host' setting, or this machine's name when that is an address.",
    )
    # --- sending --------------------------------------------------------------------------------
    worker_enabled: bool = setting(True, "Run the delivery/outbound worker inside `serve`.")
    worker_processes: int = setting(
        0,
        "Processes of their own that `serve` starts for the send and delivery workers (with "
        "worker_enabled), so that the server processes only answer requests. 0: the workers run "
        "in every server process. Above 0 `serve` runs several processes, and a fixed port is "
        'needed, even with processes = 1 (docs/operations.md, "Several nodes").',
    )
    worker_poll_seconds: float = setting(0.5, "How often an idle worker looks for due jobs.")
    job_lease_seconds: float = setting(
        20.0,
        "A claimed job whose worker has not renewed its claim for this long is taken over by "
        "another worker (a worker renews its claims every third of it while it works).",
    )
    send_max_in_flight: int = setting(
        64,
        "Most outbound messages one send worker has in flight at once (claimed, being sent or "
        "being recorded); it claims again as they finish.",
    )
    send_max_in_flight_per_partner: int = setting(
        16,
        "Most requests a send worker has on the wire to one partner endpoint at once, each over a "
        "keep-alive connection of its own; the rest of its messages wait for a place.",
    )
    http_connect_timeout: float = setting(10.0, "Seconds to set up a TCP+TLS connection to a partner.")
    http_timeout: float = setting(120.0, "Seconds a whole outbound request may take.")
    # --- testing --------------------------------------------------------------------------------
    test_faults: list[str] = setting(
        [],
        "FOR TESTS ONLY: make this endpoint misbehave on business messages it receives, to exercise "
        "a partner's retries: 'drop-ack' (answer 204, keep nothing, so no Acknowledgment ever "
        "comes), 'http-503:N' (answer 503 to the first N attempts of each message), 'delay-ms:N' "
        "(answer N ms late), 'message-error:CODE' (answer a MessageError with this ebMS code), "
        "'hold-until:PATH' (keep each accepted request in flight until PATH exists, logging it). "
        "Refused unless every party_ids OIN is a test OIN (prefix 00000099).",
    )
    # --- payloads -------------------------------------------------------------------------------
    payload_schemas: Path | None = setting(
        None,
        "Folder of an unpacked iStandaarden release (<std>_<R>_<r>/xsd/*.xsd). Empty: structural "
        "payload checks only.",
    )
    # --- StUF-GGk delivery and submission (docs/delivery.md) -----------------------------------
    outbox_dir: Path = setting(
        Path("var/outbox"),
        "Folder the worker watches for payloads or StUF envelopes from domain applications; handled "
        "files move to done/ or failed/ (with a .reason.txt).",
    )
    delivery_max_attempts: int = setting(
        10, "Tries to hand a received message to its route's target before it is parked as Failed."
    )
    delivery_retry_seconds: float = setting(
        30.0, "Wait before the first delivery retry; doubles per try up to delivery_retry_max_seconds."
    )
    delivery_retry_max_seconds: float = setting(3600.0, "Longest wait between two delivery tries.")
    delivery_batch: int = setting(
        50,
        "Deliver jobs the delivery worker claims in one statement and finishes in one transaction "
        "per step (docs/delivery.md).",
    )
    delivery_parallel: int = setting(
        4,
        "Deliveries to directory and HTTP targets the delivery worker runs at the same time within a batch.",
    )
    stuf_applicatie: str = setting(
        "GGkEbms",
        "zender/applicatie in the StUF envelopes and Fo01s we build (3-50 characters, no version).",
    )
    fo01_codes: list[str] = setting(
        [
            "StUF055",
            "StUF010",
            "StUF037",
            "StUF040",
            "StUF052",
            "StUF016",
            "IB001",
            "IB002",
            "IB003",
            "IB004",
            "IB005",
            "IB006",
            "IB007",
            "IB010",
            "IB014",
            "IB016",
            "IB023",
        ],
        "Refusals answered with a Fo01 to the sender: StUF055 (the GGk spec) and the codes of the "
        "GGk Fo01 code table (docs/exchanges.md). A code left out: message Failed and an operator "
        "alerted, no Fo01.",
    )
    # --- management API (docs/api.md) -----------------------------------------------------------
    api_enabled: bool = setting(True, "Run the management API listener inside `serve`.")
    api_host: str = setting(
        "127.0.0.1",
        "Address the management API binds to. Anything but a loopback address gets TLS with tls_server_cert.",
    )
    api_port: int = setting(8480, "Port of the management API (0: any free port, logged at start).")
    api_tls: str = setting(
        "auto", "TLS on the management API: 'auto' (on unless bound to loopback) or 'always'."
    )
    api_max_body_bytes: int = setting(
        40 * 1024 * 1024,
        "Largest request body the management API accepts (a message with base64 content is 4/3 of its size).",
    )
    api_client_certificates: list[str] = setting(
        [],
        "Client certificates that may use the management API instead of a token, each as "
        "'<SHA-256 fingerprint of the DER certificate, hex>=<scope>,<scope>'. Needs TLS on the API; "
        "the certificate must chain to tls_trust_store.",
    )
    api_rate_per_second: float = setting(20.0, "Requests per second each API token may make on average.")
    api_rate_burst: int = setting(100, "Requests an API token may make at once before the rate applies.")
    api_heartbeat_seconds: float = setting(
        15.0,
        "How often each worker records that it is alive; /health/ready wants a beat within three times this.",
    )
    # --- web console (docs/console.md) ----------------------------------------------------------
    console_enabled: bool = setting(True, "Serve the web console under /console/ on the management listener.")
    console_session_minutes: int = setting(
        30, "A console session ends after this many minutes without a request (and after 12 hours)."
    )
    console_max_failed_logins: int = setting(
        5, "Wrong passwords in a row after which a console account name is locked for a while."
    )
    console_lockout_minutes: int = setting(15, "How long a console account name stays locked.")
    console_secure_cookie: str = setting(
        "auto",
        "Secure flag of the console cookie: 'auto' (on when the listener has TLS) or 'always'.",
    )
    console_oidc_issuer: str = setting(
        "",
        "OIDC issuer of an identity broker for console login (https; http only on loopback, for "
        "tests). Empty: password login only. Needs the 'oidc' extra (authlib).",
    )
    console_oidc_client_id: str = setting("", "OIDC client id of the console at the identity broker.")
    console_oidc_client_secret_file: Path | None = setting(
        None, "File holding the console's OIDC client secret (client_secret_post)."
    )
    console_oidc_username_claim: str = setting(
        "preferred_username",
        "ID token claim that names the console account (accounts are made on the Gebruikers page).",
    )
    test_gemeentecodes: list[str] = setting(
        [], "Codes that are no CBS gemeentecode but are served anyway (the GGk portal's test 9999)."
    )
    cpa_expiry_warn_days: int | None = setting(
        None,
        "Deprecated: the old name of `expiry_warning_days`, used for it only when that is not set; "
        "`config check` warns while it is set.",
    )
    # --- the portal's daily work (docs/operations.md) ------------------------------------------
    served_gemeentecodes: list[str] = setting(
        [],
        "Gemeentecodes this installation serves, both ways (a samenwerkingsverband serves several); "
        "each must be a CBS gemeentecode or in test_gemeentecodes. Outbound messages (submit, outbox, "
        "send, Aanleveren: 'Organisatie is niet geautoriseerd') for another code are refused before "
        "sending, inbound ones answered with a Fo01 IB005. Empty: the gemeentecodes of the routing "
        "table in force. Per exchange: `ggk-ebms exchanges set KEY --gemeentecodes`.",
    )
    aanlever_max_zip_bytes: int = setting(
        1_000_000_000, "Largest ZIP accepted by `aanleveren` (the GGk portal: 1 GB); larger: refused."
    )
    aanlever_max_entries: int = setting(
        10_000, "Most files in one ZIP; more and the whole batch is Afgekeurd (zip-bomb guard)."
    )
    aanlever_max_ratio: int = setting(
        200, "Highest uncompressed/compressed size ratio of one ZIP entry before it counts as a zip bomb."
    )
    aanlever_max_total_bytes: int = setting(
        4_000_000_000, "Most bytes all files of one ZIP may unpack to; beyond it the rest is refused."
    )
    aanlever_idle_seconds: int = setting(
        600,
        "An aanlevering still Ontvangen or Bezig without progress for this long was left by a crash "
        "or stop: `serve` marks it Onderbroken (at start and every few minutes).",
    )
    mailbox_gelezen_hours: int = setting(
        168, "Ophalen: an item marked gelezen is removed this many hours later unless unmarked (GGk: 168)."
    )
    mailbox_max_days: int = setting(90, "Ophalen: every item is removed after this many days (GGk: 90).")
    mailbox_removed_log_days: int = setting(
        60, "A message removed from Ophalen stays findable in the berichtenlog this many days (GGk: 60)."
    )
    # --- Ketendata (docs/ketendata.md) ---------------------------------------------------------
    ketendata_key_file: Path | None = setting(
        None,
        "File with the secret HMAC-SHA-256 key that hashes BSNs and other identifiers in Ketendata "
        "files. Empty: ketendata.key in data_dir. Kept outside the database; created at the first "
        "export; `ggk-ebms ketendata rotate-key` replaces it.",
    )
    ketendata_schedule: bool = setting(True, "Make the weekly Ketendata export inside `serve`.")
    ketendata_schedule_day: str = setting(
        "sunday", "Day of the weekly Ketendata export (e.g. sunday, zondag)."
    )
    ketendata_schedule_time: str = setting("06:00", "Local time (HH:MM) of the weekly Ketendata export.")
    ketendata_timezone: str = setting("Europe/Amsterdam", "Time zone of the Ketendata schedule.")
    ketendata_retention_days: int = setting(
        60, "Ketendata files are deleted this many days after their export (the IB keeps them 60 days)."
    )
    # --- CBS Monitor Sociaal Domein and notifications (docs/cbs.md) ------------------------------
    cbs_cpa_id: str = setting(
        "", "CPAId of the CPA with RINIS over which CSV files and opt-ins go to CBS. Empty: not configured."
    )
    cbs_functie: str = setting("CBSMSD", "StUF functie of a CSV delivery to CBS (agree with BIDN).")
    cbs_toestemming_functie: str = setting(
        "CBSMSDToestemming", "StUF functie of the opt-in CSV to CBS (agree with BIDN)."
    )
    cbs_rapport_functie: str = setting(
        "CBSMSDRapport", "StUF functie of a PDF report from CBS; such messages land in the mailbox."
    )
    cbs_delivery_offset_months: int = setting(
        1, "The CBS delivery period starts this many months after the verslagperiode ends (first day)."
    )
    cbs_toestemming_after_days: int = setting(
        28, "The opt-in is asked this many days after the start of the delivery period."
    )
    cbs_reminder_days: int = setting(7, "Days between two reminders about the same CBS delivery or opt-in.")
    smtp_host: str = setting("", "SMTP server for notifications. Empty: no e-mail is sent.")
    smtp_port: int = setting(25, "Port of the SMTP server.")
    smtp_starttls: bool = setting(
        False, "Use STARTTLS towards the SMTP server (checked against the system CAs)."
    )
    smtp_username: str = setting("", "SMTP user name. Empty: no login.")
    smtp_password_file: Path | None = setting(None, "File holding the SMTP password.")
    smtp_from: str = setting("ggk-ebms@localhost", "Sender address of notifications.")
    notify_to: list[str] = setting([], "Addresses that receive notifications (CBS reminders and reports).")
    # --- logging --------------------------------------------------------------------------------
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")
    log_format: str = setting(
        "text",
        "Log output of `serve` and `worker`: 'text' (readable lines) or 'json' (one JSON object per "
        "line with timestamp, level, event, MessageId, CPAId, gemeentecode, berichttype; for log "
        "shippers, docs/operations.md).",
    )

    @property
    def effective_ketendata_key_file(self) -> Path:
        return self.ketendata_key_file or self.data_dir / "ketendata.key"

    @property
    def effective_processes(self) -> int:
        """``processes``, with 0 meaning one per CPU core this process may use (each process has
        one Python core; docs/performance.md), or one when the port is chosen by the system."""
        if self.processes:
            return self.processes
        if self.port == 0:
            return 1  # several processes must bind the same, fixed port
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, cores or 1)

    @property
    def effective_worker_processes(self) -> int:
        """The worker processes ``serve`` starts: ``worker_processes``, or none when the workers
        are off (worker_enabled)."""
        return self.worker_processes if self.worker_enabled else 0

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ggk-ebms.db'}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


# Limits that make no sense at 0 or below (a 0 would mean "refuse everything" or "wait forever").
_POSITIVE: Final = (
    "max_connections",
    "delivery_batch",
    "delivery_parallel",
    "max_connections_per_client",
    "tls_handshake_timeout",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
    "max_parallel_per_client",
    "request_timeout",
    "send_max_in_flight",
    "send_max_in_flight_per_partner",
    "accept_backoff_max_seconds",
    "db_ping_timeout",
    "revocation_cache_seconds",
    "expiry_warning_days",
    "aanlever_idle_seconds",
    "revocation_fetch_timeout",
    "db_statement_timeout",
    "db_idle_in_transaction_timeout",
)


def declared() -> list[dataclasses.Field[Any]]:
    """The settings, in declaration order."""
    return list(dataclasses.fields(Settings))


def _types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _coerce(name: str, typ: Any, value: Any, source: str) -> Any:
    """Turn a TOML or environment value into the declared type, or say clearly why not."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        if value in (None, ""):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(name, inner, value, source)
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if typ is int:
            if isinstance(value, bool):
                raise ValueError("expected a whole number")
            return int(value)
        if typ is float:
            return float(value)
        if typ is Path:
            return Path(str(value))
        if typ is str:
            if not isinstance(value, str | int | float):
                raise ValueError(f"expected text, got {type(value).__name__}")
            return str(value)
        if origin is list:
            if isinstance(value, str):
                return [item.strip() for item in value.split(",") if item.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise ValueError("expected a list of strings")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} from {source}: {exc}") from None
    raise ConfigError(f"setting {name!r}: unsupported type {typ!r}")  # pragma: no cover


def _deprecated_expiry_alias(values: dict[str, Any]) -> None:
    """``cpa_expiry_warn_days`` is the old name of ``expiry_warning_days``: one setting governs CPAs,
    the certificates in them and our own certificate files (docs/configuration.md). The old name
    still counts when the new one is not given; given both, they must agree."""
    old = values.get("cpa_expiry_warn_days")
    if old is None:
        return
    if old <= 0:
        raise ConfigError(f"setting 'cpa_expiry_warn_days' must be above 0, not {old}")
    new = values.get("expiry_warning_days")
    if new is None:
        values["expiry_warning_days"] = old
    elif new != old:
        raise ConfigError(
            f"settings 'expiry_warning_days' ({new}) and its deprecated old name 'cpa_expiry_warn_days' "
            f"({old}) disagree: keep expiry_warning_days only"
        )


def load(
    config_file: Path | None = None,
    environ: typing.Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings: defaults, then the settings file, then the environment.

    The file is ``config_file``, else ``$GGK_EBMS_CONFIG``, else ``./ggk-ebms.toml`` if it exists.
    Unknown keys are an error (a typo must not silently fall back to a default).
    """
    env = os.environ if environ is None else environ
    path = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    hints = _types()
    values: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"settings file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
        for key, value in raw.items():
            if key not in hints:
                raise ConfigError(f"settings file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, hints[key], value, str(path))
        base = path.parent
        for key, value in list(values.items()):
            # Relative paths in a settings file are relative to that file, not to the cwd.
            if isinstance(value, Path) and not value.is_absolute():
                values[key] = base / value
    for key, typ in hints.items():
        env_key = ENV_PREFIX + key.upper()
        if env_key in env:
            values[key] = _coerce(key, typ, env[env_key], f"${env_key}")
    _deprecated_expiry_alias(values)
    settings = Settings(**values)
    if settings.processes < 0:
        raise ConfigError(f"setting 'processes' must be 0 (one per core) or more, not {settings.processes}")
    if settings.worker_processes < 0:
        raise ConfigError(f"setting 'worker_processes' must be 0 or more, not {settings.worker_processes}")
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"setting 'log_format' must be 'text' or 'json', not {settings.log_format!r}")
    if settings.db_connect_timeout < 2:
        raise ConfigError("setting 'db_connect_timeout' must be at least 2 (libpq's minimum)")
    for name in _POSITIVE:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"setting {name!r} must be above 0, not {getattr(settings, name)}")
    if settings.revocation_mode not in ("fail-closed", "fail-open", "off"):
        raise ConfigError(
            "setting 'revocation_mode' must be 'fail-closed', 'fail-open' or 'off', "
            f"not {settings.revocation_mode!r}"
        )
    if settings.client_cert_mode not in ("strict", "cpa-or-oin"):
        raise ConfigError(
            f"setting 'client_cert_mode' must be 'strict' or 'cpa-or-oin', not {settings.client_cert_mode!r}"
        )
    from ggk_ebms.api.certs import parse_client_certificates  # the one parser of the setting

    parse_client_certificates(settings.api_client_certificates)
    if settings.console_secure_cookie not in ("auto", "always"):
        raise ConfigError("setting 'console_secure_cookie' must be 'auto' or 'always'")
    if settings.console_session_minutes < 1 or settings.console_max_failed_logins < 1:
        raise ConfigError("settings console_session_minutes and console_max_failed_logins must be 1 or more")
    if settings.api_tls not in ("auto", "always"):
        raise ConfigError(f"setting 'api_tls' must be 'auto' or 'always', not {settings.api_tls!r}")
    return settings


def shown(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, effective value, help) per setting, secrets masked, for ``config show``."""
    rows = []
    for f in declared():
        value = getattr(settings, f.name)
        text = ", ".join(value) if isinstance(value, list) else ("" if value is None else str(value))
        if f.metadata.get("secret") and text:
            text = _mask(text)
        rows.append((f.name, text, str(f.metadata["help"])))
    return rows


def _mask(text: str) -> str:
    # Database URLs: keep scheme, host and database, hide any password.
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else text
    if "://" in text:
        return text  # a URL without credentials holds no secret
    return "***"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_toml(settings: Settings) -> str:
    """A settings file that ``load`` reads back as ``settings``: every setting that is not None,
    paths made absolute (a file is read relative to its own folder). Used to start a server
    process with given settings (tests, benchmarks)."""
    lines = []
    for f in declared():
        value = getattr(settings, f.name)
        if value is None:
            continue
        if isinstance(value, Path):
            value = value.resolve()
        lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
