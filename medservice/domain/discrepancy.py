"""Discrepancies: what reconciliation finds (DOMAIN.md §8, FHIR DetectedIssue)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from medservice.domain.rounds import resident_key
from medservice.i18n import Msg


class Code(Enum):
    """The kinds of discrepancy of DOMAIN.md §8."""

    MISSED_DOSE = "MISSED_DOSE"
    LATE_DOSE = "LATE_DOSE"
    EARLY_DOSE = "EARLY_DOSE"
    WRONG_DOSE = "WRONG_DOSE"
    EXTRA_DOSE = "EXTRA_DOSE"
    UNORDERED_DRUG = "UNORDERED_DRUG"
    GIVEN_AFTER_DISCONTINUATION = "GIVEN_AFTER_DISCONTINUATION"
    GIVEN_DURING_PAUSE = "GIVEN_DURING_PAUSE"
    OUTSIDE_TREATMENT_PERIOD = "OUTSIDE_TREATMENT_PERIOD"
    WRONG_ROUTE = "WRONG_ROUTE"
    PN_LIMIT_EXCEEDED = "PN_LIMIT_EXCEEDED"
    NOT_GIVEN = "NOT_GIVEN"
    LATE_DOCUMENTATION = "LATE_DOCUMENTATION"
    NEEDS_MANUAL_SCHEDULE = "NEEDS_MANUAL_SCHEDULE"
    # A PN dose whose effect was not evaluated by the facility's deadline (issue 16).
    PN_NOT_EVALUATED = "PN_NOT_EVALUATED"


class Severity(Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 (info) .. 3 (high), for comparisons and filters."""
        return _RANKS[self]


class Decision(Enum):
    """The pharmacist's review decision. A confirmed error is an incident; one confirmed
    as a dispensing error names where it happened (the dose was prepared wrong, in the
    pharmacy's pouch or by the staff pouring it), which the DPSD report counts apart from
    errors made at the administration (issue 16)."""

    CONFIRMED_ERROR = "confirmed_error"
    NOT_AN_ERROR = "not_an_error"
    NEEDS_FOLLOW_UP = "needs_follow_up"
    CONFIRMED_DISPENSING_ERROR = "confirmed_dispensing_error"

    @property
    def confirms(self) -> bool:
        """Whether the pharmacist confirmed an error."""
        return self in (Decision.CONFIRMED_ERROR, Decision.CONFIRMED_DISPENSING_ERROR)


_RANKS = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}

# Defaults of DOMAIN.md §8. Early/late are raised to high for time-critical orders and a
# not-given dose to medium when the drug was unavailable; see the engine.
DEFAULT_SEVERITY: dict[Code, Severity] = {
    Code.MISSED_DOSE: Severity.HIGH,
    Code.LATE_DOSE: Severity.MEDIUM,
    Code.EARLY_DOSE: Severity.MEDIUM,
    Code.WRONG_DOSE: Severity.HIGH,
    Code.EXTRA_DOSE: Severity.HIGH,
    Code.UNORDERED_DRUG: Severity.HIGH,
    Code.GIVEN_AFTER_DISCONTINUATION: Severity.HIGH,
    Code.GIVEN_DURING_PAUSE: Severity.HIGH,
    Code.OUTSIDE_TREATMENT_PERIOD: Severity.MEDIUM,
    Code.WRONG_ROUTE: Severity.HIGH,
    Code.PN_LIMIT_EXCEEDED: Severity.HIGH,
    Code.NOT_GIVEN: Severity.INFO,
    Code.LATE_DOCUMENTATION: Severity.LOW,
    Code.NEEDS_MANUAL_SCHEDULE: Severity.MEDIUM,
    Code.PN_NOT_EVALUATED: Severity.LOW,
}


@dataclass(frozen=True)
class Discrepancy:
    """One difference between what was ordered and what was done.

    `key` is stable (see `discrepancy_key`): reconciling again yields the same key, so the
    store upserts instead of duplicating. `occurred_at` is the dose's due time, the
    record's administration time, or (NEEDS_MANUAL_SCHEDULE) the order version's
    valid_from. `known_at_administration` is set for GIVEN_AFTER_DISCONTINUATION and
    GIVEN_DURING_PAUSE only: whether the mirror already knew the change when the record
    was made. `description` never names a person."""

    key: str
    code: Code
    severity: Severity
    is_error: bool
    facility_id: str
    resident_id: str
    order_id: str | None
    dose_id: str | None
    record_id: str | None
    occurred_at: datetime
    description: str  # in the facility's language when found
    known_at_administration: bool | None = None
    # The description as a catalogue message, to show it in the language a caller asks for
    # (None for one found before messages were stored: its description is all there is).
    message: Msg | None = None


def discrepancy_key(code: Code, facility_id: str, resident_id: str, order_id: str | None,
                    subject: str) -> str:
    """"CODE|facility/resident|order|subject", the subject being the dose id (MISSED_DOSE),
    the record id (record findings) or "v<version>" (NEEDS_MANUAL_SCHEDULE). An unknown
    order leaves its part empty."""
    return f"{code.value}|{resident_key(facility_id, resident_id)}|{order_id or ''}|{subject}"
