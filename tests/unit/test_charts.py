"""The administration chart (medicinskema) of a seeded month: the use case's cells agree
with the round list's dose states, and the PDF says what the cells say (read back with
pypdf). The month is the current one, the instants derived from it: the demo home is
seeded on the 2nd at 06:00 and the chart is read on the 15th at 14:00."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from medservice.demo import DEMO_FACILITY_ID, seed_demo
from medservice.domain.administration import AdministrationRecord, NotGivenReason, Outcome
from medservice.domain.errors import InvalidArgument, NotFound
from medservice.domain.rounds import DoseStatus
from medservice.reports.mar import chart_pdf
from medservice.reports.texts import MONTHS
from medservice.service import administration as admin
from medservice.service import charts, rounds
from medservice.service.unit_of_work import UnitOfWorkFactory
from tests.fakes import FakeDatabase, as_factory

ZONE = ZoneInfo("Europe/Copenhagen")
F, R = DEMO_FACILITY_ID, "r01"
MONTH = date.today().replace(day=1)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time of the month, as the instant (UTC) the API would hand the store: the
    SQLite store keeps an aware datetime's wall time, not its instant."""
    return datetime.combine(MONTH.replace(day=day), time(hour, minute), ZONE).astimezone(UTC)


SEEDED, NOW = local(2, 6), local(15, 14)


def _dose_id(db: UnitOfWorkFactory, day: int, drug: str, hour: int) -> str:
    with db(write=False) as u:
        doses, _, _ = rounds.resident_doses(u, F, R, local(day, 0), local(day, 23, 59), NOW)
    return next(d.dose_id for d, c in doses if c.drug.name == drug and d.local_time.hour == hour)


def _record(db: UnitOfWorkFactory, record_id: str, dose_id: str | None, at: datetime, *,
            performer: str, outcome: Outcome = Outcome.GIVEN, order: str = "metformin",
            reason: NotGivenReason | None = None, pn_reason: str = "") -> None:
    record = AdministrationRecord(
        record_id=record_id, facility_id=F, resident_id=R, order_id=order,
        drug_id=f"demo-{order}", outcome=outcome, administered_at=at,
        recorded_at=at + timedelta(minutes=5), performer=performer, dose_id=dose_id,
        quantity=None if outcome is Outcome.NOT_GIVEN else Decimal(
            "2" if outcome is Outcome.PN_GIVEN else "1"),
        route="oral", not_given_reason=reason, pn_reason=pn_reason)
    with db() as u:
        admin.record_dose(u, record, {"LATE_DOCUMENTATION", "OUTSIDE_TREATMENT_PERIOD"},
                          at + timedelta(minutes=5))
        u.commit()


@pytest.fixture
def home() -> FakeDatabase:
    return seeded_home()


def seeded_home() -> FakeDatabase:
    db = FakeDatabase()
    seed_month(as_factory(db))
    return db


def seed_month(db: UnitOfWorkFactory) -> None:
    """The demo home; r01 has Metformin 08 and 18, Furosemid 08, Simvastatin 18 and
    Paracetamol PN. On the 14th Metformin 08 is given by anne.hansen, Furosemid refused,
    Simvastatin given by bo.berg and then marked entered-in-error; a PN dose on the 15th
    at 13:10."""
    assert seed_demo(db, SEEDED)
    metformin = _dose_id(db, 14, "Metformin", 8)
    _record(db, "a1", metformin, local(14, 8, 5), performer="anne.hansen")
    _record(db, "a2", _dose_id(db, 14, "Furosemid", 8), local(14, 8, 10),
            performer="anne.hansen", outcome=Outcome.NOT_GIVEN, order="furosemid",
            reason=NotGivenReason.REFUSED)
    _record(db, "a3", _dose_id(db, 14, "Simvastatin", 18), local(14, 18, 5),
            performer="bo.berg", order="simvastatin")
    with db() as u:
        admin.correct_record(u, F, R, "a3", "wrong resident", "bo.berg", local(14, 19))
        u.commit()
    _record(db, "a4", None, local(15, 13, 10), performer="bo.berg",
            outcome=Outcome.PN_GIVEN, order="paracetamol-pn", pn_reason="hovedpine")


def _chart(db: FakeDatabase, resident: str = R) -> charts.AdministrationChart:
    with db(write=False) as u:
        return charts.administration_chart(u, F, resident, MONTH, NOW)


def _cells(chart: charts.AdministrationChart, drug: str, hour: int, day: int
           ) -> list[charts.ChartCell]:
    row = next(r for r in chart.rows if r.drug.name == drug and r.time.hour == hour)
    return row.cells[MONTH.replace(day=day)]


def test_chart_cells_are_the_round_lists_states(home: FakeDatabase) -> None:
    chart = _chart(home)
    assert [(r.drug.name, r.time.strftime("%H:%M")) for r in chart.rows] == [
        ("Furosemid", "08:00"), ("Metformin", "08:00"), ("Metformin", "18:00"),
        ("Simvastatin", "18:00")]
    given = _cells(chart, "Metformin", 8, 14)
    assert [(c.mark, c.record and c.record.performer) for c in given] == [
        (charts.Mark.GIVEN, "anne.hansen")]
    [refused] = _cells(chart, "Furosemid", 8, 14)
    assert refused.mark is charts.Mark.NOT_GIVEN and refused.record is not None
    assert refused.record.not_given_reason is NotGivenReason.REFUSED
    # The struck record stays on the chart; the dose it left open is missed.
    assert [c.mark for c in _cells(chart, "Simvastatin", 18, 14)] == [
        charts.Mark.ENTERED_IN_ERROR, charts.Mark.MISSED]
    # Before the mirror knew the orders (seeded on the 2nd at 06:00): not documented.
    assert [c.mark for c in _cells(chart, "Metformin", 8, 1)] == [charts.Mark.NOT_DOCUMENTED]
    assert [c.mark for c in _cells(chart, "Metformin", 8, 2)] == [charts.Mark.MISSED]
    assert [c.mark for c in _cells(chart, "Metformin", 18, 15)] == [charts.Mark.DUE]
    assert {d.day for d in _cells_days(chart, "Metformin", 8)} == {d.day for d in chart.days}
    struck, pn = chart.entries
    assert (struck.record.record_id, struck.as_needed, struck.record.correction_reason) == (
        "a3", False, "wrong resident")
    assert (pn.as_needed, pn.drug.name, pn.local.strftime("%d %H:%M")) == (
        True, "Paracetamol", "15 13:10")
    # One truth: every missed cell is a dose the round list calls missed.
    with home(write=False) as u:
        schedule = rounds.shift_schedule(u, F, MONTH.replace(day=14), "evening", NOW)
    r01 = next(e for e in schedule.residents if e.resident.resident_id == R)
    assert {(d.dose.order_id, r01.state_of(d.dose.dose_id).status) for d in r01.doses} == {
        ("metformin", DoseStatus.MISSED), ("simvastatin", DoseStatus.MISSED)}


def _cells_days(chart: charts.AdministrationChart, drug: str, hour: int) -> list[date]:
    row = next(r for r in chart.rows if r.drug.name == drug and r.time.hour == hour)
    return list(row.cells)


def test_chart_pdf_reads_back_with_header_marks_legend_and_page_numbers(
        home: FakeDatabase) -> None:
    pdf = PdfReader(io.BytesIO(chart_pdf(_chart(home)).content))
    assert len(pdf.pages) == 1
    page = pdf.pages[0]
    assert page.mediabox.width > page.mediabox.height  # landscape
    text = page.extract_text()
    for expected in ("Medicinskema", "Karen Testesen (r01)", "Værelse: 101",
                     "Plejehjem: Solhaven Demo Care Home",
                     f"Periode: {MONTHS[MONTH.month - 1]} {MONTH.year}",
                     "lokal tid (Europe/Copenhagen)", "Metformin", "500 mg", "Furosemid",
                     "Tegnforklaring", "÷N nægtet", "Side 1 af 1",
                     "AH = anne.hansen", "BB = bo.berg", "hovedpine",
                     "fejlregistreret: wrong resident", "13:10"):
        assert expected in text, expected
    # The marks: AH for the dose given, ÷N refused, X missed, ID not documented, FR struck.
    for mark in ("AH", "÷N", "X", "ID", "FR"):
        assert mark in text.split(), mark


def test_a_long_card_runs_over_pages_each_numbered(home: FakeDatabase) -> None:
    chart = _chart(home)
    chart.rows[:] = chart.rows * 12  # 48 rows: more than a page holds
    rendered = chart_pdf(chart)
    pdf = PdfReader(io.BytesIO(rendered.content))
    pages = len(pdf.pages)
    assert rendered.pages == pages
    assert pages >= 2
    for n, page in enumerate(pdf.pages, start=1):
        text = page.extract_text()
        assert f"Side {n} af {pages}" in text
        assert "Karen Testesen (r01)" in text  # the header on every page


def test_bad_month_and_unknown_resident_are_refused(home: FakeDatabase) -> None:
    for bad in ("2026-13", "2026-3", "March", ""):
        with pytest.raises(InvalidArgument) as e:
            charts.parse_month(bad, "month")
        assert e.value.violations[0].field == "month"
    with pytest.raises(NotFound) as nf:
        _chart(home, "nobody")
    assert nf.value.reason == "RESIDENT_NOT_FOUND"
