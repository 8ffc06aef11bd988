"""The schema as SQLAlchemy Core tables. Alembic migrations create it; keep them in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
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
