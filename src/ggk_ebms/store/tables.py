"""The database schema as SQLAlchemy Core tables; migrations/versions/ must create exactly this.

Core tables, not ORM classes: the repositories translate rows into frozen dataclasses, so no
session-bound object ever leaves the store. Constraint names follow one naming convention so
SQLite and PostgreSQL agree and later migrations can refer to them by name.

Every time is stored in UTC through ``UtcDateTime`` and comes back timezone-aware, whatever the
backend (SQLite has no time zone type and would otherwise hand back naive datetimes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from ggk_ebms.lifecycle import Status

# Lengths. An ebMS MessageId has no length limit of its own (RFC 2822 msg-id); 1024 is far beyond
# anything a real MSH sends and keeps the unique index within PostgreSQL's btree entry limit.
CPA_ID_MAX: Final = 255
MESSAGE_ID_MAX: Final = 1024
NAME_MAX: Final = 255

DIRECTIONS: Final = ("in", "out")
# Message kinds: a business message or one of the ebMS
# MSH signals (ebMS 2.0 §6.3, §7-§8; ebMS 2.0 §4.2).
KINDS: Final = (
    "business",
    "Acknowledgment",
    "MessageError",
    "Ping",
    "Pong",
    "StatusRequest",
    "StatusResponse",
)
SIGNAL_KINDS: Final = KINDS[1:]
# The ebMS-layer statuses: defined once, by the lifecycle (ggk_ebms.lifecycle.Status).
STATUSES: Final = tuple(status.value for status in Status)
# Queues: 'deliver' hands received business messages to routing; 'send' carries outbound
# business messages and asynchronous signals.
QUEUES: Final = ("deliver", "send")
JOB_STATUSES: Final = ("pending", "running", "done", "failed")
OUTCOMES: Final = ("ok", "retry", "fail")
# message_event.layer: the ebMS layer (message.status) or the business layer (business_status).
LAYERS: Final = ("ebms", "business")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive input is refused, not guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite stores text without an offset: store UTC wall time so ordering by text is right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING: Final[dict[str, Any]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

# A bigint primary key that SQLite still treats as its rowid alias (autoincrementing INTEGER).
BigPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

cpa = sa.Table(
    "cpa",
    metadata,
    sa.Column("cpa_id", sa.String(CPA_ID_MAX), primary_key=True),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("start_at", UtcDateTime, nullable=False),
    sa.Column("end_at", UtcDateTime, nullable=False),
    sa.Column("party_ids", sa.JSON, nullable=False),
    sa.Column("profiles", sa.JSON, nullable=False),
    sa.Column("imported_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

message = sa.Table(
    "message",
    metadata,
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("message_id", sa.String(MESSAGE_ID_MAX), nullable=False),
    sa.Column("cpa_id", sa.String(CPA_ID_MAX), nullable=False),
    sa.Column("conversation_id", sa.String(MESSAGE_ID_MAX), nullable=False),
    sa.Column("ref_to_message_id", sa.String(MESSAGE_ID_MAX), nullable=True),
    sa.Column("from_party_id", sa.String(NAME_MAX), nullable=False),
    sa.Column("from_party_type", sa.String(NAME_MAX), nullable=True),
    sa.Column("from_role", sa.String(NAME_MAX), nullable=True),
    sa.Column("to_party_id", sa.String(NAME_MAX), nullable=False),
    sa.Column("to_party_type", sa.String(NAME_MAX), nullable=True),
    sa.Column("to_role", sa.String(NAME_MAX), nullable=True),
    sa.Column("service", sa.String(NAME_MAX), nullable=False),
    sa.Column("service_type", sa.String(NAME_MAX), nullable=True),
    sa.Column("action", sa.String(NAME_MAX), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("timestamp", UtcDateTime, nullable=False),
    sa.Column("time_to_live", UtcDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.Text, nullable=True),
    sa.Column("content_digest", sa.String(64), nullable=True),
    sa.Column("envelope", sa.LargeBinary, nullable=True),
    sa.Column("content_type", sa.String(1024), nullable=True),
    sa.Column("sync_reply", sa.Boolean, nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The business layer of a StUF-GGk message (ggk_ebms.lifecycle.Business; migration 0003):
    # its status, the StUF code of a refusal, and the message that decided it (the Fo01
    # received, or the retour that answers it).
    sa.Column("business_status", sa.String(16), nullable=True),
    sa.Column("business_code", sa.String(16), nullable=True),
    sa.Column("business_reason", sa.Text, nullable=True),
    sa.Column("business_ref_pk", sa.BigInteger, nullable=True),
    # ebMS 2.0 §6.5.6: duplicate elimination is on MessageId, per direction.
    sa.UniqueConstraint("direction", "message_id"),
    sa.CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
    sa.CheckConstraint(_in("kind", KINDS), name="kind"),
    sa.CheckConstraint(_in("status", STATUSES), name="status"),
    sa.Index(None, "direction", "status"),
    sa.Index(None, "ref_to_message_id"),
    sa.Index(None, "cpa_id"),
    sa.Index(None, "conversation_id"),
    sa.Index(None, "business_status"),
)

message_event = sa.Table(
    "message_event",
    metadata,
    # A message's history (migration 0003): one row per lifecycle step, written in the same
    # transaction as the status it records (ggk_ebms.store.lifecycle).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("layer", sa.String(8), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("rule", sa.String(255), nullable=False),
    sa.CheckConstraint(_in("layer", LAYERS), name="layer"),
    sa.Index(None, "message_pk"),
)

message_part = sa.Table(
    "message_part",
    metadata,
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("content_id", sa.String(MESSAGE_ID_MAX), nullable=False),
    sa.Column("content_type", sa.String(1024), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # Last on purpose (migration 0017): SQLite writes a trailing zeroblob without building it in
    # memory, but expands one followed by any other value into the row record, so a 25 MB part
    # would cost two 25 MB buffers on insert (store/large_parts.py, docs/performance.md "Memory").
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("message_pk", "seq"),
)

job = sa.Table(
    "job",
    metadata,
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(16), nullable=False),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(NAME_MAX), nullable=True),
    sa.Column("claimed_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint(_in("queue", QUEUES), name="queue"),
    sa.CheckConstraint(_in("status", JOB_STATUSES), name="status"),
    # The claim query: due pending jobs of one queue, oldest first.
    sa.Index(None, "queue", "status", "due_at"),
    sa.Index(None, "message_pk"),
)

attempt = sa.Table(
    "attempt",
    metadata,
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("job_pk", sa.BigInteger, sa.ForeignKey("job.pk", ondelete="SET NULL"), nullable=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
    sa.Index(None, "message_pk"),
)

# --- StUF-GGk delivery (migration 0002) ----------------------------------------------------------
# Routing data only: stuurgegevens and header values are named safe in iStandaarden privacy elements,
# docs/rules.md; the payload itself stays in message_part (and mailbox_item for pick-up), never in these
# columns.
STUF_REF_MAX: Final = 64  # referentienummer/crossRefnummer: UUID (36), older envelopes up to 40
STUF_ORG_MAX: Final = 200  # StUF:Systeem/organisatie
STUF_DIRECTIONS: Final = DIRECTIONS

route_set = sa.Table(
    "route_set",
    metadata,
    # One imported routes.toml; the newest row is the routing table in force. Importing inserts a
    # new row in one transaction, so the table is replaced atomically (never half a file).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(NAME_MAX), nullable=False),
    sa.Column("base_dir", sa.Text, nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("route_count", sa.Integer, nullable=False),
    sa.Column("imported_at", UtcDateTime, nullable=False),
)

stuf_message = sa.Table(
    "stuf_message",
    metadata,
    # The StUF stuurgegevens of a stored ebMS message (received or sent), for the duplicate rule
    # (zender + referentienummer, StUF016), Du01/Fo01 correlation on crossRefnummer and retour
    # pairing on the payload's BerichtIdentificatie.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("berichtcode", sa.String(8), nullable=False),
    sa.Column("gemeentecode", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("berichttype", sa.String(32), nullable=True),
    sa.Column("referentienummer", sa.String(STUF_REF_MAX), nullable=False),
    sa.Column("cross_refnummer", sa.String(STUF_REF_MAX), nullable=True),
    sa.Column("zender", sa.String(STUF_ORG_MAX), nullable=False),
    sa.Column("ontvanger", sa.String(STUF_ORG_MAX), nullable=False),
    sa.Column("tijdstip_bericht", sa.String(17), nullable=True),
    sa.Column("bericht_identificatie", sa.String(32), nullable=True),
    sa.Column("payload_sha256", sa.String(64), nullable=True),
    sa.Column("cross_ref_unknown", sa.Boolean, nullable=False),
    sa.Column("fout_code", sa.String(16), nullable=True),
    sa.Column("fout_omschrijving", sa.String(255), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("message_pk"),
    sa.CheckConstraint(_in("direction", STUF_DIRECTIONS), name="direction"),
    sa.Index(None, "zender", "referentienummer"),
    sa.Index(None, "referentienummer"),
    sa.Index(None, "cross_refnummer"),
    sa.Index(None, "berichttype", "bericht_identificatie"),
)

mailbox_item = sa.Table(
    "mailbox_item",
    metadata,
    # A delivered payload kept for pick-up (the portal's Ophalen, GGk handleiding: Ophalen/berichtenlog):
    # fetched_at is the "gelezen" mark. One item per message, so a retried delivery never stores it twice.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("route_name", sa.String(NAME_MAX), nullable=False),
    sa.Column("gemeentecode", sa.String(STUF_ORG_MAX), nullable=False),
    sa.Column("berichttype", sa.String(32), nullable=False),
    sa.Column("referentienummer", sa.String(STUF_REF_MAX), nullable=False),
    sa.Column("zender", sa.String(STUF_ORG_MAX), nullable=False),
    sa.Column("filename", sa.String(NAME_MAX), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=True),
    # Ophalen retention (migration 0005): a removed item keeps its row without payload, so the
    # berichtenlog still finds the message for mailbox_removed_log_days (docs/operations.md).
    sa.Column("removed_at", UtcDateTime, nullable=True),
    sa.Column("removed_reason", sa.String(64), nullable=True),
    sa.UniqueConstraint("message_pk"),
    sa.Index(None, "gemeentecode", "berichttype"),
    sa.Index(None, "created_at"),
)

exchange_setting = sa.Table(
    "exchange_setting",
    metadata,
    # An operator's change to one shipped exchange default (`exchanges set`): one row per exchange
    # key and setting name; absent rows keep the shipped default (docs/exchanges.md).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("exchange_key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("exchange_key", "name"),
)
# --- The portal's daily work (migration 0005): aanleveren, ophalen, CPA beheer, audit ----------
# docs/operations.md. Batch statuses are the GGk portal's own words (Aanleveren, IB handleiding GGk).
# Onderbroken: not the portal's; a batch a crash or stop left in Ontvangen or Bezig (docs/operations.md).
BATCH_STATUSES: Final = ("Ontvangen", "Bezig", "Afgeleverd", "Afgekeurd", "Onderbroken")
FILE_OUTCOMES: Final = ("correct", "al verzonden", "incorrect")
CONNECTIETYPES: Final = ("Diginetwerk", "Internet")
FOUT_MAX: Final = 255
DETAIL_MAX: Final = 2000

aanlever_batch = sa.Table(
    "aanlever_batch",
    metadata,
    # One upload (a ZIP or a single XML) and its verwerkingsverslag; kept forever.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("bestandsnaam", sa.String(NAME_MAX), nullable=False),
    sa.Column("verzender", sa.String(NAME_MAX), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("aangeleverd", sa.Integer, nullable=False),
    sa.Column("correct", sa.Integer, nullable=False),
    sa.Column("incorrect", sa.Integer, nullable=False),
    sa.Column("ingeleverd_op", UtcDateTime, nullable=False),
    sa.Column("begin_verwerking", UtcDateTime, nullable=True),
    sa.Column("verwacht_einde", UtcDateTime, nullable=True),
    sa.Column("einde_verwerking", UtcDateTime, nullable=True),
    sa.CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
    sa.Index(None, "ingeleverd_op"),
)

aanlever_file = sa.Table(
    "aanlever_file",
    metadata,
    # One file of a batch and what became of it. A refused file never becomes a message, so this
    # row is its only trace (the berichtenlog shows it as refused before sending).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "batch_pk",
        sa.BigInteger,
        sa.ForeignKey("aanlever_batch.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("bestand", sa.String(NAME_MAX), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("foutomschrijving", sa.String(FOUT_MAX), nullable=True),
    sa.Column("fout_detail", sa.String(DETAIL_MAX), nullable=True),
    sa.Column("berichttype", sa.String(32), nullable=True),
    sa.Column("gemeentecode", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("referentienummer", sa.String(STUF_REF_MAX), nullable=True),
    sa.Column("payload_sha256", sa.String(64), nullable=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("batch_pk", "seq"),
    sa.CheckConstraint(_in("outcome", FILE_OUTCOMES), name="outcome"),
    sa.Index(None, "message_pk"),
    sa.Index(None, "created_at"),
)

audit_event = sa.Table(
    "audit_event",
    metadata,
    # Every operator action: who, when, what (docs/operations.md "Audit trail"). Never personal
    # data: subjects are ids, file names and codes.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(NAME_MAX), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(NAME_MAX), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index(None, "at"),
    sa.Index(None, "action", "at"),
)

cpa_portal = sa.Table(
    "cpa_portal",
    metadata,
    # The GGk portal's CPA request fields (CPA Beheer) and the activation after a Ping Pong.
    sa.Column(
        "cpa_id", sa.String(CPA_ID_MAX), sa.ForeignKey("cpa.cpa_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("profielnaam", sa.String(NAME_MAX), nullable=True),
    sa.Column("oin_of_hrn", sa.String(64), nullable=True),
    sa.Column("ingangsdatum", UtcDateTime, nullable=True),
    sa.Column("einddatum", UtcDateTime, nullable=True),
    sa.Column("connectietype", sa.String(16), nullable=True),
    sa.Column("endpoint", sa.String(1024), nullable=True),
    sa.Column("server_certificaat", sa.Text, nullable=True),
    sa.Column("client_certificaat", sa.Text, nullable=True),
    sa.Column("geactiveerd_op", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.CheckConstraint(_in("connectietype", CONNECTIETYPES), name="connectietype"),
)

# Berichtenlog filters (docs/operations.md): a time range first, then berichttype/gemeentecode.
sa.Index("ix_message_created_at", message.c.created_at)
sa.Index("ix_stuf_message_gemeentecode", stuf_message.c.gemeentecode)
sa.Index("ix_stuf_message_payload_sha256", stuf_message.c.payload_sha256)
# --- Ketendata (migration 0007, docs/ketendata.md) -----------------------------------------------
# Exports and their CSV files for pick-up. The files hold hashed identifiers only; the HMAC key
# lives outside the database (setting ketendata_key_file), so the database alone cannot undo them.
KETENDATA_KINDS: Final = ("weekly", "period", "historie")

ketendata_key = sa.Table(
    "ketendata_key",
    metadata,
    # One row per key ever used: its public fingerprint and the moment it came into use.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("activated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("key_id"),
)

ketendata_export = sa.Table(
    "ketendata_export",
    metadata,
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("period_since", UtcDateTime, nullable=True),
    sa.Column("period_until", UtcDateTime, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("messages", sa.Integer, nullable=False),
    sa.Column("duplicates", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.CheckConstraint(_in("kind", KETENDATA_KINDS), name="kind"),
    sa.Index(None, "kind", "period_until"),
)

ketendata_file = sa.Table(
    "ketendata_file",
    metadata,
    # fetched_at is the "gelezen" mark of the pick-up (Ophalen).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "export_pk",
        sa.BigInteger,
        sa.ForeignKey("ketendata_export.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("filename", sa.String(NAME_MAX), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("export_pk", "filename"),
    sa.Index(None, "fetched_at"),
)

ketendata_seen = sa.Table(
    "ketendata_seen",
    metadata,
    # Duplicate keys (keyed hashes) of messages delivered by a weekly export, so a message sent
    # again in a later week is not delivered twice ('geschoond').
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("dedupe_key", sa.String(64), nullable=False),
    sa.Column("export_pk", sa.BigInteger, nullable=True),
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("dedupe_key"),
)

# --- CBS Monitor Sociaal Domein (migration 0007, docs/cbs.md) ------------------------------------
CBS_KINDS: Final = ("aanlevering", "toestemming")

cbs_delivery = sa.Table(
    "cbs_delivery",
    metadata,
    # One CSV sent to CBS: its CBS referentienummer (yyyymmdd-hhmmss, unique) given back to the
    # gemeente, and the ebMS message that carries it (its status is the file's status).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("referentienummer", sa.String(15), nullable=False),
    sa.Column("filename", sa.String(NAME_MAX), nullable=False),
    sa.Column("cbs_set", sa.String(32), nullable=True),
    sa.Column("gemeentecode", sa.String(4), nullable=False),
    sa.Column("verslagperiode", sa.String(6), nullable=True),
    sa.Column("stuf_referentienummer", sa.String(STUF_REF_MAX), nullable=False),
    sa.Column("message_pk", sa.BigInteger, sa.ForeignKey("message.pk", ondelete="SET NULL"), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("referentienummer"),
    sa.CheckConstraint(_in("kind", CBS_KINDS), name="kind"),
    sa.Index(None, "stuf_referentienummer"),
)

cbs_report = sa.Table(
    "cbs_report",
    metadata,
    # A PDF report from CBS kept in the mailbox (Ophalen), linked to the delivery it answers.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "mailbox_item_pk",
        sa.BigInteger,
        sa.ForeignKey("mailbox_item.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "delivery_pk", sa.BigInteger, sa.ForeignKey("cbs_delivery.pk", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("filename", sa.String(NAME_MAX), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("mailbox_item_pk"),
)

cbs_notification = sa.Table(
    "cbs_notification",
    metadata,
    # The last reminder sent per kind and verslagperiode, so reminders repeat at an interval.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("verslagperiode", sa.String(6), nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("kind", "verslagperiode"),
)

# --- management API (migration 0006) --------------------------------------------------------------
TOKEN_SCOPES: Final = ("read", "send", "operate", "admin")
API_MARKS: Final = ("message", "event")
URL_MAX: Final = 1024

api_token = sa.Table(
    "api_token",
    metadata,
    # Only the SHA-256 of a token is kept: tokens are 256 random bits, so a fast hash is enough
    # (no dictionary to guess from) and a leaked table cannot be replayed (docs/api.md).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(NAME_MAX), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    # The gemeentecodes the token may act for (a sorted list); NULL: every gemeente.
    sa.Column("gemeentecodes", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("name"),
    sa.UniqueConstraint("token_hash"),
)

url_mapping = sa.Table(
    "url_mapping",
    metadata,
    # ebms-core REST v19 urlMappings: the sender posts to ``destination`` where the CPA says
    # ``source`` (a partner behind another address than its CPA names).
    sa.Column("source", sa.String(URL_MAX), primary_key=True),
    sa.Column("destination", sa.String(URL_MAX), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

certificate_mapping = sa.Table(
    "certificate_mapping",
    metadata,
    # ebms-core REST v19 certificateMappings: a certificate named in a CPA stands for another
    # one (per CPA, or for every CPA when cpa_id is ''). DER bytes; source_sha256 is the lookup key.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("cpa_id", sa.String(CPA_ID_MAX), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("source", sa.LargeBinary, nullable=False),
    sa.Column("destination", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("source_sha256", "cpa_id"),
)

api_mark = sa.Table(
    "api_mark",
    metadata,
    # What an API client has taken care of: a received message it processed, or the event of a
    # message it handled (ebms-core REST v19 PATCH messages/{id} and events/{id}).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("what", sa.String(16), nullable=False),
    sa.Column("marked_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("message_pk", "what"),
    sa.CheckConstraint(_in("what", API_MARKS), name="what"),
)

worker_heartbeat = sa.Table(
    "worker_heartbeat",
    metadata,
    # One row per running worker (send, deliver, retention) of any process; /health/ready wants
    # every row it knows of to be recent.
    sa.Column("name", sa.String(NAME_MAX), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("beat_at", UtcDateTime, nullable=False),
)

# --- web console (migration 0010) -----------------------------------------------------------------
CONSOLE_ROLES: Final = ("gebruikersbeheerder", "productbeheerder", "medewerker")
CONSOLE_PRODUCTS: Final = ("iwmo", "ijw", "ieb", "pgb-wmo", "pgb-jw")
USERNAME_MAX: Final = 64

console_user = sa.Table(
    "console_user",
    metadata,
    # A person using the web console. password_hash is argon2id (PHC string); NULL for an account
    # that only logs in through OIDC. products: the products this account may see (docs/console.md).
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(USERNAME_MAX), nullable=False),
    sa.Column("display_name", sa.String(NAME_MAX), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("products", sa.JSON, nullable=False),
    sa.Column("personal_data", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("disabled_at", UtcDateTime, nullable=True),
    # The gemeentecodes this account may act for (a sorted list); NULL: every gemeente of the
    # installation (docs/console.md "Rechten per gemeentecode").
    sa.Column("gemeentecodes", sa.JSON, nullable=True),
    sa.UniqueConstraint("username"),
    sa.CheckConstraint(_in("role", CONSOLE_ROLES), name="role"),
)

console_session = sa.Table(
    "console_session",
    metadata,
    # Server-side sessions: the cookie holds a random id, the table only its SHA-256.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_pk",
        sa.BigInteger,
        sa.ForeignKey("console_user.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.Index(None, "user_pk"),
)

console_login_throttle = sa.Table(
    "console_login_throttle",
    metadata,
    # Wrong passwords in a row per account name (also for names that do not exist, so a lock
    # does not tell which names are real).
    sa.Column("username", sa.String(USERNAME_MAX), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until", UtcDateTime, nullable=True),
)

# --- koppeltabel (ggk_ebms.koppeltabel; docs/koppeltabel.md) ----------------------------------------
KOPPEL_VALUE_MAX: Final = 255

koppel_message = sa.Table(
    "koppel_message",
    metadata,
    # The keys of a business message read for the koppeltabel: one row per message taken in, so
    # the catch-up knows what is done and a relation can be judged without parsing again.
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("berichtcode", sa.String(8), nullable=True),  # NULL: no StUF message (nothing to link)
    sa.Column("berichttype", sa.String(32), nullable=True),
    sa.Column("referentienummer", sa.String(STUF_REF_MAX), nullable=True),
    sa.Column("cross_refnummer", sa.String(STUF_REF_MAX), nullable=True),
    sa.Column("zender", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("ontvanger", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("gemeentecode", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("aanbieder", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("afzender", sa.String(STUF_ORG_MAX), nullable=True),
    sa.Column("identificatie", sa.String(KOPPEL_VALUE_MAX), nullable=True),
    sa.Column("indexed_at", UtcDateTime, nullable=False),
    sa.Index(None, "berichttype"),
)

koppel_key = sa.Table(
    "koppel_key",
    metadata,
    # Identifiers under which a message finds the messages it relates to (koppeltabel.Keys.probes)
    # and the body identifiers themselves. Personal data in the sense of the iStandaarden: never log.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "message_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("value", sa.String(KOPPEL_VALUE_MAX), nullable=False),
    sa.UniqueConstraint("message_pk", "name", "value"),
    sa.Index(None, "name", "value"),
)

koppel_relation = sa.Table(
    "koppel_relation",
    metadata,
    # One relation: ``later_pk`` is ``relation`` of ``earlier_pk`` (a retour of its heenbericht, a
    # start on a toewijzing), established ``via`` the shared identifier ``value``.
    sa.Column("pk", BigPk, primary_key=True, autoincrement=True),
    sa.Column(
        "earlier_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "later_pk",
        sa.BigInteger,
        sa.ForeignKey("message.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("relation", sa.String(16), nullable=False),
    sa.Column("via", sa.String(32), nullable=False),
    sa.Column("value", sa.String(KOPPEL_VALUE_MAX), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("earlier_pk", "later_pk", "relation"),
    sa.Index(None, "later_pk"),
)

zorgaanbieder = sa.Table(
    "zorgaanbieder",
    metadata,
    # The register of zorgaanbieders (docs/zorgaanbieders.md): AGB code, name and, where known,
    # whether the aanbieder is reachable through VECOZO. Imported from a CSV; first and last
    # message per AGB code come from the traffic itself (koppel_message), not from this table.
    sa.Column("agb", sa.String(8), primary_key=True),
    sa.Column("naam", sa.String(NAME_MAX), nullable=False),
    sa.Column("bereikbaar", sa.Boolean, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
