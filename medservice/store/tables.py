"""The schema as SQLAlchemy Core tables. Alembic migrations create it; keep them in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

metadata = MetaData()

UtcDateTime = DateTime(timezone=True)

facilities = Table(
    "facilities",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("time_zone", String(64), nullable=False),
    # Clock times, shifts, windows, PN day mode, escalation: read and written as one value.
    Column("settings", JSON, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("etag", String(64), nullable=False),
)

residents = Table(
    "residents",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("person_id", String(10), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("room", String(50), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("etag", String(64), nullable=False),
    ForeignKeyConstraint(["facility_id"], ["facilities.facility_id"]),
    Index("ix_residents_room_order", "facility_id", "room", "resident_id"),
)

# One row per write request: a retry with the same request_id returns the stored response.
request_log = Table(
    "request_log",
    metadata,
    Column("subject", String(200), primary_key=True),
    Column("method", String(200), primary_key=True),
    Column("request_id", String(100), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)

# The mirror of each resident's medicine card (DOMAIN.md §2): the card's source version, and
# every version of every order with both clocks. Rows are only ever added.
medicine_cards = Table(
    "medicine_cards",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("card_version", BigInteger, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    ForeignKeyConstraint(["facility_id", "resident_id"],
                         ["residents.facility_id", "residents.resident_id"]),
)

order_versions = Table(
    "order_versions",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("order_id", String(63), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("removed", Boolean, nullable=False),
    # The order content in the API's JSON shape (medservice.domain.order_codec).
    Column("content", JSON, nullable=False),
    ForeignKeyConstraint(["facility_id", "resident_id"],
                         ["residents.facility_id", "residents.resident_id"]),
)

# What happened at the rounds (DOMAIN.md §7). Never deleted: a mistaken record is marked
# entered-in-error. `settles` is true for the record that documents its scheduled dose; a
# unique partial index lets only one active record settle a dose, so two staff recording
# one dose at once get one winner. A second, acknowledged record on a dose (an extra dose
# that was physically given) keeps dose_id with settles false.
administration_records = Table(
    "administration_records",
    metadata,
    Column("record_id", String(36), primary_key=True),
    Column("facility_id", String(63), nullable=False),
    Column("resident_id", String(63), nullable=False),
    Column("order_id", String(63)),
    Column("drug_id", String(100), nullable=False),
    Column("dose_id", String(36)),
    Column("settles", Boolean, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("quantity", String(40)),
    Column("route", String(100), nullable=False),
    Column("source", String(20)),
    Column("not_given_reason", String(30)),
    Column("reason_text", String(1000), nullable=False),
    Column("pn_reason", String(1000), nullable=False),
    Column("administered_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("performer", String(200), nullable=False),
    Column("entered_in_error", Boolean, nullable=False),
    Column("correction_reason", String(1000), nullable=False),
    Column("corrected_by", String(200), nullable=False),
    Column("corrected_at", UtcDateTime),
    ForeignKeyConstraint(["facility_id", "resident_id"],
                         ["residents.facility_id", "residents.resident_id"]),
    Index("ix_records_resident_time", "facility_id", "resident_id", "administered_at"),
    Index("ux_records_settling_dose", "dose_id", unique=True,
          sqlite_where=text("settles AND NOT entered_in_error"),
          postgresql_where=text("settles AND NOT entered_in_error")),
)

# Discrepancies found by reconciliation (DOMAIN.md §8). `key` is the stable key (code +
# resident + order + dose or record): reconciling again inserts nothing new. A discrepancy
# that no longer applies (its record was entered in error, the order changed) is withdrawn,
# never deleted.
discrepancies = Table(
    "discrepancies",
    metadata,
    Column("discrepancy_id", String(32), primary_key=True),
    Column("key", String(400), nullable=False, unique=True),
    Column("facility_id", String(63), nullable=False),
    Column("resident_id", String(63), nullable=False),
    Column("code", String(40), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("is_error", Boolean, nullable=False),
    Column("order_id", String(63)),
    Column("dose_id", String(36)),
    Column("record_id", String(36)),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("detected_at", UtcDateTime, nullable=False),
    Column("description", String(1000), nullable=False),
    Column("known_at_administration", Boolean),
    Column("status", String(20), nullable=False),
    Column("decision", String(30)),
    Column("review_note", String(4000), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("reviewed_at", UtcDateTime),
    Column("etag", String(32), nullable=False),
    Index("ix_discrepancies_facility_time", "facility_id", "occurred_at"),
    Index("ix_discrepancies_queue", "status", "severity", "facility_id"),
)
