"""What happened at a round: administration records (DOMAIN.md §7).

A record is never deleted: a mistaken one is marked entered-in-error, with a reason and who
did it, and a new record is made; the new record of a scheduled dose names the one it
replaces (`replaced_on_dose`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medservice.domain.schedule import ScheduledDose

# A record time in the future is refused, allowing this much clock skew (DOMAIN.md §6).
CLOCK_SKEW = timedelta(minutes=2)


class Outcome(Enum):
    GIVEN = "given"
    NOT_GIVEN = "not_given"
    PN_GIVEN = "pn_given"


class NotGivenReason(Enum):
    REFUSED = "refused"
    CLINICAL_HOLD = "clinical_hold"
    DRUG_UNAVAILABLE = "drug_unavailable"
    RESIDENT_ABSENT = "resident_absent"
    OTHER = "other"  # needs a text


class DoseSource(Enum):
    POUCH = "pouch"
    POURED = "poured"


class PnEffect(Enum):
    """How a PN dose worked (*virkning*), as the carer judged it afterwards."""

    GOOD = "good"
    PARTIAL = "partial"
    NONE = "none"


@dataclass(frozen=True)
class PnEvaluation:
    """The follow-up of a PN dose: its effect, a note, who judged it and when.
    `first_evaluated_at` is when it was first evaluated (a later correction keeps it):
    what the evaluation deadline is measured against."""

    effect: PnEffect
    note: str
    evaluated_by: str
    evaluated_at: datetime
    first_evaluated_at: datetime


@dataclass(frozen=True)
class AdministrationRecord:
    """One documented outcome for one resident.

    `dose_id` is the scheduled dose it settles (None: PN, or unmatched: an unordered drug
    or an extra dose). `administered_at` is when it was given (or should have been);
    `recorded_at` when the service stored it, so documentation lag is visible."""

    record_id: str
    facility_id: str
    resident_id: str
    order_id: str | None
    drug_id: str
    outcome: Outcome
    administered_at: datetime
    recorded_at: datetime
    performer: str
    dose_id: str | None = None
    quantity: Decimal | None = None
    route: str = ""
    source: DoseSource | None = None
    not_given_reason: NotGivenReason | None = None
    reason_text: str = ""
    pn_reason: str = ""
    entered_in_error: bool = False
    correction_reason: str = ""
    corrected_by: str = ""
    corrected_at: datetime | None = None
    evaluation: PnEvaluation | None = None  # a PN dose's follow-up (issue 16)
    etag: str = ""  # changes with every change to the record (correction, evaluation)
    # The entered-in-error record of the same scheduled dose this one replaces (issue 20);
    # None for a first record, and always for one on no scheduled dose (PN, unmatched).
    replaces_record_id: str | None = None

    @property
    def active(self) -> bool:
        return not self.entered_in_error

    @property
    def was_given(self) -> bool:
        return self.outcome in (Outcome.GIVEN, Outcome.PN_GIVEN)


def settles_dose(record: AdministrationRecord, dose: ScheduledDose) -> bool:
    """Whether `record`, the first active record on `dose`, settles it (DOMAIN.md §7):
    any outcome settles a dose with a window, but only a given one settles an open-ended
    dose (`ScheduledDose.open_ended`, due until given, issue 20). A refusal of that dose
    closes nothing: it stays due (refusals may repeat, each raising NOT_GIVEN) until it is
    given, which anchors the course. The ledger (and so the check, the round list's status
    and the engine) and RecordDose's settling flag in the store all ask this."""
    return record.was_given or not dose.open_ended


def anchors_course(record: AdministrationRecord, dose: ScheduledDose | None) -> bool:
    """Whether `record` begins its order's course (sets OrderContent.first_given_at): a
    given record on the open first dose (`ScheduledDose.open_ended`), the one that settles
    it. A given record on any other dose does not, even on an order that waits: a dose of
    an earlier schedule documented after a change to "every 6 hours" lies before the new
    course's first dose, and anchoring there would leave that dose due, on no record, for
    good (issue 20)."""
    return record.was_given and dose is not None and dose.open_ended


def corrected_by_dose(records: Iterable[AdministrationRecord]
                      ) -> dict[str, AdministrationRecord]:
    """Dose id -> the latest entered-in-error record on that scheduled dose (latest by
    correction time, then record id): what reopened the dose, shown on the round list and
    named by the record that replaces it. Records on no scheduled dose have none."""
    latest: dict[str, AdministrationRecord] = {}
    for r in sorted((r for r in records if r.entered_in_error and r.dose_id),
                    key=lambda r: (r.corrected_at or r.recorded_at, r.record_id)):
        assert r.dose_id is not None
        latest[r.dose_id] = r
    return latest


def replaced_on_dose(dose_id: str | None, records: Iterable[AdministrationRecord]
                     ) -> str | None:
    """The record id a new record on scheduled dose `dose_id` replaces: the latest
    entered-in-error record on that dose, unless a record on the dose was made after that
    correction (it was the replacement already). Records made before the correction, a
    refusal later given for one, do not count. None on no dose (a PN or unmatched record
    replaces nothing: there is no dose to tie the two together)."""
    if dose_id is None:
        return None
    on_dose = [r for r in records if r.dose_id == dose_id]
    corrected = corrected_by_dose(on_dose).get(dose_id)
    if corrected is None:
        return None
    since = corrected.corrected_at or corrected.recorded_at
    if any(r.recorded_at > since for r in on_dose if r.record_id != corrected.record_id):
        return None
    return corrected.record_id
