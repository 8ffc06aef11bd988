"""The schema as SQLAlchemy Core tables. Alembic migrations create it; keep them in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()



class UtcDateTime(TypeDecorator[datetime]):
    """An instant, stored in UTC and read back aware. SQLite keeps a datetime as the text
    of its wall-clock time and drops the zone: 10:00+02:00 would come back as 10:00 UTC.
    Converting on the way in keeps every store saying the same instant."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None and value.utcoffset():
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


facilities = Table(
    "facilities",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("time_zone", String(64), nullable=False),
    # Clock times, shifts, windows, PN day mode, escalation: read and written as one value.
    Column("settings", JSON, nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    Column("etag", String(64), nullable=False),
)

residents = Table(
    "residents",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    # One person has at most one resident per facility, and may have one in each (a move
    # between homes keeps both): unique per facility, so no facility learns another's.
    Column("person_id", String(10), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("room", String(50), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    Column("etag", String(64), nullable=False),
    # Incremented by every new order version: a schedule stamp names the count it saw.
    Column("order_changes", BigInteger, nullable=False, server_default="0"),
    ForeignKeyConstraint(["facility_id"], ["facilities.facility_id"]),
    UniqueConstraint("facility_id", "person_id", name="uq_residents_facility_person"),
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
    Column("create_time", UtcDateTime(), nullable=False),
)

# The mirror of each resident's medicine card (DOMAIN.md §2): the card's source version, and
# every version of every order with both clocks. Rows are only ever added.
medicine_cards = Table(
    "medicine_cards",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("card_version", BigInteger, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    # False: card_version was read, but an order of it could not be, so it was applied in
    # part (issue 21); an import of the same version is then applied, not skipped.
    Column("complete", Boolean, nullable=False, server_default=true()),
    ForeignKeyConstraint(["facility_id", "resident_id"],
                         ["residents.facility_id", "residents.resident_id"]),
)

# The pharmacy's dose-dispensing cards as read from FMK (issue 16 part 3): one row per
# import, never updated; the inspection checks compare a resident's latest with the orders.
# `lines`: [{"order_id", "source_version", "drug_name", "hidden"}].
dose_dispensing_cards = Table(
    "dose_dispensing_cards",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("recorded_at", UtcDateTime(), primary_key=True),
    Column("card_id", String(64), nullable=False),
    Column("period_start", Date),
    Column("period_end", Date),
    Column("lines", JSON, nullable=False),
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
    Column("valid_from", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
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
    Column("administered_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("performer", String(200), nullable=False),
    Column("entered_in_error", Boolean, nullable=False),
    Column("correction_reason", String(1000), nullable=False),
    Column("corrected_by", String(200), nullable=False),
    Column("corrected_at", UtcDateTime()),
    # A PN dose's evaluation (issue 16, migration 0012).
    Column("pn_effect", String(20)),
    Column("pn_effect_note", String(1000), nullable=False, server_default=""),
    Column("evaluated_by", String(200), nullable=False, server_default=""),
    Column("evaluated_at", UtcDateTime()),
    Column("first_evaluated_at", UtcDateTime()),
    Column("etag", String(64), nullable=False, server_default="0"),
    # The PN evaluation deadline the sweep has still to look at (None: nothing to sweep):
    # set for a given record on no scheduled dose (only such a record can be a PN dose),
    # moved when the facility's setting changes, cleared when swept.
    Column("followup_due_at", UtcDateTime()),
    # The entered-in-error record of the same dose this one replaces (issue 20, migration
    # 0018); NULL for a first record, a record on no dose, and records made before 0018.
    Column("replaces_record_id", String(36)),
    ForeignKeyConstraint(["facility_id", "resident_id"],
                         ["residents.facility_id", "residents.resident_id"]),
    Index("ix_records_resident_time", "facility_id", "resident_id", "administered_at"),
    Index("ix_records_followup", "followup_due_at",
          sqlite_where=text("followup_due_at IS NOT NULL"),
          postgresql_where=text("followup_due_at IS NOT NULL")),
    Index("ix_records_administered", "administered_at"),  # the national batch's range
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
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("description", String(1000), nullable=False),
    # The description as a catalogue message (JSON), to show it in another language (0016).
    Column("message", Text),
    Column("known_at_administration", Boolean),
    Column("status", String(20), nullable=False),
    Column("decision", String(30)),
    Column("review_note", String(4000), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("reviewed_at", UtcDateTime()),
    Column("etag", String(32), nullable=False),
    Index("ix_discrepancies_facility_time", "facility_id", "occurred_at"),
    Index("ix_discrepancies_queue", "status", "severity", "facility_id"),
)

# -- alerts and the missed-dose sweep (issue 5) ------------------------------------------

# One row per facility: the alert log's last position. Taking the next position updates
# this row, whose lock is held until commit, so positions become visible in order and a
# watcher reading "after my position" never skips a row that commits late.
alert_logs = Table(
    "alert_logs",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("last_position", BigInteger, nullable=False),
    # Positions up to this one were pruned (retention): older resume tokens are refused.
    Column("pruned_through", BigInteger, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("facility_id", String(63), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("audience", String(20), nullable=False),
    # What raised it, e.g. "discrepancy:<key>" or "escalation:<alert id>": raised once.
    Column("source_key", String(450), nullable=False, unique=True),
    Column("shift_id", String(30), nullable=False),
    Column("shift_date", String(10), nullable=False),
    Column("discrepancy_id", String(32)),
    Column("resident_id", String(63)),
    Column("severity", String(10), nullable=False),
    Column("summary", String(1000), nullable=False),
    Column("message", Text),  # the summary as a catalogue message (JSON), 0016
    Column("created_at", UtcDateTime(), nullable=False),
    Column("escalate_at", UtcDateTime()),
    Column("escalates", String(32)),
    Column("acknowledged_at", UtcDateTime()),
    Column("acknowledged_by", String(200), nullable=False),
    Index("ux_alerts_position", "facility_id", "position", unique=True),
    Index("ix_alerts_escalate_at", "escalate_at",
          postgresql_where=text("escalate_at IS NOT NULL"),
          sqlite_where=text("escalate_at IS NOT NULL")),
)

# Due doses materialised over a rolling horizon, so the sweep can claim the ones whose
# window has closed. Refreshed on every order change; the sweep re-checks each claimed
# dose against the order history before anything is raised.
scheduled_doses = Table(
    "scheduled_doses",
    metadata,
    Column("dose_id", String(36), primary_key=True),
    Column("facility_id", String(63), nullable=False),
    Column("resident_id", String(63), nullable=False),
    Column("order_id", String(63), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("closes_at", UtcDateTime(), nullable=False),
    Column("swept_at", UtcDateTime()),
    # What a record on the dose is checked against (batch reconciliation's triage): the
    # part of the window in which one version of the order is in force and to be given
    # (NULL: none), the ordered quantity as records write it (NULL: a range), the route.
    Column("plain_from", UtcDateTime()),
    Column("plain_until", UtcDateTime()),
    Column("amount", String(40)),
    Column("route", String(100), nullable=False, server_default=""),
    Column("order_since", UtcDateTime()),  # when the mirror first knew the order
    Index("ix_scheduled_doses_resident", "facility_id", "resident_id", "due_at"),
    Index("ix_scheduled_doses_due", "due_at"),  # the national batch's range
    Index("ix_scheduled_doses_unswept", "closes_at",
          postgresql_where=text("swept_at IS NULL"), sqlite_where=text("swept_at IS NULL")),
)

# How far ahead each facility's doses are materialised; a replica extends it by claiming
# the row.
schedule_horizons = Table(
    "schedule_horizons",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("materialised_until", UtcDateTime(), nullable=False),
)

# For which due times a resident's scheduled_doses rows are exactly their schedule, under
# which order history (residents.order_changes) and facility settings.
schedule_stamps = Table(
    "schedule_stamps",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("order_changes", BigInteger, nullable=False),
    Column("settings_key", String(32), nullable=False),
    Column("covers_from", UtcDateTime(), nullable=False),
    Column("covers_until", UtcDateTime(), nullable=False),
    Column("simple", Boolean, nullable=False),  # no order needs a manual schedule
)

# The history of each discrepancy (DOMAIN.md §8): detected, withdrawn, re-detected by
# reconciliation, reviewed by a pharmacist. Rows are only ever added. Reconciliation writes
# them in bulk, one statement per call. The id is an integer (a rowid on SQLite).
discrepancy_events = Table(
    "discrepancy_events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("discrepancy_id", String(32), nullable=False),
    Column("event_time", UtcDateTime(), nullable=False),
    Column("kind", String(20), nullable=False),
    # "reconciliation", or the reviewer's subject.
    Column("actor", String(200), nullable=False),
    Column("detail", String(4100), nullable=False),
    Index("ix_discrepancy_events_history", "discrepancy_id", "event_time", "event_id"),
)

# The audit trail (issue 5): one row per authenticated API call, only ever added. Triggers
# (migration 0005) make the database refuse UPDATE and DELETE. facility_id is null for
# calls that name no facility (ListFacilities); resource is a resource name, never a person
# identifier.
audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("event_time", UtcDateTime(), nullable=False),
    Column("facility_id", String(63)),
    Column("subject", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("method", String(200), nullable=False),
    Column("resource", String(300), nullable=False),
    Column("resident_id", String(63)),
    Column("request_id", String(100), nullable=False),
    Column("outcome", String(30), nullable=False),
    Column("detail", String(100), nullable=False, server_default=""),
    Index("ix_audit_events_facility_time", "facility_id", "event_time"),
    Index("ix_audit_events_time", "event_time"),
)

# Clinical changes of the medicine card and their approval (issue 16, migration 0013): one
# row per change, named by the order's first version in it; an order has at most one
# pending row (later clinical versions join it). Rows are kept after approval.
card_changes = Table(
    "card_changes",
    metadata,
    Column("facility_id", String(63), primary_key=True),
    Column("resident_id", String(63), primary_key=True),
    Column("order_id", String(63), primary_key=True),
    Column("first_version", Integer, primary_key=True),
    Column("base_version", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    # Aspect values, comma-separated ("dosage,route").
    Column("aspects", String(300), nullable=False),
    Column("drug_name", String(200), nullable=False),
    Column("before_text", String(2000), nullable=False),
    Column("after_text", String(2000), nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("etag", String(64), nullable=False),
    Column("approved_at", UtcDateTime()),
    Column("approved_by", String(200), nullable=False),
    Index("ix_card_changes_pending", "facility_id", "status", "detected_at"),
)

# Webhook subscriptions (docs/webhooks.md): where a facility's alerts for one audience are
# POSTed, and the signing secret (shown once, never logged).
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("subscription_id", String(32), primary_key=True),
    Column("facility_id", String(63), nullable=False),
    Column("audience", String(20), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Index("ix_webhook_subscriptions_facility", "facility_id", "subscription_id"),
)

# Each subscription's cursor in its facility's alert log, and its lease: a replica claims
# the row (lease_holder, lease_until) before delivering and advances `position` after the
# receiver's 2xx, only while it still holds the lease; a replica that dies loses the lease
# when it runs out and another goes on from the cursor.
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("subscription_id", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("lease_holder", String(100)),
    Column("lease_until", UtcDateTime()),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_delivered_alert", String(32)),
    Column("last_delivered_at", UtcDateTime()),
    Column("failing_since", UtcDateTime()),
    Column("last_error", String(200), nullable=False),
    ForeignKeyConstraint(["subscription_id"], ["webhook_subscriptions.subscription_id"],
                         ondelete="CASCADE"),
)
