"""Approval of card changes (issue 16 part 1, *godkendelse af ændringer fra FMK*).

Every change a sync or an import makes to an order is classified against the order's
previous version (`classify_change`, the one rule; docs/domain.md §2 has its table):

- *clinical*: what the resident is given, how, when or whether changes: a new order, the
  drug (substance), strength, form, dosage (quantities, times of day, PN limits), route,
  indication, treatment dates, dispensing mode, time-critical or window, a pause (or its
  end), a discontinuation (or its reversal), the order leaving the card;
- *administrative*: the same drug and strength under another trade name or drug id, the
  dosage's supplementary texts, the source's version identifier (which carries changes of
  reimbursement and other fields the mirror does not hold).

The mirror applies every change at once: the prescriber's card is the truth, and checks
and reconciliation judge doses against it. A clinical change then waits for a nurse's or
shift lead's approval (`PendingChange`): until approved, the round list marks the order and
CheckDose warns (CHANGE_NOT_APPROVED). A discontinuation or pause stops doses at once
whatever the approval, and is still listed to be acknowledged.

Pure: no database, no grpc.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import StructuredDosage
from medservice.domain.dosage_text import short_text
from medservice.domain.orders import DispensingMode, Dosage, OrderContent, OrderVersion
from medservice.i18n import Msg, msg


class Aspect(Enum):
    """What about an order changed, in the order staff read them."""

    # clinical
    NEW_ORDER = "new_order"
    REMOVED = "removed"  # no longer on the card
    DISCONTINUATION = "discontinuation"  # discontinued, or the discontinuation reversed
    PAUSE = "pause"  # paused, a pause changed or ended
    DRUG = "drug"
    STRENGTH = "strength"
    FORM = "form"
    DOSAGE = "dosage"  # quantities, times of day, PN limits, dosage periods
    ROUTE = "route"
    INDICATION = "indication"
    TREATMENT_DATES = "treatment_dates"
    DISPENSING = "dispensing"  # pharmacy dose-dispensed or staff-poured
    TIMING = "timing"  # time-critical, the order's own window
    # administrative
    TRADE_NAME = "trade_name"  # same drug and strength, another name or drug id
    DOSAGE_TEXT = "dosage_text"  # the dosage's supplementary texts only
    SOURCE_VERSION = "source_version"  # the source's version id (reimbursement and the like)


ADMINISTRATIVE: frozenset[Aspect] = frozenset(
    {Aspect.TRADE_NAME, Aspect.DOSAGE_TEXT, Aspect.SOURCE_VERSION})
# These decide whether doses are given at all (a discontinuation, pause or removal, or its
# reversal): in force at once like every change, named first, alerted as high severity.
STOPPING: frozenset[Aspect] = frozenset(
    {Aspect.REMOVED, Aspect.DISCONTINUATION, Aspect.PAUSE})

DA_ASPECT: dict[Aspect, str] = {
    Aspect.NEW_ORDER: "ny ordination",
    Aspect.REMOVED: "fjernet fra medicinkortet",
    Aspect.DISCONTINUATION: "seponering",
    Aspect.PAUSE: "pausering",
    Aspect.DRUG: "lægemiddel",
    Aspect.STRENGTH: "styrke",
    Aspect.FORM: "form",
    Aspect.DOSAGE: "dosering",
    Aspect.ROUTE: "administrationsvej",
    Aspect.INDICATION: "indikation",
    Aspect.TREATMENT_DATES: "behandlingsperiode",
    Aspect.DISPENSING: "dispensering",
    Aspect.TIMING: "tidskritisk/tidsvindue",
    Aspect.TRADE_NAME: "handelsnavn",
    Aspect.DOSAGE_TEXT: "doseringstekst",
    Aspect.SOURCE_VERSION: "version i FMK",
}


@dataclass(frozen=True)
class Classification:
    """The aspects that changed, clinical and administrative, each in Aspect order."""

    clinical: tuple[Aspect, ...]
    administrative: tuple[Aspect, ...]

    @property
    def needs_approval(self) -> bool:
        return bool(self.clinical)

    @property
    def stops(self) -> bool:
        return any(a in STOPPING for a in self.clinical)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _without_texts(dosage: Dosage) -> Dosage:
    """The dosage without its supplementary texts: the prescriber's words, never a change
    of quantity (DOMAIN.md §3)."""
    if isinstance(dosage, StructuredDosage):
        return dataclasses.replace(dosage, periods=tuple(
            dataclasses.replace(p, supplementary_text="") for p in dosage.periods))
    return dosage


def classify_change(before: OrderContent | None, after: OrderContent | None
                    ) -> Classification:
    """What changed from `before` (None: not on the card) to `after` (None: removed from
    the card), split into clinical and administrative aspects. The mirror's own
    cannot-check flag is no change from the source (it has its own path)."""
    if after is None:
        return Classification((Aspect.REMOVED,) if before is not None else (), ())
    if before is None:
        return Classification((Aspect.NEW_ORDER,), ())
    found: set[Aspect] = set()
    b, a = before.drug, after.drug
    # The substance is the ATC code when both have one; without, only the drug id (or the
    # name, when neither has an id) can tell, so another id is another drug: safety first.
    if b.atc_code and a.atc_code:
        same_substance = _norm(b.atc_code) == _norm(a.atc_code)
    elif b.drug_id or a.drug_id:
        same_substance = b.drug_id == a.drug_id
    else:
        same_substance = _norm(b.name) == _norm(a.name)
    if not same_substance:
        found.add(Aspect.DRUG)
    elif _norm(b.name) != _norm(a.name) or b.drug_id != a.drug_id:
        found.add(Aspect.TRADE_NAME)
    if _norm(b.strength) != _norm(a.strength):
        found.add(Aspect.STRENGTH)
    if _norm(b.form) != _norm(a.form):
        found.add(Aspect.FORM)
    if _without_texts(before.dosage) != _without_texts(after.dosage):
        found.add(Aspect.DOSAGE)
    elif before.dosage != after.dosage:
        found.add(Aspect.DOSAGE_TEXT)
    if _norm(before.route) != _norm(after.route):
        found.add(Aspect.ROUTE)
    if _norm(before.indication) != _norm(after.indication):
        found.add(Aspect.INDICATION)
    if (before.treatment_start, before.treatment_started_previously, before.treatment_end) \
            != (after.treatment_start, after.treatment_started_previously, after.treatment_end):
        found.add(Aspect.TREATMENT_DATES)
    if before.dispensing_mode is not after.dispensing_mode:
        found.add(Aspect.DISPENSING)
    if (before.time_critical, before.window_minutes) != (after.time_critical,
                                                         after.window_minutes):
        found.add(Aspect.TIMING)
    if before.pauses != after.pauses:
        found.add(Aspect.PAUSE)
    if before.discontinued_at != after.discontinued_at:
        found.add(Aspect.DISCONTINUATION)
    if before.source_version != after.source_version:
        found.add(Aspect.SOURCE_VERSION)
    ordered = [x for x in Aspect if x in found]
    return Classification(tuple(x for x in ordered if x not in ADMINISTRATIVE),
                          tuple(x for x in ordered if x in ADMINISTRATIVE))


# -- a readable before/after, in Danish ------------------------------------------------------

NOT_ON_CARD = "ikke på medicinkortet"
MAX_TEXT = 2000  # what the store keeps of each side


def _local(clock: FacilityClock, instant: datetime) -> str:
    return f"{clock.local(instant):%d-%m-%Y %H:%M}"


def _dosage_da(dosage: Dosage) -> str:
    return short_text(dosage, "da") or "(ingen tekst)"


def _aspect_da(aspect: Aspect, c: OrderContent, clock: FacilityClock) -> str:
    d = c.drug
    match aspect:
        case Aspect.DRUG | Aspect.TRADE_NAME:
            ids = ", ".join(x for x in (d.drug_id and f"id {d.drug_id}",
                                        d.atc_code and f"ATC {d.atc_code}") if x)
            return f"{d.name} ({ids})" if ids else d.name
        case Aspect.STRENGTH:
            return d.strength or "(ingen)"
        case Aspect.FORM:
            return d.form or "(ingen)"
        case Aspect.DOSAGE | Aspect.DOSAGE_TEXT:
            return _dosage_da(c.dosage)
        case Aspect.ROUTE:
            return c.route or "(ingen)"
        case Aspect.INDICATION:
            return c.indication or "(ingen)"
        case Aspect.TREATMENT_DATES:
            start = ("tidligere påbegyndt" if c.treatment_started_previously else
                     f"{c.treatment_start:%d-%m-%Y}" if c.treatment_start else "(ingen)")
            end = f"{c.treatment_end:%d-%m-%Y}" if c.treatment_end else "uafklaret"
            return f"fra {start} til {end}"
        case Aspect.DISPENSING:
            return ("dosisdispenseret" if c.dispensing_mode is DispensingMode.DOSE_DISPENSED
                    else "hældes af personalet")
        case Aspect.TIMING:
            window = (f", vindue ±{c.window_minutes} min" if c.window_minutes is not None
                      else "")
            return ("tidskritisk" if c.time_critical else "ikke tidskritisk") + window
        case Aspect.PAUSE:
            if not c.pauses:
                return "ingen pause"
            return ", ".join(
                f"pause fra {_local(clock, p.start) if p.start else 'registrering'}"
                f" til {_local(clock, p.end) if p.end else 'uafklaret'}" for p in c.pauses)
        case Aspect.DISCONTINUATION:
            return (f"seponeret {_local(clock, c.discontinued_at)}"
                    if c.discontinued_at is not None else "ikke seponeret")
        case Aspect.SOURCE_VERSION:
            return c.source_version or "(ingen)"
        case _:
            return ""


def _summary_da(c: OrderContent) -> str:
    parts = [" ".join(x for x in (c.drug.name, c.drug.strength, c.drug.form) if x),
             _dosage_da(c.dosage)]
    if c.route:
        parts.append(c.route)
    return "; ".join(parts)


def describe_change(before: OrderContent | None, after: OrderContent | None,
                    aspects: Sequence[Aspect], clock: FacilityClock) -> tuple[str, str]:
    """Before and after in Danish, aspect by aspect ("dosering: 1 tablet morgen"), times in
    the facility's local time (its zone is said where the texts are shown)."""
    def side(c: OrderContent | None) -> str:
        if c is None:
            return NOT_ON_CARD
        shown = [a for a in aspects if a not in (Aspect.NEW_ORDER, Aspect.REMOVED)]
        lines = [f"{DA_ASPECT[a]}: {_aspect_da(a, c, clock)}" for a in shown]
        if not shown:  # a new or removed order: the order in short
            lines = [_summary_da(c)]
        text = "; ".join(lines)
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"

    return side(before), side(after)


# -- pending changes and their approval ------------------------------------------------------

class ChangeStatus(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    # Later versions brought the order back to what was approved: nothing left to approve.
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class PendingChange:
    """The clinical change of one order not yet approved, from the version last approved
    (`base_version`; 0: the order was not on the card) to the latest (`version`). Further
    clinical versions before the approval join it (one approval covers what was read):
    `first_version` names it; its etag changes with every version it takes in, so an
    approval of what was read refuses what was not."""

    facility_id: str
    resident_id: str
    order_id: str
    first_version: int
    base_version: int
    version: int
    aspects: tuple[Aspect, ...]
    drug_name: str
    before: str
    after: str
    detected_at: datetime
    updated_at: datetime
    etag: str
    status: ChangeStatus = ChangeStatus.PENDING
    approved_at: datetime | None = None
    approved_by: str = ""

    @property
    def stops(self) -> bool:
        return any(a in STOPPING for a in self.aspects)

    def warning(self) -> Msg:
        """What the round list and CheckDose say about the order until it is approved
        (the aspects, before and after are the stored Danish texts)."""
        what = ", ".join(DA_ASPECT[a] for a in self.aspects)
        return msg("check.change_not_approved", what=what, before=self.before,
                   after=self.after)


def _etag(etag: str) -> str:
    return str(int(etag) + 1) if etag.isdigit() else "1"


def pending_after(current: PendingChange | None, base: OrderContent | None,
                  previous: OrderVersion | None, new: OrderVersion, clock: FacilityClock,
                  now: datetime) -> PendingChange | None:
    """The order's pending change once the mirror has recorded `new`, or None when there is
    nothing to approve.

    `current`: the pending change before it (None: everything so far approved);
    `base`: the content of `current.base_version` (None: the order was not on the card);
    `previous`: the order's version before `new` (None: none). Without a pending change,
    `new` is classified against `previous`: administrative only is nothing to approve.
    With one, `new` joins it and the whole is classified against what was approved: if
    nothing clinical is left, it is WITHDRAWN. Its etag changes when what it says does."""
    after = None if new.removed else new.content
    if current is None or current.status is not ChangeStatus.PENDING:
        before = None if previous is None or previous.removed else previous.content
        found = classify_change(before, after)
        if not found.needs_approval:
            return None
        text_before, text_after = describe_change(before, after, found.clinical, clock)
        return PendingChange(
            new.facility_id, new.resident_id, new.order_id, first_version=new.version,
            base_version=0 if before is None or previous is None else previous.version,
            version=new.version, aspects=found.clinical,
            drug_name=(after or before or new.content).drug.name, before=text_before,
            after=text_after, detected_at=now, updated_at=now, etag="1")
    found = classify_change(base, after)
    text_before, text_after = describe_change(base, after, found.clinical, clock)
    status = ChangeStatus.PENDING if found.needs_approval else ChangeStatus.WITHDRAWN
    changed = (found.clinical, text_before, text_after, status) != (
        current.aspects, current.before, current.after, current.status)
    return dataclasses.replace(
        current, version=new.version, aspects=found.clinical or current.aspects,
        drug_name=(after or base or new.content).drug.name, before=text_before,
        after=text_after, status=status, updated_at=now,
        etag=_etag(current.etag) if changed else current.etag)


def overdue_changes(pending: Iterable[PendingChange], now: datetime,
                    overdue_minutes: int) -> list[PendingChange]:
    """The clinical changes waiting for approval longer than the facility allows
    (`Facility.approval_overdue_minutes`): pending since at least that long before `now`,
    oldest first. For the inspection checks of the medicine card (issue 16 part 3)."""
    limit = now - timedelta(minutes=overdue_minutes)
    late = [p for p in pending if p.status is ChangeStatus.PENDING and p.detected_at <= limit]
    return sorted(late, key=lambda p: (p.detected_at, p.resident_id, p.order_id))
