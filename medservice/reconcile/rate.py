"""The error rate of a facility and period (DOMAIN.md §8, the US nursing-home survey
formula): errors ÷ (doses given + doses ordered but not given) × 100.

An error is an administration with at least one error discrepancy: a record or a due
dose counts once however many codes it has (the survey counts doses with errors), so the
rate cannot pass 100 % on one bad dose. NEEDS_MANUAL_SCHEDULE is about an order, not an
administration, and is not counted; refusals and clinical holds are not errors.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from medservice.domain.administration import AdministrationRecord, Outcome
from medservice.domain.discrepancy import Code, Discrepancy


class DoseCounts(NamedTuple):
    given: int
    not_given: int


@dataclass(frozen=True)
class ErrorRate:
    errors: int
    given: int
    not_given: int
    percent: Decimal  # two decimals; 0 when nothing was given or due
    # Administrations with an error of each code: one with two codes counts under both
    # (so these may add up to more than `errors`).
    by_code: dict[Code, int] = field(default_factory=dict)


def error_rate(discrepancies: Iterable[Discrepancy], given_count: int,
               not_given_count: int) -> ErrorRate:
    """The rate over discrepancies of one facility and period (withdrawn ones left out by
    the caller) and the counts of `dose_counts`."""
    administrations = error_administrations(discrepancies)
    errors = len(administrations)
    opportunities = given_count + not_given_count
    percent = Decimal(0) if opportunities == 0 else Decimal(errors * 100) / opportunities
    by_code = Counter(code for codes in administrations.values() for code in codes)
    return ErrorRate(errors, given_count, not_given_count,
                     percent.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), dict(by_code))


def error_administrations(discrepancies: Iterable[Discrepancy]) -> dict[str, set[Code]]:
    """The administrations with an error (the record's id, else the dose's, else the
    discrepancy's key) and their error codes: what the rate counts, once each."""
    out: dict[str, set[Code]] = defaultdict(set)
    for d in discrepancies:
        if d.is_error and d.code is not Code.NEEDS_MANUAL_SCHEDULE:
            out[administration_of(d)].add(d.code)
    return out


def administration_of(d: Discrepancy) -> str:
    """The administration a discrepancy is about: its record, else its due dose, else
    (an order's finding) itself. What the rate and the DPSD report count once."""
    return d.record_id or d.dose_id or d.key


def dose_counts(records: Iterable[AdministrationRecord], discrepancies: Iterable[Discrepancy],
                start: datetime, end: datetime) -> DoseCounts:
    """Doses given (active given and PN records administered in [start, end)) and doses
    ordered but not given (active NOT_GIVEN records there, plus the MISSED_DOSE
    discrepancies of doses due there). Missed doses come from reconciliation, which has
    already decided which due doses no record settles."""
    given = not_given = 0
    for r in records:
        if r.active and start <= r.administered_at < end:
            if r.outcome is Outcome.NOT_GIVEN:
                not_given += 1
            else:
                given += 1
    missed = {d.key for d in discrepancies
              if d.code is Code.MISSED_DOSE and start <= d.occurred_at < end}
    return DoseCounts(given, not_given + len(missed))
