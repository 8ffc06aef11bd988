"""The emergency list (nødliste) of a seeded shift, read back from the PDF: residents in
room order, each dose with its time, drug and strength, quantity, pouch or poured and what
was documented when printed, the PN allowance with the last PN given, and the columns to
sign. The demo home of test_charts (the current month, instants derived from it)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from medservice.demo import DEMO_RESIDENTS
from medservice.domain.errors import InvalidArgument, NotFound
from medservice.reports.emergency import emergency_filename, emergency_pdf
from medservice.service import rounds
from tests.fakes import FakeDatabase
from tests.unit.test_charts import MONTH, NOW, F, seeded_home


@pytest.fixture
def home() -> FakeDatabase:
    return seeded_home()


def _text(db: FakeDatabase, shift: str = "day", day: int = 15) -> tuple[str, int, str]:
    with db(write=False) as u:
        lst = rounds.emergency_list(u, F, MONTH.replace(day=day), shift, NOW)
    rendered = emergency_pdf(lst)
    pdf = PdfReader(io.BytesIO(rendered.content))
    assert rendered.pages == len(pdf.pages)
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    return text, len(pdf.pages), emergency_filename(lst)


def test_emergency_list_names_every_dose_with_time_drug_quantity_and_source(
        home: FakeDatabase) -> None:
    text, pages, filename = _text(home)
    assert filename == f"noedliste-{F}-{MONTH.replace(day=15).isoformat()}-day.pdf"
    for expected in ("Nødliste", "Plejehjem: Solhaven Demo Care Home", "07:00-15:00",
                     f"Dato: {MONTH.replace(day=15).isoformat()}",
                     "lokal tid (Europe/Copenhagen)", "Givet kl.", "Signatur",
                     "indtastes hver dosis med det rigtige klokkeslæt"):
        assert expected in text, expected
    # Every resident, in room order, with room and name.
    positions = [text.index(f"Værelse {room} · {name} ({rid})")
                 for rid, _, name, room in DEMO_RESIDENTS]
    assert positions == sorted(positions)
    r01 = text[positions[0]:positions[1]]
    assert "08:00 Metformin 500 mg 1 tablet oral anvendelse Dosispose Glemt" in r01
    assert "Furosemid 40 mg" in r01
    # The PN allowance: 4 per 24 hours, one given at 13:10 today.
    assert "PN Paracetamol 500 mg 2 tabletter oral anvendelse Hældt" in r01
    assert "Højst 4 pr. døgn (24 timer); givet 1, 3 tilbage; sidst givet" in r01
    assert f"{MONTH.replace(day=15).isoformat()} 13:10" in r01
    r04 = text[positions[3]:positions[4]]
    assert "07:30 Insulatard 100 IE/ml" in r04 and "12 enheder" in r04 and "tidskritisk" in r04
    r05 = text[positions[4]:positions[5]]
    assert "Marevan 2,5 mg: Kan ikke planlægges automatisk" in r05
    assert f"Side {pages} af {pages}" in text


def test_what_was_documented_shows_with_initials(home: FakeDatabase) -> None:
    text, _, _ = _text(home, day=14)
    assert "Givet 08:05 (AH)" in text
    assert "Ikke givet 08:10: nægtet" in text
    assert "AH = anne.hansen" in text


def test_unknown_shift_and_facility_are_refused(home: FakeDatabase) -> None:
    with home(write=False) as u, pytest.raises(InvalidArgument) as e:
        rounds.emergency_list(u, F, MONTH, "brunch", NOW)
    assert e.value.violations[0].field == "shift_id"
    with home(write=False) as u, pytest.raises(NotFound):
        rounds.emergency_list(u, "nowhere", MONTH, "day", NOW)
