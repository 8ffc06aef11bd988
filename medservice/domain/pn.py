"""What an order allows as needed (PN) on a local date, for FMK and FHIR orders alike
(DOMAIN.md §3-4): the one rule the check, reconciliation and the round list count against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from medservice.domain.dosage import Amount, StructuredDosage, pn_allowance
from medservice.domain.fhir_timing import UNIT_LENGTHS, TimingDosage
from medservice.domain.orders import OrderContent, OrderVersion

DAY = timedelta(days=1)


@dataclass(frozen=True)
class PnTerms:
    """What an order allows as needed on a date: the amount of one dose, at most
    `max_count` doses per `count_period`, at most `max_quantity` per `quantity_period`."""

    amount: Amount | None
    max_count: int | None
    count_period: timedelta
    max_quantity: Decimal | None
    quantity_period: timedelta
    unit: str

    @property
    def lookback(self) -> timedelta:
        # A calendar day lasts up to 25 hours (autumn DST day).
        return max(self.count_period, self.quantity_period, DAY + timedelta(hours=1))


def pn_terms(content: OrderContent, on: date) -> PnTerms | None:
    """The PN allowance of an order on a local date, or None when it allows none.

    FMK: the day's PN entries (`pn_allowance`). FHIR: frequency per period as a count
    (1 per 4 h is a minimum interval of 4 hours) and maxDosePerPeriod as a quantity
    (per day when the source gave no period)."""
    dosage = content.dosage
    if isinstance(dosage, StructuredDosage):
        allowance = pn_allowance(dosage, on)
        if allowance is None:
            return None
        return PnTerms(allowance.amount, allowance.max_per_day, DAY, None, DAY,
                       dosage.unit.plural)
    if isinstance(dosage, TimingDosage) and dosage.as_needed:
        rhythm = dosage.rhythm
        count, period = None, DAY
        if rhythm.period is not None and rhythm.period_unit in UNIT_LENGTHS:
            count = rhythm.frequency or 1
            seconds = int(UNIT_LENGTHS[rhythm.period_unit].total_seconds())
            period = timedelta(seconds=int(rhythm.period * seconds))
        return PnTerms(dosage.amount, count, period, dosage.max_dose_quantity,
                       dosage.max_dose_period or DAY, dosage.max_dose_unit or dosage.unit.plural)
    return None


def pn_lookback(orders: Iterable[Sequence[OrderVersion]]) -> timedelta:
    """The longest PN period of any version of these orders (at least a calendar day)."""
    longest = DAY + timedelta(hours=1)
    for versions in orders:
        for v in versions:
            d = v.content.dosage
            if isinstance(d, TimingDosage) and d.as_needed:
                terms = pn_terms(v.content, date.min)
                if terms is not None:
                    longest = max(longest, terms.lookback)
    return longest
