"""Inspection checks of the medicine card (issue 16 part 3): what an inspector from
Styrelsen for Patientsikkerhed looks for when going through a resident's medicine list,
found per order from the mirror as it is now.

One pure function per checkpoint; `card_findings` asks each of them for every order of one
resident. Nothing is stored: the findings are computed from the card on every request
(ListCardFindings, `medctl card checks`, the printed report) and on every round list, so a
card that is put right clears them at once. Each finding names its checkpoint and says,
in Danish, what is wrong and what to do. The rules are in docs/domain.md ("Inspection checks
of the medicine card").

Which orders are checked: the card's orders as GetMedicineCard shows them now
(`orders.in_force`), not discontinued. An order whose treatment end has
passed gets the treatment-end finding only (the rest of it no longer matters at the round).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import (
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    TimeKind,
    pn_unlimited,
)
from medservice.domain.facility import DEFAULT_VAGUE_INDICATIONS
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import (
    DispensingMode,
    Drug,
    OrderContent,
    OrderState,
    OrderVersion,
    in_force,
    order_state,
)
from medservice.domain.pn import pn_terms


class Checkpoint(Enum):
    """The checkpoint of the checklist for medicine lists a finding comes from. Values are
    stable (API and JSON); the Danish titles are in CHECKPOINT_TITLES."""

    PN_MAX_PER_DAY = "pn_max_per_day"
    INDICATION = "indication"
    TIMES_OF_DAY = "times_of_day"
    DOSAGE_NOT_STRUCTURED = "dosage_not_structured"
    TREATMENT_END_PASSED = "treatment_end_passed"
    DOSE_DISPENSING_CARD = "dose_dispensing_card"
    # A clinical change from FMK waiting for approval longer than the facility allows: found
    # by the approval feature (issue 16 part 1); `card_findings` takes its findings as
    # `overdue_approvals` and the coordinator wires them in.
    APPROVAL_OVERDUE = "approval_overdue"


# The checkpoints of Styrelsen for Patientsikkerhed's checklist for medicine lists
# (gennemgang af medicinlister ved tilsyn), in our words: what the list must show.
CHECKPOINT_TITLES: Mapping[Checkpoint, str] = {
    Checkpoint.PN_MAX_PER_DAY: "PN-medicin: maksimal døgndosis skal fremgå",
    Checkpoint.INDICATION: "Indikation skal fremgå for hvert præparat",
    Checkpoint.TIMES_OF_DAY: "Tidspunkt for administration skal fremgå",
    Checkpoint.DOSAGE_NOT_STRUCTURED: "Dosis og tidspunkt skal fremgå struktureret",
    Checkpoint.TREATMENT_END_PASSED: "Afsluttet behandling skal være seponeret",
    Checkpoint.DOSE_DISPENSING_CARD: "Overensstemmelse med dosisdispenseringskortet",
    Checkpoint.APPROVAL_OVERDUE: "Ændringer fra FMK skal være godkendt",
}

_NOT_WORD = re.compile(r"[^\w]+")


def normalise_indication(text: str) -> str:
    """Lower case, punctuation as spaces, one space between words: "Ved behov." and
    "ved  behov" are the same indication."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def vague_indications(terms: Iterable[str]) -> frozenset[str]:
    """A facility's vague terms as `missing_or_vague_indication` compares them."""
    return frozenset(normalise_indication(term) for term in terms)


_DEFAULT_VAGUE = vague_indications(DEFAULT_VAGUE_INDICATIONS)


@dataclass(frozen=True)
class CardFinding:
    """One finding about one order (or one line of the dose-dispensing card)."""

    checkpoint: Checkpoint
    resident_id: str
    order_id: str
    drug: Drug
    problem: str  # what is wrong, in Danish
    action: str  # what to do, in Danish

    @property
    def title(self) -> str:
        return CHECKPOINT_TITLES[self.checkpoint]


@dataclass(frozen=True)
class DoseCardLine:
    """One drug medication on a dose-dispensing card. `hidden`: FMK shows no details of
    it (private dose-dispensed medication), so the home cannot see its order."""

    order_id: str
    source_version: str = ""
    drug_name: str = ""
    hidden: bool = False


@dataclass(frozen=True)
class DoseDispensingCard:
    """The pharmacy's dose-dispensing card (FMK GetDoseDispensingCardResponse) as the
    mirror last read it: which orders the pharmacy packs in pouches, for which period."""

    card_id: str
    lines: tuple[DoseCardLine, ...]
    period_start: date | None = None
    period_end: date | None = None
    recorded_at: datetime | None = None  # when the mirror read it

    def line(self, order_id: str) -> DoseCardLine | None:
        return next((li for li in self.lines if li.order_id == order_id), None)


@dataclass(frozen=True)
class CheckedOrder:
    """An order as the checks see it: its content in force now, and its state now."""

    resident_id: str
    order_id: str
    content: OrderContent
    state: OrderState


def current_orders(resident_id: str, orders: Mapping[str, Sequence[OrderVersion]],
                   now: datetime, clock: FacilityClock) -> list[CheckedOrder]:
    """The resident's orders on the card now, as known now (`orders.in_force`: what
    GetMedicineCard shows), each with its state now."""
    out = []
    for order_id, history in sorted(orders.items()):
        found = in_force(list(history), now, now)
        if found is not None:
            content = found[1]
            out.append(CheckedOrder(resident_id, order_id, content,
                                    order_state(content, now, clock)))
    return out


def _finding(order: CheckedOrder, checkpoint: Checkpoint, problem: str, action: str
             ) -> CardFinding:
    return CardFinding(checkpoint, order.resident_id, order.order_id, order.content.drug,
                       problem, action)


# -- one function per checkpoint ---------------------------------------------------------------


def pn_without_daily_maximum(order: CheckedOrder, today: date) -> CardFinding | None:
    """A PN (as-needed) order with no maximum per day: an FMK structured dosage with a PN
    period that has no limit (`dosage.pn_unlimited`: one PN entry, not iterated), or a
    FHIR as-needed timing that limits neither the count nor the quantity (`pn.pn_terms`)."""
    dosage = order.content.dosage
    if isinstance(dosage, StructuredDosage):
        unlimited = any(period.as_needed_doses and pn_unlimited(period)
                        for period in dosage.periods)
    elif isinstance(dosage, TimingDosage) and dosage.as_needed:
        terms = pn_terms(order.content, today)
        unlimited = terms is not None and terms.max_count is None \
            and terms.max_quantity is None
    else:
        unlimited = False
    if not unlimited:
        return None
    return _finding(order, Checkpoint.PN_MAX_PER_DAY, "PN-ordination uden maksimal døgndosis",
                    "Bed lægen angive, hvor mange gange pr. døgn den højst må gives.")


def missing_or_vague_indication(order: CheckedOrder, vague: frozenset[str]
                                ) -> CardFinding | None:
    """No indication, or one that is on the facility's list of vague terms (`vague`, as
    `vague_indications` normalises it; compared whole). An indication that is only an FMK
    code is not vague: FMK's code list names a reason."""
    indication = normalise_indication(order.content.indication)
    if not indication:
        return _finding(order, Checkpoint.INDICATION, "Indikation mangler",
                        "Bed lægen angive, hvad præparatet gives for.")
    if indication in vague:
        return _finding(order, Checkpoint.INDICATION,
                        f"Upræcis indikation: \"{order.content.indication.strip()}\"",
                        "Bed lægen angive en præcis indikation (hvad præparatet gives for).")
    return None


def dosage_without_times(order: CheckedOrder) -> CardFinding | None:
    """A structured dosage with fixed doses that name no time of day ("2 gange daglig"):
    the home must set the times (the service places them by the house rule meanwhile)."""
    dosage = order.content.dosage
    if not isinstance(dosage, StructuredDosage):
        return None
    if any(dose.time_kind is TimeKind.ANY for period in dosage.periods
           for dose in period.fixed_doses):
        return _finding(order, Checkpoint.TIMES_OF_DAY,
                        "Struktureret dosering uden tidspunkter på dagen",
                        "Fastlæg tidspunkterne (morgen, middag, aften, nat eller klokkeslæt) "
                        "og få dem skrevet på ordinationen.")
    return None


def dosage_not_structured(order: CheckedOrder) -> CardFinding | None:
    """A free-text dosage, or one given according to a schema in a local system: it
    cannot be checked at the round and needs a manual schedule."""
    dosage = order.content.dosage
    if isinstance(dosage, FreeTextDosage):
        return _finding(order, Checkpoint.DOSAGE_NOT_STRUCTURED,
                        "Doseringen er fritekst",
                        "Bed lægen ordinere en struktureret dosering; indtil da skal "
                        "doserne planlægges manuelt.")
    if isinstance(dosage, LocalSchemaDosage):
        return _finding(order, Checkpoint.DOSAGE_NOT_STRUCTURED,
                        "Doseringen følger et lokalt skema",
                        "Sørg for at det lokale skema er opdateret og følges; bed lægen om "
                        "en struktureret dosering.")
    return None


def treatment_end_passed(order: CheckedOrder, today: date) -> CardFinding | None:
    """The treatment end date has passed and the order is still on the card, neither
    discontinued nor removed: the doctor must discontinue or extend it."""
    end = order.content.treatment_end
    if end is None or end >= today or order.state is OrderState.DISCONTINUED:
        return None
    return _finding(order, Checkpoint.TREATMENT_END_PASSED,
                    f"Behandlingens slutdato {end:%d-%m-%Y} er passeret, men ordinationen "
                    "er hverken seponeret eller afsluttet på medicinkortet",
                    "Bed lægen seponere ordinationen eller forlænge behandlingen.")


def dose_card_mismatches(resident_id: str, orders: Sequence[CheckedOrder],
                         card: DoseDispensingCard | None) -> list[CardFinding]:
    """The orders and the latest dose-dispensing card disagree:

    - an active dose-dispensed order that the card does not list (or no card is held):
      the pouches lack a drug the resident must have;
    - a line of the card with no order on the medicine card (none, discontinued, ended,
      removed, or one FMK hides): the pouches hold a drug that must not be given;
    - a line whose order is staff-poured: the drug may be given twice (pouch and poured).
    """
    findings = []
    by_id = {o.order_id: o for o in orders}
    for order in orders:
        if order.content.dispensing_mode is not DispensingMode.DOSE_DISPENSED \
                or order.state is not OrderState.ACTIVE:
            continue
        if card is None:
            findings.append(_finding(
                order, Checkpoint.DOSE_DISPENSING_CARD,
                "Dosisdispenseret ordination, men intet dosisdispenseringskort er indlæst",
                "Indlæs beboerens dosisdispenseringskort fra FMK og kontrollér posernes "
                "indhold."))
        elif card.line(order.order_id) is None:
            findings.append(_finding(
                order, Checkpoint.DOSE_DISPENSING_CARD,
                "Dosisdispenseret ordination, som mangler på det seneste "
                "dosisdispenseringskort",
                "Kontakt apoteket og lægen, så kortet rettes; præparatet er ikke i "
                "doseposerne, så giv det efter ordinationen fra særskilt pakning."))
    for line in card.lines if card is not None else ():
        ordered = by_id.get(line.order_id)
        drug = ordered.content.drug if ordered is not None \
            else Drug(line.drug_name or "ukendt lægemiddel")
        if ordered is None and line.hidden:
            # Private in FMK: packed for the resident, but nobody here can check it.
            findings.append(CardFinding(
                Checkpoint.DOSE_DISPENSING_CARD, resident_id, line.order_id, drug,
                "Linje på dosisdispenseringskortet, som FMK ikke viser detaljer om "
                "(privatmarkeret)",
                "Afklar med lægen, hvad doseposerne indeholder, så det kan kontrolleres, "
                "før det gives."))
        elif ordered is None or ordered.state in (OrderState.DISCONTINUED, OrderState.ENDED):
            # Removed, discontinued, ended, or never read (an unreadable new order).
            findings.append(CardFinding(
                Checkpoint.DOSE_DISPENSING_CARD, resident_id, line.order_id, drug,
                "Linje på dosisdispenseringskortet uden gældende ordination på "
                "medicinkortet",
                "Afklar straks med lægen og apoteket, om præparatet skal gives: det er i "
                "doseposerne, men ikke ordineret på medicinkortet."))
        elif ordered.content.dispensing_mode is DispensingMode.STAFF_POURED:
            findings.append(CardFinding(
                Checkpoint.DOSE_DISPENSING_CARD, resident_id, line.order_id, drug,
                "Ordinationen hældes af personalet, men står også på "
                "dosisdispenseringskortet",
                "Giv det kun én gang: afklar med apoteket/lægen, om det er i poserne."))
    return findings


def overdue_approval(resident_id: str, order_id: str, drug: Drug, pending_since: datetime,
                     clock: FacilityClock) -> CardFinding:
    """The APPROVAL_OVERDUE finding of one clinical change that has waited too long. Which
    changes are overdue is the approval feature's rule (issue 16 part 1); this only words
    the finding, so that the wiring maps each overdue change through it."""
    since = clock.local(pending_since).strftime("%d-%m-%Y %H:%M %Z")
    return CardFinding(Checkpoint.APPROVAL_OVERDUE, resident_id, order_id, drug,
                       f"Klinisk ændring fra FMK venter på godkendelse siden {since}",
                       "En sygeplejerske eller vagtansvarlig skal gennemgå og godkende "
                       "ændringen.")


def card_findings(resident_id: str, orders: Mapping[str, Sequence[OrderVersion]],
                  now: datetime, clock: FacilityClock, *,
                  vague: frozenset[str] | None = None,
                  dose_card: DoseDispensingCard | None = None,
                  overdue_approvals: Sequence[CardFinding] = ()) -> list[CardFinding]:
    """Every finding about one resident's card now, by order id then checkpoint. `vague`:
    the facility's vague indications as `vague_indications` gives them (default: the
    default list).
    `overdue_approvals`: the APPROVAL_OVERDUE findings (the approval feature's rule decides
    them, `card_changes.overdue_changes`); this resident's are taken."""
    vague = vague if vague is not None else _DEFAULT_VAGUE
    checked = current_orders(resident_id, orders, now, clock)
    on_card = [o for o in checked if o.state is not OrderState.DISCONTINUED]
    today = clock.local(now).date()
    findings: list[CardFinding] = []
    for order in on_card:
        ended = treatment_end_passed(order, today)
        if ended is not None:
            findings.append(ended)
            continue
        for found in (pn_without_daily_maximum(order, today),
                      missing_or_vague_indication(order, vague),
                      dosage_without_times(order),
                      dosage_not_structured(order)):
            if found is not None:
                findings.append(found)
    findings += dose_card_mismatches(resident_id, on_card, dose_card)
    findings += [f for f in overdue_approvals if f.resident_id == resident_id]
    order_of = list(Checkpoint)
    findings.sort(key=lambda f: (f.order_id, order_of.index(f.checkpoint)))
    return findings
