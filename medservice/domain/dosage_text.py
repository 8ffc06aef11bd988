"""Short human texts of dosages, in Danish and English.

The Danish text reads like FMK's own short texts ("1 tablet 2 gange daglig", "1 tablet
morgen og aften", "1 tablet efter behov, højst 3 gange daglig"), which are what staff read
everywhere else (DOMAIN.md §3). It follows the rules of FMK's dosage-to-text library
(trifork/fmk-dosis-til-tekst): a list of shapes, each with its phrasing, tried in order; the
first that fits in 70 characters wins. English uses the same shapes with English words
("1 tablet twice daily", "1 tablet morning and evening"); supplementary texts are the
prescriber's own words and stay as written.

A dosage that fits no shape gets a summary ("Doseringsforløb: 1-2 tabletter, højst 3 gange
daglig (2 perioder)"); `short_text` never raises for a valid dosage. A free-text dosage is
shown as written, whatever its length: it is the prescriber's instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from medservice.domain.dosage import (
    NAMED_TIME_KINDS,
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.fhir_timing import TimingDosage, timing_text
from medservice.domain.orders import Dosage

Language = Literal["da", "en"]
MAX_LENGTH = 70

_NAMED_ORDER = (TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT)
_FRACTIONS = {
    Decimal("0.25"): "1/4", Decimal("0.5"): "1/2", Decimal("0.75"): "3/4",
    Decimal("1.5"): "1 1/2",
}
_BOTH_SIDES = (  # supplementary "1 i hvert øje" -> " i begge øjne" (FMK's eye/ear rule)
    ("i hvert øje", "i begge øjne", "in both eyes"),
    ("i hvert øre", "i begge ører", "in both ears"),
    ("i hvert næsebor", "i begge næsebor", "in both nostrils"),
)
# The DKMA dosage units (DosageUnits.json) in English: Danish singular, plural, English
# singular, plural. A unit not here keeps its Danish text.
_UNITS_IN_ENGLISH = (
    ("ampul", "ampuller", "ampoule", "ampoules"),
    ("applikatordosis", "applikatordoser", "applicator dose", "applicator doses"),
    ("beholder", "beholdere", "container", "containers"),
    ("brev", "breve", "sachet", "sachets"),
    ("brusetablet", "brusetabletter", "effervescent tablet", "effervescent tablets"),
    ("dosis", "doser", "dose", "doses"),
    ("dråbe", "dråber", "drop", "drops"),
    ("engangssprøjte", "engangssprøjter", "prefilled syringe", "prefilled syringes"),
    ("enhed", "enheder", "unit", "units"),
    ("flaske", "flasker", "bottle", "bottles"),
    ("hætteglas", "hætteglas", "vial", "vials"),
    ("IE", "IE", "IU", "IU"),
    ("implantat", "implantater", "implant", "implants"),
    ("indgnidning", "indgnidninger", "rub", "rubs"),
    ("inhalationskapsel", "inhalationskapsler", "inhalation capsule", "inhalation capsules"),
    ("injektionspen", "injektionspenne", "injection pen", "injection pens"),
    ("injektionssprøjte", "injektionssprøjter", "syringe", "syringes"),
    ("kapsel", "kapsler", "capsule", "capsules"),
    ("måleske", "måleskeer", "measuring spoon", "measuring spoons"),
    ("pensling", "penslinger", "painting", "paintings"),
    ("plaster", "plastre", "patch", "patches"),
    ("pust", "pust", "puff", "puffs"),
    ("påføring", "påføringer", "application", "applications"),
    ("påsmøring", "påsmøringer", "application", "applications"),
    ("rektal stikpille", "rektale stikpiller", "suppository", "suppositories"),
    ("rektaltube", "rektaltuber", "rectal tube", "rectal tubes"),
    ("resoriblet", "resoribletter", "sublingual tablet", "sublingual tablets"),
    ("spiral", "spiraler", "coil", "coils"),
    ("sprøjte til munden", "sprøjter til munden", "oral syringe", "oral syringes"),
    ("stribe", "striber", "strip", "strips"),
    ("sug", "sug", "inhalation", "inhalations"),
    ("sugetablet", "sugetabletter", "lozenge", "lozenges"),
    ("tablet", "tabletter", "tablet", "tablets"),
    ("tyggegummi", "tyggegummier", "chewing gum", "chewing gums"),
    ("tyggetablet", "tyggetabletter", "chewable tablet", "chewable tablets"),
    ("vaginalindlæg", "vaginalindlæg", "vaginal insert", "vaginal inserts"),
    ("vaginaltablet", "vaginaltabletter", "vaginal tablet", "vaginal tablets"),
    ("vagitorie", "vagitorier", "pessary", "pessaries"),
    ("vask", "vask", "wash", "washes"),
    ("stk", "stk", "piece", "pieces"),
)
_ENGLISH_UNITS = {
    danish: (singular, plural)
    for da_singular, da_plural, singular, plural in _UNITS_IN_ENGLISH
    for danish in (da_singular, da_plural)
}


@dataclass(frozen=True)
class _Words:
    """The words of one language; phrases are built by the shapes below."""

    and_: str
    labels: dict[TimeKind, str]
    clock: str  # "kl. {}"
    weekdays: tuple[str, ...]  # Monday first
    as_needed: str
    daily: str
    then: str
    also: str
    at_most: Callable[[str], str]
    times: Callable[[int], str]  # "2 gange" / "twice"
    times_daily: Callable[[int], str]
    every: Callable[[int, str], str]  # every(2, "dag") -> "hver 2. dag"
    weekday_every_week: Callable[[str], str]
    for_days: Callable[[int], str]  # " i 3 dage", " i 1 uge", " i 2 uger"
    pause: Callable[[int], str]
    on_days: Callable[[list[int]], str]
    decimal_point: str
    summary: str
    no_doses: str
    periods: Callable[[int], str]


def _join(items: list[str], and_: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {and_} " + items[-1]


def _gange(n: int) -> str:
    return f"{n} gang" if n <= 1 else f"{n} gange"


def _da_duration(days: int) -> str:
    if days == 7:
        return " i 1 uge"
    if days % 7 == 0:
        return f" i {days // 7} uger"
    return f" i {days} dage"


def _da_pause(days: int) -> str:
    if days == 7:
        return ", herefter en uges pause"
    if days % 7 == 0:
        return f", herefter {days // 7} ugers pause"
    if days == 1:
        return ", herefter 1 dags pause"
    return f", herefter {days} dages pause"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _en_times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _en_duration(days: int) -> str:
    if days % 7 == 0:
        weeks = days // 7
        return f" for {weeks} week" + ("s" if weeks > 1 else "")
    return f" for {days} day" + ("s" if days > 1 else "")


def _en_pause(days: int) -> str:
    if days % 7 == 0:
        weeks = days // 7
        return f", then a break of {weeks} week" + ("s" if weeks > 1 else "")
    return f", then a break of {days} day" + ("s" if days > 1 else "")


_DA = _Words(
    and_="og",
    labels={TimeKind.MORNING: "morgen", TimeKind.NOON: "middag", TimeKind.EVENING: "aften",
            TimeKind.NIGHT: "før sengetid"},
    clock="kl. {}",
    weekdays=("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
    as_needed="efter behov",
    daily="daglig",
    then=", herefter ",
    also=", samt ",
    at_most=lambda times: f", højst {times} daglig",
    times=_gange,
    times_daily=lambda n: f"{_gange(n)} daglig",
    every=lambda n, unit: f"hver {n}. {unit}",
    weekday_every_week=lambda day: f"{day} hver uge",
    for_days=_da_duration,
    pause=_da_pause,
    on_days=lambda days: " dag " + _join([str(d) for d in days], "og"),
    decimal_point=",",
    summary="Doseringsforløb",
    no_doses="Ingen dosering",
    periods=lambda n: f" ({n} perioder)",
)
_EN = _Words(
    and_="and",
    labels={TimeKind.MORNING: "morning", TimeKind.NOON: "noon", TimeKind.EVENING: "evening",
            TimeKind.NIGHT: "at bedtime"},
    clock="at {}",
    weekdays=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    as_needed="as needed",
    daily="daily",
    then=", then ",
    also=", and ",
    at_most=lambda times: f", at most {times} daily",
    times=_en_times,
    times_daily=lambda n: f"{_en_times(n)} daily",
    every=lambda n, unit: f"every {_ordinal(n)} {unit}",
    weekday_every_week=lambda day: f"every {day}",
    for_days=_en_duration,
    pause=_en_pause,
    on_days=lambda days: (" on day" + ("s " if len(days) > 1 else " ")
                          + _join([str(d) for d in days], "and")),
    decimal_point=".",
    summary="Dosage schedule",
    no_doses="No doses",
    periods=lambda n: f" ({n} periods)",
)
_UNIT_WORDS = {"dag": "day", "uge": "week", "måned": "month"}


def short_text(dosage: Dosage, lang: Language = "da") -> str:
    """A short text of the dosage in Danish ("da") or English ("en")."""
    if lang not in ("da", "en"):
        raise InvalidArgument([FieldViolation("lang", "must be da or en")])
    if isinstance(dosage, FreeTextDosage):
        return dosage.text
    if isinstance(dosage, LocalSchemaDosage):
        return ("Dosering efter skema i lokalt system" if lang == "da"
                else "Dosage according to a schema in the local system")
    if isinstance(dosage, TimingDosage):
        return timing_text(dosage, lang)
    text = _Text(dosage, _DA if lang == "da" else _EN, lang)
    return text.shaped() or text.summary()


# -- the shapes ----------------------------------------------------------------------------


def _only(dosage: StructuredDosage) -> tuple[DosagePeriod, DosageDay] | None:
    """The single period with a single day, if that is the dosage's shape."""
    if len(dosage.periods) != 1 or len(dosage.periods[0].days) != 1:
        return None
    return dosage.periods[0], dosage.periods[0].days[0]


def _kinds(doses: tuple[DosageDose, ...] | list[DosageDose]) -> set[TimeKind]:
    return {d.time_kind for d in doses}


def _all_doses(period: DosagePeriod) -> list[DosageDose]:
    return [d for day in period.days for d in day.doses]


def _same(doses: list[DosageDose] | tuple[DosageDose, ...]) -> bool:
    """All doses alike: time, quantity and as-needed flag."""
    first = doses[0]
    return all((d.time_kind, d.clock_time, d.amount, d.as_needed)
               == (first.time_kind, first.clock_time, first.amount, first.as_needed)
               for d in doses)


def _days_alike(period: DosagePeriod) -> bool:
    first = period.days[0].doses
    return all(day.doses == first for day in period.days)


def _from_day_one(period: DosagePeriod) -> bool:
    return [d.day_number for d in period.days] == list(range(1, len(period.days) + 1))


def _named_sorted(doses: tuple[DosageDose, ...]) -> list[DosageDose]:
    return sorted(doses, key=lambda d: _NAMED_ORDER.index(d.time_kind))


class _Text:
    """The phrasing of one structured dosage in one language."""

    def __init__(self, dosage: StructuredDosage, words: _Words, lang: Language) -> None:
        self.dosage = dosage
        self.words = words
        self.lang = lang

    # -- pieces ------------------------------------------------------------------------

    def quantity(self, value: Decimal) -> str:
        if value in _FRACTIONS:
            return _FRACTIONS[value]
        text = format(value.normalize(), "f")
        return text.replace(".", self.words.decimal_point)

    def unit(self, amount: Amount) -> str:
        unit: DoseUnit = self.dosage.unit
        plural = amount.high > 1 or amount.high == 0
        if self.lang == "en":
            english = _ENGLISH_UNITS.get(unit.plural if plural else unit.singular)
            if english:
                return english[1] if plural else english[0]
        return unit.plural if plural else unit.singular

    def amount(self, amount: Amount) -> str:
        if amount.quantity is not None:
            value = self.quantity(amount.quantity)
        else:
            value = f"{self.quantity(amount.low)}-{self.quantity(amount.high)}"
        return f"{value} {self.unit(amount)}"

    def label(self, dose: DosageDose) -> str:
        if dose.time_kind is TimeKind.CLOCK and dose.clock_time is not None:
            return self.words.clock.format(dose.clock_time.strftime("%H:%M"))
        return self.words.labels.get(dose.time_kind, "")

    def dose(self, dose: DosageDose, amount: Amount | None = None) -> str:
        """"1 tablet", "1 tablet morgen", "1 tablet kl. 08:00"."""
        text = self.amount(amount or dose.amount)
        label = self.label(dose)
        return f"{text} {label}" if label else text

    def supplement(self, period: DosagePeriod) -> str:
        text = period.supplementary_text
        if not text:
            return ""
        return text if text[0] in ",." else f" {text}"

    def weekday(self, period: DosagePeriod, day_number: int) -> int:
        return (period.start_date + timedelta(days=day_number - 1)).weekday()

    def weekdays(self, period: DosagePeriod) -> str:
        days = sorted({self.weekday(period, d.day_number) for d in period.days})
        return _join([self.words.weekdays[d] for d in days], self.words.and_)

    def times_of_day(self, day: DosageDay, halve: bool = False) -> str:
        """"1 tablet morgen og aften", "2 tabletter morgen, 1 tablet middag og 1 tablet
        aften": the first dose in full, the rest by label when all quantities agree."""
        doses = _named_sorted(day.doses)
        alike = len({d.amount for d in doses}) == 1
        parts = []
        for i, dose in enumerate(doses):
            amount = _halved(dose.amount) if halve else dose.amount
            part = self.dose(dose, amount) if i == 0 or not alike else self.label(dose)
            if dose.as_needed:
                part += f" {self.words.as_needed}"
            parts.append(part)
        return _join(parts, self.words.and_)

    def iteration(self, period: DosagePeriod, day: DosageDay, n: int, plain_daily: bool
                  ) -> str:
        """How often a single repeated day recurs (FMK's repeated-dosage phrasing)."""
        w, interval = self.words, period.iteration_interval_days
        if interval == 1:
            if n > 1:
                return f" {w.times_daily(n)}"
            return f" {w.times_daily(1)}" if plain_daily else f" {w.daily}"
        if interval % 30 == 0:
            months = interval // 30
            if months == 1:
                if n == 1:
                    return " 1 gang om måneden" if self.lang == "da" else " once a month"
                return (f" {n} gange samme dag 1 gang om måneden" if self.lang == "da"
                        else f" {w.times(n)} on the same day once a month")
            if n == 1:
                return f" {self.every(months, 'måned')}"
        name = w.weekdays[self.weekday(period, day.day_number)]
        if interval % 7 == 0:
            weeks = interval // 7
            if weeks == 1:
                every_week = w.weekday_every_week(name)
                return f" {every_week}" if n == 1 else f" {w.times(n)} {every_week}"
            if n == 1:
                return (f" {name} {self.every(weeks, 'uge')}" if self.lang == "da"
                        else f" on {name} {self.every(weeks, 'uge')}")
        if n == 1:
            return f" {self.every(interval, 'dag')}"
        return (f" {n} gange samme dag {self.every(interval, 'dag')}" if self.lang == "da"
                else f" {w.times(n)} on the same day {self.every(interval, 'dag')}")

    def every(self, n: int, unit: str) -> str:
        return self.words.every(n, unit if self.lang == "da" else _UNIT_WORDS[unit])

    # -- shapes, in FMK's order ---------------------------------------------------------

    def shaped(self) -> str | None:
        """The first shape's text that fits in MAX_LENGTH, or None."""
        if any(not day.doses for p in self.dosage.periods for day in p.days):
            return None  # a day without doses fits no shape; only a summary says it
        for shape in self.shapes():
            text = shape()
            if text is not None and len(text) <= MAX_LENGTH:
                return text
        return None

    def shapes(self) -> list[Callable[[], str | None]]:
        return [
            self.times_of_day_both_sides, self.times_of_day_daily, self.times_of_day_weekly,
            self.repeated_both_sides, self.repeated, self.single_dose,
            self.times_of_day_for_days, self.as_needed_once, self.for_a_number_of_days,
            self.as_needed_daily, self.weekly, self.fixed_and_as_needed_plain,
            self.times_of_day_and_as_needed, self.on_listed_days, self.weeks_on_and_off,
            self.weekday_for_weeks, self.two_periods,
        ]

    def times_of_day_both_sides(self) -> str | None:
        """"1 dråbe morgen og aften i begge øjne" (2 drops, "1 i hvert øje")."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 1 or day.day_number != 1:
            return None
        if not _kinds(day.doses) <= NAMED_TIME_KINDS or any(d.as_needed for d in day.doses):
            return None
        if len({d.amount for d in day.doses}) != 1:
            return None
        sides = self.both_sides(period, day.doses[0].amount)
        return None if sides is None else self.times_of_day(day, halve=True) + sides

    def both_sides(self, period: DosagePeriod, amount: Amount) -> str | None:
        q = amount.quantity
        if q is None or q % 2 != 0:
            return None
        text = period.supplementary_text
        half = format((q / 2).normalize(), "f")
        for each, both_da, both_en in _BOTH_SIDES:
            if text in (f"{half} {each}", f", {half} {each}"):
                return f" {both_da if self.lang == 'da' else both_en}"
        return None

    def times_of_day_daily(self) -> str | None:
        """"1 tablet morgen og aften": daily, times of day only."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 1 or day.day_number != 1:
            return None
        if not _kinds(day.doses) <= NAMED_TIME_KINDS:
            return None
        return self.times_of_day(day) + self.supplement(period)

    def times_of_day_weekly(self) -> str | None:
        """"1 tablet morgen mandag hver uge"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        if not self.weekly_days(period) or not _days_alike(period):
            return None
        doses = _all_doses(period)
        if not _kinds(doses) <= NAMED_TIME_KINDS or any(d.as_needed for d in doses):
            return None
        return (f"{self.times_of_day(period.days[0])} "
                f"{self.words.weekday_every_week(self.weekdays(period))}"
                f"{self.supplement(period)}")

    def weekly_days(self, period: DosagePeriod) -> bool:
        return (period.iteration_interval_days == 7 and period.start_date != period.end_date
                and 1 <= len(period.days) <= 7 and period.days[0].day_number != 0
                and period.days[-1].day_number <= 7)

    def repeated_both_sides(self) -> str | None:
        """"1 dråbe 2 gange daglig i begge øjne" (2 drops, "1 i hvert øje")."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 1 or day.day_number != 1:
            return None
        if TimeKind.CLOCK in _kinds(day.doses) or any(d.as_needed for d in day.doses):
            return None
        if not _same(day.doses):
            return None
        sides = self.both_sides(period, day.doses[0].amount)
        if sides is None:
            return None
        n = len(day.doses)
        often = self.words.daily if n == 1 else self.words.times_daily(n)
        return f"{self.dose(day.doses[0], _halved(day.doses[0].amount))} {often}{sides}"

    def repeated(self) -> str | None:
        """"1 tablet 2 gange daglig", "1 tablet mandag hver uge", "1 tablet hver 2. dag"."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days == 0 or any(d.as_needed for d in day.doses):
            return None
        if not _same(day.doses):
            return None
        first = day.doses[0]
        plain_daily = (first.time_kind is TimeKind.ANY and first.amount.quantity is not None
                       and first.amount.quantity > 1)
        iteration = self.iteration(period, day, len(day.doses), plain_daily)
        return self.dose(first) + iteration + self.supplement(period)

    def single_dose(self) -> str | None:
        """One dose, once: "1 plaster 5 timer før virkning ønskes"."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        once = day.day_number == 1 and period.start_date == period.end_date
        if period.iteration_interval_days != 0 or not (day.day_number == 0 or once):
            return None
        if len(day.doses) != 1 or day.doses[0].as_needed:
            return None
        if day.doses[0].time_kind in NAMED_TIME_KINDS:
            return None
        text = period.supplementary_text
        return self.dose(day.doses[0]) + (f" {text}" if text else "")

    def times_of_day_for_days(self) -> str | None:
        """"1 kapsel morgen og aften i 7 dage"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        if period.iteration_interval_days != 0 or len(period.days) < 2:
            return None
        if period.start_date == period.end_date:
            return None
        if not _kinds(_all_doses(period)) <= NAMED_TIME_KINDS:
            return None
        if not _days_alike(period) or not _from_day_one(period):
            return None
        days = period.days[-1].day_number
        for_days = f" i {days} dage" if self.lang == "da" else f" for {days} days"
        return self.times_of_day(period.days[0]) + self.supplement(period) + for_days

    def as_needed_once(self) -> str | None:
        """"1 tablet efter behov" (not iterated, one as-needed dose)."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 0 or len(day.doses) != 1:
            return None
        if not day.doses[0].as_needed:
            return None
        return f"{self.dose(day.doses[0])} {self.words.as_needed}{self.supplement(period)}"

    def for_a_number_of_days(self) -> str | None:
        """"1 kapsel 2 gange daglig i 2 dage", "4 tabletter 1 gang", "5 ml efter behov 4
        gange"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        if period.iteration_interval_days != 0 or not period.days:
            return None
        doses = _all_doses(period)
        if not _from_day_one(period) or _kinds(doses) & NAMED_TIME_KINDS:
            return None
        if not _days_alike(period) or not _same(doses):
            return None
        w, day = self.words, period.days[0]
        n = len(day.doses)
        text = self.dose(day.doses[0])
        if day.doses[0].as_needed:
            text += f" {w.as_needed}"
        if len(period.days) == 1:
            text += f" {w.times(n)}"
        else:
            text += f" {w.times_daily(n)}{w.for_days(period.days[-1].day_number)}"
        return text + self.supplement(period)

    def as_needed_daily(self) -> str | None:
        """"1 tablet efter behov, højst 3 gange daglig"."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 1 or day.day_number != 1:
            return None
        if not all(d.as_needed for d in day.doses) or not _same(day.doses):
            return None
        w = self.words
        return (f"{self.dose(day.doses[0])} {w.as_needed}{w.at_most(w.times(len(day.doses)))}"
                f"{self.supplement(period)}")

    def weekly(self) -> str | None:
        """"2 brusetabletter mandag og torsdag hver uge"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        if not self.weekly_days(period) or not _days_alike(period):
            return None
        doses = _all_doses(period)
        if not _same(doses) or _kinds(doses) - {TimeKind.ANY}:
            return None
        if any(d.as_needed for d in doses):
            return None
        n = len(period.days[0].doses)
        often = f" {self.words.times_daily(n)}" if n > 1 else ""
        return (f"{self.dose(doses[0])}{often} "
                f"{self.words.weekday_every_week(self.weekdays(period))}"
                f"{self.supplement(period)}")

    def fixed_and_as_needed_plain(self) -> str | None:
        """"1-2 stk 2-3 gange daglig": fixed doses plus as-needed ones of the same size."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 1 or _kinds(day.doses) != {TimeKind.ANY}:
            return None
        needed = sum(1 for d in day.doses if d.as_needed)
        if needed in (0, len(day.doses)) or len({d.amount for d in day.doses}) != 1:
            return None
        total = len(day.doses)
        times = f"{total - needed}-{total} " + ("gange daglig" if self.lang == "da"
                                                else "times daily")
        return f"{self.dose(day.doses[0])} {times}{self.supplement(period)}"

    def times_of_day_and_as_needed(self) -> str | None:
        """"1 tablet morgen, samt 1 tablet efter behov, højst 2 gange daglig"."""
        only = _only(self.dosage)
        if not only:
            return None
        period, day = only
        if period.iteration_interval_days != 1 or day.day_number != 1:
            return None
        fixed = tuple(d for d in day.doses if not d.as_needed)
        needed = [d for d in day.doses if d.as_needed]
        if not fixed or not needed or not _kinds(fixed) <= NAMED_TIME_KINDS:
            return None
        if TimeKind.CLOCK in _kinds(day.doses):
            return None
        w = self.words
        fixed_text = self.times_of_day(DosageDay(1, fixed)) + self.supplement(period)
        as_needed = (f"{self.dose(needed[0])} {w.as_needed}{w.at_most(w.times(len(needed)))}"
                     f"{self.supplement(period)}")
        return fixed_text + w.also + as_needed

    def on_listed_days(self) -> str | None:
        """"5 tabletter 1 gang daglig dag 1 og 3"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        if period.iteration_interval_days != 0 or len(period.days) <= 1:
            return None
        doses = _all_doses(period)
        kinds = _kinds(doses)
        if not _days_alike(period) or not _same(doses) or any(d.as_needed for d in doses):
            return None
        if TimeKind.CLOCK in kinds or (kinds & NAMED_TIME_KINDS and TimeKind.ANY in kinds):
            return None
        day = period.days[0]
        if kinds <= NAMED_TIME_KINDS:
            text = self.times_of_day(day)
        else:
            text = f"{self.dose(day.doses[0])} {self.words.times_daily(len(day.doses))}"
        return (text + self.words.on_days([d.day_number for d in period.days])
                + self.supplement(period))

    def weeks_on_and_off(self) -> str | None:
        """"1 tablet daglig i 3 uger, herefter en uges pause"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        interval = period.iteration_interval_days
        if interval % 7 or period.start_date == period.end_date or not period.days:
            return None
        if period.days[0].day_number > 7 or not _from_day_one(period):
            return None
        doses = _all_doses(period)
        if not _days_alike(period) or not _same(doses) or any(d.as_needed for d in doses):
            return None
        if TimeKind.CLOCK in _kinds(doses):
            return None
        w = self.words
        n = len(period.days[0].doses)
        text = f"{self.dose(doses[0])} {w.times_daily(n) if n > 1 else w.daily}"
        days = len(period.days)
        pause = interval - days
        if pause > 0:
            text += (" i en uge" if days == 7 and self.lang == "da" else w.for_days(days))
            text += w.pause(pause)
        return text

    def weekday_for_weeks(self) -> str | None:
        """"1 plaster daglig mandag i de første 3 uger, herefter 1 uges pause"."""
        if len(self.dosage.periods) != 1:
            return None
        period = self.dosage.periods[0]
        interval = period.iteration_interval_days
        if interval % 7 or period.start_date == period.end_date or len(period.days) < 2:
            return None
        for week, day in enumerate(period.days):
            if not week * 7 + 1 <= day.day_number <= week * 7 + 7:
                return None
        if len({self.weekday(period, d.day_number) for d in period.days}) != 1:
            return None
        doses = _all_doses(period)
        if not _days_alike(period) or not _same(doses) or any(d.as_needed for d in doses):
            return None
        if TimeKind.CLOCK in _kinds(doses):
            return None
        w = self.words
        n = len(period.days[0].doses)
        name = w.weekdays[self.weekday(period, period.days[0].day_number)]
        if self.lang == "da":
            text = f"{self.dose(doses[0])} {w.times_daily(n) if n > 1 else w.daily} {name}"
        else:
            text = self.dose(doses[0]) + (f" {w.times(n)}" if n > 1 else "") + f" on {name}s"
        weeks = len(period.days)
        pause = interval // 7 - weeks
        if pause > 0:
            if self.lang == "da":
                text += " i første uge" if weeks == 1 else f" i de første {weeks} uger"
                text += ", herefter 1 uges pause" if pause == 1 else \
                    f", herefter {pause} ugers pause"
            else:
                text += " in the first week" if weeks == 1 else \
                    f" in the first {weeks} weeks"
                text += w.pause(pause * 7)
        return text

    def two_periods(self) -> str | None:
        """"første dag 2 tabletter 1 gang, herefter 1 tablet daglig"."""
        if len(self.dosage.periods) != 2:
            return None
        first, then = self.dosage.periods
        if first.iteration_interval_days != 0 or not first.days:
            return None
        if any(d.as_needed for d in _all_doses(first) + _all_doses(then)):
            return None
        first_text = _Text(StructuredDosage(self.dosage.unit, (first,)), self.words,
                           self.lang).shaped()
        then_text = _Text(StructuredDosage(self.dosage.unit, (then,)), self.words,
                          self.lang).shaped()
        if first_text is None or then_text is None:
            return None
        days = first.days[-1].day_number
        w = self.words
        if days == 1:
            lead = "første dag " if self.lang == "da" else "first day "
            return f"{lead}{first_text}{w.then}{then_text}"
        tail = w.for_days(days)
        if tail in first_text:
            return f"{first_text}{w.then}{then_text}"
        return f"{first_text}{tail}{w.then}{then_text}"

    # -- when no shape fits --------------------------------------------------------------

    def summary(self) -> str:
        """"Doseringsforløb: 1-2 tabletter, højst 3 gange daglig (2 perioder)"."""
        w = self.words
        doses = [d for p in self.dosage.periods for d in _all_doses(p)]
        if not doses:
            return w.no_doses
        low = min(d.amount.low for d in doses)
        high = max(d.amount.high for d in doses)
        amount = Amount(quantity=low) if low == high else Amount(min_quantity=low,
                                                                 max_quantity=high)
        per_day = max(len(day.doses) for p in self.dosage.periods for day in p.days)
        text = f"{w.summary}: {self.amount(amount)}{w.at_most(w.times(per_day))}"
        if all(d.as_needed for d in doses):
            text += f" {w.as_needed}"
        if len(self.dosage.periods) > 1:
            text += w.periods(len(self.dosage.periods))
        return text


def _halved(amount: Amount) -> Amount:
    assert amount.quantity is not None
    return Amount(quantity=amount.quantity / 2)
