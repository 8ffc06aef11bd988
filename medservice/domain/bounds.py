"""The instants and calendar dates the service accepts from callers and sources.

Python's datetime ends at years 1 and 9999, and the service computes around every date it is
given: a day plus one, a shift that ends the next morning, windows and margins of minutes to
weeks, horizons of days, a reconciliation margin of a month. A date at either end of the
calendar makes that arithmetic overflow. So input is held to years 1900 through 8999: far
wider than any medication record, and a thousand years inside datetime's limits, so no such
arithmetic on an accepted value can overflow.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from medservice.domain.errors import FieldViolation

FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(8999, 12, 31)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
UNTIL = datetime(9000, 1, 1, tzinfo=UTC)  # exclusive
# As Timestamp seconds, for checking before a conversion that could itself fail.
EARLIEST_SECONDS = int(EARLIEST.timestamp())
UNTIL_SECONDS = int(UNTIL.timestamp())

DATE_RANGE_TEXT = f"{FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}"
INSTANT_RANGE_TEXT = "1900-01-01T00:00:00Z up to (not including) 9000-01-01T00:00:00Z"


def date_violation(value: date, field: str) -> FieldViolation | None:
    if FIRST_DATE <= value <= LAST_DATE:
        return None
    return FieldViolation(field, f"must be a date from {DATE_RANGE_TEXT}")


def instant_violation(value: datetime, field: str) -> FieldViolation | None:
    """`value` must be timezone-aware."""
    if EARLIEST <= value < UNTIL:
        return None
    return FieldViolation(field, f"must be an instant from {INSTANT_RANGE_TEXT}")


def timestamp_violation(seconds: int, nanos: int, field: str) -> FieldViolation | None:
    """A google.protobuf.Timestamp's parts, before it is converted (which fails outside
    years 1-9999 or with nanos outside 0..999,999,999)."""
    if not 0 <= nanos <= 999_999_999:
        return FieldViolation(field, "nanos must be from 0 to 999999999")
    if EARLIEST_SECONDS <= seconds < UNTIL_SECONDS:
        return None
    return FieldViolation(field, f"must be an instant from {INSTANT_RANGE_TEXT}")
