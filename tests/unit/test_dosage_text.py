"""Short dosage texts in Danish (FMK's phrasing) and English."""

from __future__ import annotations

from datetime import date, time

import pytest

from medservice.domain.dosage import (
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
from medservice.domain.dosage_text import MAX_LENGTH, short_text
from medservice.domain.errors import InvalidArgument

TABLET = DoseUnit("tablet", "tabletter")
DROP = DoseUnit("dråbe", "dråber")
MON = date(2013, 6, 3)
END = date(2015, 6, 1)
M, N, E, B, A = (TimeKind.MORNING, TimeKind.NOON, TimeKind.EVENING, TimeKind.NIGHT,
                 TimeKind.ANY)


def d(kind: TimeKind = A, q: str = "1", pn: bool = False, at: time | None = None
      ) -> DosageDose:
    return DosageDose(kind, at, Amount.exact(q), pn)


def dosage(interval: int, *days: tuple[int, list[DosageDose]], text: str = "",
           unit: DoseUnit = TABLET, start: date = MON, end: date | None = END
           ) -> StructuredDosage:
    return StructuredDosage(unit, (DosagePeriod(start, end, interval, text, tuple(
        DosageDay(n, tuple(doses)) for n, doses in days)),))


CASES = [
    (dosage(1, (1, [d(), d()])), "1 tablet 2 gange daglig", "1 tablet twice daily"),
    (dosage(1, (1, [d()])), "1 tablet daglig", "1 tablet daily"),
    (dosage(1, (1, [d(q="2")])), "2 tabletter 1 gang daglig", "2 tablets once daily"),
    (dosage(1, (1, [d(q="0.5")] * 3)), "1/2 tablet 3 gange daglig",
     "1/2 tablet 3 times daily"),
    (dosage(1, (1, [d(q="1.5")])), "1 1/2 tabletter 1 gang daglig",
     "1 1/2 tablets once daily"),
    (dosage(1, (1, [d(q="2.5")])), "2,5 tabletter 1 gang daglig", "2.5 tablets once daily"),
    (dosage(1, (1, [d(M), d(E)])), "1 tablet morgen og aften",
     "1 tablet morning and evening"),
    (dosage(1, (1, [d(M), d(N), d(E), d(B)])),
     "1 tablet morgen, middag, aften og før sengetid",
     "1 tablet morning, noon, evening and at bedtime"),
    (dosage(1, (1, [d(M, "2"), d(E)])), "2 tabletter morgen og 1 tablet aften",
     "2 tablets morning and 1 tablet evening"),
    (dosage(1, (1, [d(B)]), text="ved måltid"), "1 tablet før sengetid ved måltid",
     "1 tablet at bedtime ved måltid"),
    (dosage(1, (1, [d(pn=True)] * 3)), "1 tablet efter behov, højst 3 gange daglig",
     "1 tablet as needed, at most 3 times daily"),
    (dosage(0, (0, [d(pn=True)]), text=", ved smerter", end=None),
     "1 tablet efter behov, ved smerter", "1 tablet as needed, ved smerter"),
    (dosage(7, (1, [d()])), "1 tablet mandag hver uge", "1 tablet every Monday"),
    (dosage(7, (1, [d(q="2")]), (4, [d(q="2")])), "2 tabletter mandag og torsdag hver uge",
     "2 tablets every Monday and Thursday"),
    (dosage(14, (1, [d()])), "1 tablet mandag hver 2. uge",
     "1 tablet on Monday every 2nd week"),
    (dosage(2, (1, [d()])), "1 tablet hver 2. dag", "1 tablet every 2nd day"),
    (dosage(30, (1, [d()])), "1 tablet 1 gang om måneden", "1 tablet once a month"),
    (dosage(90, (1, [d()])), "1 tablet hver 3. måned", "1 tablet every 3rd month"),
    (dosage(0, *((n, [d(), d()]) for n in (1, 2, 3))), "1 tablet 2 gange daglig i 3 dage",
     "1 tablet twice daily for 3 days"),
    (dosage(0, (1, [d(q="4")])), "4 tabletter 1 gang", "4 tablets once"),
    (dosage(0, (1, [d(q="5")]), (3, [d(q="5")])), "5 tabletter 1 gang daglig dag 1 og 3",
     "5 tablets once daily on days 1 and 3"),
    (dosage(28, *((n, [d()]) for n in range(1, 22))),
     "1 tablet daglig i 3 uger, herefter en uges pause",
     "1 tablet daily for 3 weeks, then a break of 1 week"),
    (dosage(0, *((n, [d(M), d(E)]) for n in range(1, 8))),
     "1 tablet morgen og aften i 7 dage", "1 tablet morning and evening for 7 days"),
    (dosage(1, (1, [d(q="2")] * 3), text=", 1 i hvert øje", unit=DROP),
     "1 dråbe 3 gange daglig i begge øjne", "1 drop 3 times daily in both eyes"),
    (dosage(1, (1, [d(), d(), d(pn=True)])), "1 tablet 2-3 gange daglig",
     "1 tablet 2-3 times daily"),
    (dosage(1, (1, [d(at=time(8, 15), kind=TimeKind.CLOCK)])), "1 tablet kl. 08:15 daglig",
     "1 tablet at 08:15 daily"),
    (StructuredDosage(TABLET, (
        DosagePeriod(MON, MON, 0, "", (DosageDay(1, (d(q="2"),)),)),
        DosagePeriod(date(2013, 6, 4), END, 1, "", (DosageDay(1, (d(),)),)))),
     "første dag 2 tabletter, herefter 1 tablet daglig",
     "first day 2 tablets, then 1 tablet daily"),
]


@pytest.mark.parametrize(("dosage_", "danish", "english"), CASES,
                         ids=[c[1] for c in CASES])
def test_short_texts(dosage_: StructuredDosage, danish: str, english: str) -> None:
    assert short_text(dosage_) == danish
    assert short_text(dosage_, "en") == english


def test_free_text_and_local_schema() -> None:
    assert short_text(FreeTextDosage("Efter skriftlig anvisning")) == "Efter skriftlig anvisning"
    assert "lokalt system" in short_text(LocalSchemaDosage())
    assert "local system" in short_text(LocalSchemaDosage(), "en")


def test_a_text_that_cannot_be_short_becomes_a_summary() -> None:
    taper = StructuredDosage(TABLET, tuple(
        DosagePeriod(date(2013, 6, n), date(2013, 6, n), 0, "", (DosageDay(1, (
            d(M, q), d(E, q))),))
        for n, q in ((3, "3"), (4, "2"), (5, "1.5"), (6, "1"))))
    assert short_text(taper) == "Doseringsforløb: 1-3 tabletter, højst 2 gange daglig " \
                                "(4 perioder)"
    assert short_text(taper, "en") == "Dosage schedule: 1-3 tablets, at most twice daily " \
                                      "(4 periods)"
    long_text = dosage(1, (1, [d()]), text="x" * 80)
    assert len(short_text(long_text)) <= MAX_LENGTH
    assert short_text(StructuredDosage(TABLET, (DosagePeriod(MON, END),))) == "Ingen dosering"


def test_ranges_and_units() -> None:
    ranged = StructuredDosage(TABLET, (DosagePeriod(MON, END, 1, "", (DosageDay(1, (
        DosageDose(A, None, Amount.between(1, 2)),) * 2),)),))
    assert short_text(ranged) == "1-2 tabletter 2 gange daglig"
    odd_unit = dosage(1, (1, [d(q="3")]), unit=DoseUnit.single("stk"))
    assert (short_text(odd_unit), short_text(odd_unit, "en")) == (
        "3 stk 1 gang daglig", "3 pieces once daily")


def test_only_danish_and_english() -> None:
    with pytest.raises(InvalidArgument):
        short_text(dosage(1, (1, [d()])), "de")  # type: ignore[arg-type]  # not a Language
