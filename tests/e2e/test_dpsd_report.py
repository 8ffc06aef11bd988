"""The DPSD monthly collective report over gRPC and medctl, on SQLite and PostgreSQL
(issue 16 part 4): a month seeded through the API (records at their times, missed doses
found by reconciliation, the pharmacist's decisions) whose counts match a hand count, in
the response, the CSV and the PDF.

The month is March 2026 in Copenhagen, the month DST begins (CET at its start, CEST at its
end). Its boundary incidents sit where a UTC month would count them otherwise: a dose
missed at 00:30 on 1 March (23:30 UTC on 28 February) is March's; one at 23:30 on 31 March
is March's; one at 00:30 on 1 April (22:30 UTC on 31 March) is April's. The server clock is
set to each record's time, so nothing depends on the day the tests run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from pypdf import PdfReader

from clients.client import MedClient, MedServiceError
from clients.medctl import main
from medservice.domain.access import Role
from medservice.v1 import common_pb2
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import reports_pb2 as rpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, K, dose, morning_evening, order, structured, ts
from tests.conftest import ServerFixture, TestClock, token_for

ZONE = ZoneInfo("Europe/Copenhagen")
R1 = "facilities/f/residents/r1"
C = dpb  # discrepancy codes and decisions
CONFIRMED = dpb.REVIEW_DECISION_CONFIRMED_ERROR
DISPENSING = dpb.REVIEW_DECISION_CONFIRMED_DISPENSING_ERROR
NOT_AN_ERROR = dpb.REVIEW_DECISION_NOT_AN_ERROR
FOLLOW_UP = dpb.REVIEW_DECISION_NEEDS_FOLLOW_UP
CATEGORIES = ["MEDICINE_NOT_GIVEN", "WRONG_DOSE", "WRONG_TIME", "WRONG_DRUG",
              "GIVEN_WHEN_NOT_TO_GIVE", "PN_LIMIT_EXCEEDED", "DISPENSING_ERROR"]


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE)


def at_clock(clock_time: str, day: str) -> cpb.Dosage:
    """One tablet at a clock time on one day."""
    return structured([dose(K.DOSE_TIME_KIND_CLOCK, clock=clock_time)], start=day, end=day)


def single(order_id: str, drug: str, dosage: cpb.Dosage, day: str) -> cpb.Order:
    return order(R1, order_id, drug, dosage, start=day, end=day)


@dataclass
class Month:
    server: ServerFixture
    clock: TestClock
    carer: MedClient
    pharmacist: MedClient

    def set_now(self, at: datetime) -> None:
        self.clock.advance(at - self.clock())

    def record(self, at: datetime, *, dose_id: str = "", order_id: str = "",
               drug_id: str = "", quantity: str = "1", route: str = "oral",
               outcome: pb.AdministrationOutcome.ValueType = pb.ADMINISTRATION_OUTCOME_GIVEN,
               reason: pb.NotGivenReason.ValueType = pb.NOT_GIVEN_REASON_UNSPECIFIED,
               ack: tuple[str, ...] = ()) -> pb.AdministrationRecord:
        """Documented a minute after it happened (no late documentation)."""
        self.set_now(at + timedelta(minutes=1))
        given = outcome != pb.ADMINISTRATION_OUTCOME_NOT_GIVEN
        c = self.carer
        return c.call(c.rounds.RecordDose, pb.RecordDoseRequest(
            parent=R1, acknowledged_reasons=ack, record=pb.AdministrationRecord(
                dose_id=dose_id, order=f"{R1}/orders/{order_id}" if order_id else "",
                drug_id=drug_id, outcome=outcome, quantity=quantity if given else "",
                route=route if given else "", not_given_reason=reason,
                pn_reason="smerter" if outcome == pb.ADMINISTRATION_OUTCOME_PN_GIVEN else "",
                administration_time=ts(at)))).record

    def doses(self, order_id: str, start: datetime, end: datetime) -> list[pb.ScheduledDose]:
        c = self.carer
        return [d for d in c.call(c.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
            parent=R1, start_time=ts(start), end_time=ts(end))).doses
            if d.order == f"{R1}/orders/{order_id}"]

    def decide(self, code: dpb.DiscrepancyCode.ValueType, occurred: datetime,
               decision: dpb.ReviewDecision.ValueType, note: str = "") -> None:
        p = self.pharmacist
        [d] = [d for d in p.call(p.discrepancies.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
            parent="facilities/f", code=code, start_time=ts(occurred),
            end_time=ts(occurred + timedelta(seconds=1)))).discrepancies]
        if decision == DISPENSING:  # as a pharmacist does it
            assert _medctl(self.server, Role.PHARMACIST, "review", "decide", d.name,
                           "--decision", "confirmed-dispensing-error", "--note", note) == 0
            return
        p.call(p.discrepancies.ReviewDiscrepancy, dpb.ReviewDiscrepancyRequest(
            name=d.name, decision=decision, note=note, etag=d.etag))

    def report(self, month: str, **kw: bool) -> rpb.DpsdReport:
        p = self.pharmacist
        return p.call(p.reports.GetDpsdReport, rpb.GetDpsdReportRequest(
            facility="facilities/f", month=month, **kw))


@pytest.fixture
def march(server: ServerFixture, server_clock: TestClock) -> Month:
    """March 2026 of one resident, reviewed; see the module docstring and the counts in
    test_the_month_matches_the_hand_count."""
    m = Month(server, server_clock, server.client(Role.CARER, "f", subject="carer-1"),
              server.client(Role.PHARMACIST, "f", subject="pharmacist-1"))
    m.set_now(local(2, 20, 12))  # the card is mirrored in February
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Solbakken"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1111",
                                            display_name="Anna Testesen", room="1"), "r1")
    furo = order(R1, "furo", "Furosemid", structured([dose(K.DOSE_TIME_KIND_MORNING)],
                                                     start="2026-03-20"), start="2026-03-20")
    furo.discontinue_time.CopyFrom(ts(local(3, 20, 7)))  # before its first dose
    integration = server.client(Role.INTEGRATION, "f")
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=1, orders=[
            single("feb", "Zopiclon", at_clock("23:30", "2026-02-28"), "2026-02-28"),
            single("first", "Melatonin", at_clock("00:30", "2026-03-01"), "2026-03-01"),
            single("last", "Zolpidem", at_clock("23:30", "2026-03-31"), "2026-03-31"),
            single("apr", "Propranolol", at_clock("00:30", "2026-04-01"), "2026-04-01"),
            order(R1, "para", "Paracetamol", morning_evening("2"), start="2026-03-09",
                  end="2026-03-13"),
            single("warf", "Marevan", structured([dose(K.DOSE_TIME_KIND_MORNING)],
                                                 start="2026-03-16"), "2026-03-16"),
            furo,
            order(R1, "ibu", "Ibuprofen", structured(
                [dose(K.DOSE_TIME_KIND_ANY, as_needed=True)], start="2026-03-01"),
                start="2026-03-01", mode=common_pb2.DISPENSING_MODE_STAFF_POURED),
        ]), valid_time=ts(CARD_VALID_FROM)))

    para = {(d.due_time.ToDatetime(tzinfo=UTC).astimezone(ZONE).day,
             d.due_time.ToDatetime(tzinfo=UTC).astimezone(ZONE).hour): d.dose_id
            for d in m.doses("para", local(3, 9, 0), local(3, 14, 0))}
    assert len(para) == 10
    not_given = pb.ADMINISTRATION_OUTCOME_NOT_GIVEN
    m.record(local(3, 9, 8), dose_id=para[9, 8], quantity="3", ack=("WRONG_DOSE",))
    m.record(local(3, 9, 18), dose_id=para[9, 18], quantity="3", ack=("WRONG_DOSE",))
    m.record(local(3, 10, 11), dose_id=para[10, 8], quantity="3", ack=("WRONG_DOSE",))
    m.record(local(3, 10, 19, 30), dose_id=para[10, 18], quantity="2")
    m.record(local(3, 11, 6, 30), dose_id=para[11, 8], quantity="2")
    m.record(local(3, 11, 20), dose_id=para[11, 18], quantity="2")
    m.record(local(3, 12, 8), dose_id=para[12, 8], outcome=not_given,
             reason=pb.NOT_GIVEN_REASON_DRUG_UNAVAILABLE)
    m.record(local(3, 12, 18), dose_id=para[12, 18], outcome=not_given,
             reason=pb.NOT_GIVEN_REASON_REFUSED)
    m.record(local(3, 13, 8), dose_id=para[13, 8], outcome=not_given,
             reason=pb.NOT_GIVEN_REASON_CLINICAL_HOLD)
    m.record(local(3, 13, 18), dose_id=para[13, 18], quantity="3", ack=("WRONG_DOSE",))
    pn = pb.ADMINISTRATION_OUTCOME_PN_GIVEN
    m.record(local(3, 15, 10), order_id="ibu", outcome=pn)
    m.record(local(3, 15, 14), order_id="ibu", outcome=pn, ack=("PN_LIMIT_EXCEEDED",))
    [warf] = m.doses("warf", local(3, 16, 0), local(3, 17, 0))
    m.record(local(3, 16, 8), dose_id=warf.dose_id, route="iv", ack=("WRONG_ROUTE",))
    m.record(local(3, 21, 8), order_id="furo", ack=("GIVEN_AFTER_DISCONTINUATION",))
    m.record(local(3, 25, 10), drug_id="id-ukendt", ack=("UNORDERED_DRUG",))
    wrong_entry = m.record(local(3, 26, 10), drug_id="id-andet", ack=("UNORDERED_DRUG",))

    # After the month: reconcile it (the missed doses), review, and correct one record.
    m.set_now(local(4, 3, 12))
    p = m.pharmacist
    for start, end in ((local(2, 27, 0), local(3, 16, 0)), (local(3, 16, 0), local(4, 3, 0))):
        p.call(p.discrepancies.ReconcileFacility, dpb.ReconcileFacilityRequest(
            facility="facilities/f", start_time=ts(start), end_time=ts(end)))
    for code, when, decision in [
            (C.DISCREPANCY_CODE_MISSED_DOSE, local(2, 28, 23, 30), CONFIRMED),  # February's
            (C.DISCREPANCY_CODE_MISSED_DOSE, local(3, 1, 0, 30), CONFIRMED),
            (C.DISCREPANCY_CODE_MISSED_DOSE, local(3, 31, 23, 30), CONFIRMED),
            (C.DISCREPANCY_CODE_MISSED_DOSE, local(4, 1, 0, 30), CONFIRMED),  # April's
            (C.DISCREPANCY_CODE_WRONG_DOSE, local(3, 9, 8), CONFIRMED),
            (C.DISCREPANCY_CODE_WRONG_DOSE, local(3, 9, 18), DISPENSING),
            (C.DISCREPANCY_CODE_WRONG_DOSE, local(3, 10, 11), CONFIRMED),
            (C.DISCREPANCY_CODE_LATE_DOSE, local(3, 10, 11), CONFIRMED),
            (C.DISCREPANCY_CODE_LATE_DOSE, local(3, 10, 19, 30), NOT_AN_ERROR),
            (C.DISCREPANCY_CODE_LATE_DOSE, local(3, 11, 20), CONFIRMED),
            (C.DISCREPANCY_CODE_NOT_GIVEN, local(3, 12, 8), CONFIRMED),
            (C.DISCREPANCY_CODE_NOT_GIVEN, local(3, 12, 18), CONFIRMED),  # a refusal
            (C.DISCREPANCY_CODE_WRONG_DOSE, local(3, 13, 18), FOLLOW_UP),
            (C.DISCREPANCY_CODE_PN_LIMIT_EXCEEDED, local(3, 15, 14), CONFIRMED),
            (C.DISCREPANCY_CODE_WRONG_ROUTE, local(3, 16, 8), CONFIRMED),
            (C.DISCREPANCY_CODE_GIVEN_AFTER_DISCONTINUATION, local(3, 21, 8), CONFIRMED),
            (C.DISCREPANCY_CODE_UNORDERED_DRUG, local(3, 25, 10), CONFIRMED),
            (C.DISCREPANCY_CODE_UNORDERED_DRUG, local(3, 26, 10), CONFIRMED)]:
        m.decide(code, when, decision, note="pose forkert pakket" if decision == DISPENSING
                 else "")
    c = m.carer
    c.call(c.rounds.CorrectRecord, pb.CorrectRecordRequest(
        name=wrong_entry.name, reason="registreret på forkert beboer"))
    return m


def _counts(report: rpb.DpsdReport) -> dict[str, tuple[int, int]]:
    return {rpb.DpsdCategory.Name(c.category).removeprefix("DPSD_CATEGORY_"):
            (c.confirmed, c.awaiting_review) for c in report.counts}


def test_the_month_matches_the_hand_count(march: Month) -> None:
    report = march.report("2026-03")
    # Hand count. Confirmed: not given = the missed doses at 00:30 on 1 March and 23:30 on
    # 31 March and the drug not available on 12 March (not the refusal, though confirmed;
    # not the clinical hold); wrong dose = 9 March 08:00 and the late, wrong dose of
    # 10 March (one incident for two codes); wrong time = 11 March 20:00 (not 10 March
    # 19:30: not an error); the unordered drug of 25 March (not 26 March's, entered in
    # error); given after the discontinuation; the second PN dose of 15 March; dispensing =
    # the pouch of 9 March 18:00. Awaiting review: the early dose of 11 March (open) and
    # the wrong dose of 13 March (needs follow-up).
    assert _counts(report) == {
        "MEDICINE_NOT_GIVEN": (3, 0), "WRONG_DOSE": (2, 1), "WRONG_TIME": (1, 1),
        "WRONG_DRUG": (1, 0), "GIVEN_WHEN_NOT_TO_GIVE": (1, 0), "PN_LIMIT_EXCEEDED": (1, 0),
        "DISPENSING_ERROR": (1, 0)}
    assert [c.area for c in report.counts] == ["administration"] * 6 + ["dispensing"]
    assert (report.confirmed_total, report.awaiting_review_total) == (10, 2)
    assert report.confirmed_outside_categories == 1  # the wrong route
    # DST month: from 00:00 CET on 1 March to 00:00 CEST on 1 April.
    assert report.start_time.ToDatetime(tzinfo=UTC) == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert report.end_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert (report.month, report.time_zone, report.facility) == (
        "2026-03", "Europe/Copenhagen", "facilities/f")
    assert not report.HasField("csv") and not report.HasField("pdf")
    listed = [(dpb.DiscrepancyCode.Name(i.discrepancy.code).removeprefix("DISCREPANCY_CODE_"),
               i.discrepancy.occurrence_time.ToDatetime(tzinfo=UTC).astimezone(ZONE),
               rpb.DpsdCategory.Name(i.category).removeprefix("DPSD_CATEGORY_"), i.drug)
              for i in report.individual]
    assert listed == [
        ("MISSED_DOSE", local(3, 1, 0, 30), "MEDICINE_NOT_GIVEN", "Melatonin"),
        ("WRONG_DOSE", local(3, 9, 8), "WRONG_DOSE", "Paracetamol"),
        ("WRONG_DOSE", local(3, 9, 18), "DISPENSING_ERROR", "Paracetamol"),
        ("WRONG_DOSE", local(3, 10, 11), "WRONG_DOSE", "Paracetamol"),
        ("PN_LIMIT_EXCEEDED", local(3, 15, 14), "PN_LIMIT_EXCEEDED", "Ibuprofen"),
        ("WRONG_ROUTE", local(3, 16, 8), "UNSPECIFIED", "Marevan"),
        ("GIVEN_AFTER_DISCONTINUATION", local(3, 21, 8), "GIVEN_WHEN_NOT_TO_GIVE",
         "Furosemid"),
        ("UNORDERED_DRUG", local(3, 25, 10), "WRONG_DRUG", "id-ukendt"),
        ("MISSED_DOSE", local(3, 31, 23, 30), "MEDICINE_NOT_GIVEN", "Zolpidem")]
    assert report.individual[2].discrepancy.review.decision == DISPENSING


def test_the_boundary_incidents_count_in_their_local_month(march: Month) -> None:
    """00:30 on 1 April is April's though it is 31 March in UTC; 23:30 on 28 February is
    February's."""
    for month in ("2026-02", "2026-04"):
        report = march.report(month)
        assert _counts(report)["MEDICINE_NOT_GIVEN"] == (1, 0), month
        assert report.confirmed_total == 1 and len(report.individual) == 1
    autumn = march.report("2026-10")  # DST ends: 00:00 CEST to 00:00 CET
    assert autumn.start_time.ToDatetime(tzinfo=UTC) == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert autumn.end_time.ToDatetime(tzinfo=UTC) == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert autumn.confirmed_total == autumn.awaiting_review_total == 0


def _pdf_text(content: bytes) -> tuple[str, int]:
    pdf = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(p.extract_text() for p in pdf.pages).split()), len(pdf.pages)


def test_the_csv_and_pdf_say_the_same(march: Month) -> None:
    report = march.report("2026-03", include_csv=True, include_pdf=True)
    assert (report.csv.content_type, report.csv.filename) == ("text/csv; charset=utf-8",
                                                              "dpsd-f-2026-03.csv")
    assert report.csv.content.startswith(b"\xef\xbb\xbf")  # Danish spreadsheets need it
    rows = list(csv.reader(io.StringIO(report.csv.content.decode("utf-8-sig")),
                           delimiter=";"))
    assert rows[0] == ["Plejehjem", "Måned", "Område", "Kategori", "Kode", "Bekræftet",
                       "Afventer vurdering"]
    assert [r[4] for r in rows[1:8]] == CATEGORIES
    assert {r[4]: (int(r[5]), int(r[6])) for r in rows[1:8]} == _counts(report)
    assert rows[1][:4] == ["Solbakken", "2026-03", "Administration",
                           "Medicin ikke givet"]
    assert rows[7][2:4] == ["Dispensering", "Dispenseringsfejl"]
    assert rows[8] == ["Solbakken", "2026-03", "I alt", "", "", "10", "2"]
    assert len(rows) == 9

    assert (report.pdf.content_type, report.pdf.filename) == ("application/pdf",
                                                              "dpsd-f-2026-03.pdf")
    text, pages = _pdf_text(report.pdf.content)
    assert report.pdf.page_count == pages
    for expected in (
            "Samlerapportering til DPSD", "Plejehjem: Solbakken", "Periode: marts 2026",
            "Alle tider er lokal tid (Europe/Copenhagen)",
            "Administration Medicin ikke givet 3 0",
            "Administration Forkert dosis 2 1", "Administration Forkert tidspunkt 1 1",
            "Administration PN givet ud over maksimum 1 0",
            "Dispensering Dispenseringsfejl 1 0", "I alt 10 2",
            "ikke med i samlerapporteringen: 1",
            "2026-03-01 00:30 CET Anna Testesen (r1) Glemt dosis",
            "2026-03-31 23:30 CEST Anna Testesen (r1) Glemt dosis",
            "Forkert administrationsvej", "pose forkert pakket", f"Side 1 af {pages}"):
        assert expected in text, expected
    # Not listed: the refusal, the clinical hold, the entered-in-error record, April's.
    assert "2026-03-26" not in text and "2026-04-01" not in text and "2026-03-12" not in text


def _medctl(server: ServerFixture, role: Role, *args: str, facility: str = "f") -> int:
    return main(["--target", server.target, "--token", token_for(role, facility), *args])


def test_medctl_report_dpsd_writes_the_files(march: Month, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out_csv, out_pdf = tmp_path / "m.csv", tmp_path / "m.pdf"
    assert _medctl(march.server, Role.SHIFT_LEAD, "report", "dpsd", "--facility", "f",
                   "--month", "2026-03", "--csv", str(out_csv), "--pdf", str(out_pdf)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "DPSD 2026-03 facilities/f (Europe/Copenhagen)"
    assert out[1].split() == ["OMRÅDE", "KATEGORI", "BEKRÆFTET", "AFVENTER", "VURDERING"]
    assert out[2].split() == ["Administration", "Medicin", "ikke", "givet", "3", "0"]
    assert out[9].split() == ["I", "alt", "10", "2"]
    assert out[10:] == [
        "bekræftede fejl uden for kategorierne: 1",
        "bekræftede fejl med høj alvorlighed til overvejelse for enkeltrapportering: 9",
        f"skrev {out_csv}", f"skrev {out_pdf}"]
    assert out_csv.read_bytes().decode("utf-8-sig").splitlines()[-1] == \
        "Solbakken;2026-03;I alt;;;10;2"
    assert "Samlerapportering til DPSD" in _pdf_text(out_pdf.read_bytes())[0]
    # --json: the report as one line, without the documents' bytes.
    assert _medctl(march.server, Role.ADMIN, "--json", "report", "dpsd", "--facility", "f",
                   "--month", "2026-03", "--pdf", str(out_pdf)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["confirmed_total"], shown["awaiting_review_total"]) == (10, 2)
    assert len(shown["individual"]) == 9 and "pdf" not in shown and "csv" not in shown


@pytest.mark.parametrize(("args", "role", "token_facility", "said", "code"), [
    # A month medctl cannot read is refused before any call, naming its option.
    (("--month", "2026-13"), Role.PHARMACIST, "f", "--month: cannot read '2026-13'", 2),
    (("--month", "2026/03"), Role.PHARMACIST, "f", "--month: cannot read '2026/03'", 2),
    (("--facility", "nowhere"), Role.PHARMACIST, "*", "FACILITY_NOT_FOUND", 1),
    ((), Role.CARER, "f", "PERMISSION_DENIED", 1),
    ((), Role.INTEGRATION, "f", "PERMISSION_DENIED", 1),
    ((), Role.PHARMACIST, "elsewhere", "PERMISSION_DENIED", 1),
])
def test_bad_requests_end_in_one_line(server: ServerFixture, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      args: tuple[str, ...], role: Role, token_facility: str,
                                      said: str, code: int) -> None:
    server.client(Role.ADMIN).create_facility(fpb.Facility(display_name="Solbakken"), "f")
    given = {"--facility": "f", "--month": "2026-03"}
    given.update(dict(zip(args[::2], args[1::2], strict=True)))
    out = tmp_path / "x.csv"
    assert _medctl(server, role, "report", "dpsd", *[x for kv in given.items() for x in kv],
                   "--csv", str(out), facility=token_facility) == code
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not out.exists()


def test_an_unwritable_file_is_one_line_and_exit_2(
        server: ServerFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.client(Role.ADMIN).create_facility(fpb.Facility(display_name="Solbakken"), "f")
    out = tmp_path / "no-such-dir" / "m.pdf"
    assert _medctl(server, Role.PHARMACIST, "report", "dpsd", "--facility", "f", "--month",
                   "2026-03", "--pdf", str(out)) == 2
    assert capsys.readouterr().err.strip().startswith(f"medctl: kan ikke skrive {out}")


def test_the_rpc_refuses_bad_fields_by_name(server: ServerFixture) -> None:
    p = server.client(Role.PHARMACIST)
    call: Callable[..., rpb.DpsdReport] = p.reports.GetDpsdReport
    for request, field in ((rpb.GetDpsdReportRequest(facility="f", month="2026-03"),
                            "facility"),
                           (rpb.GetDpsdReportRequest(facility="facilities/f", month=""),
                            "month")):
        with pytest.raises(MedServiceError) as e:
            p.call(call, request)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in e.value.violations] == [field]
