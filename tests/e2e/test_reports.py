"""The printable documents through a real server and medctl: `medctl chart mar`,
`medctl round --pdf` and `medctl report error-rate` write PDFs that read back with what
was recorded; bad months, unknown residents, wrong roles and unwritable files end in one
line and a non-zero exit. The demo home is seeded at the server clock's now; the month is
derived from it."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from clients.medctl import main
from medservice.demo import seed_demo
from medservice.domain.access import Role
from medservice.v1 import reports_pb2 as pb
from medservice.v1 import rounds_pb2 as rpb
from tests.builders import ts
from tests.conftest import ServerFixture, TestClock, token_for

ZONE = ZoneInfo("Europe/Copenhagen")
R01 = "facilities/demo/residents/r01"


@pytest.fixture
def demo(server: ServerFixture, server_clock: TestClock) -> datetime:
    """The demo home, with a PN dose given to r01 by anne.hansen a minute ago."""
    now = server_clock()
    assert seed_demo(server.uow, now)
    carer = server.client(Role.CARER, "demo", subject="anne.hansen")
    carer.call(carer.rounds.RecordDose, rpb.RecordDoseRequest(
        parent=R01, record=rpb.AdministrationRecord(
            order=f"{R01}/orders/paracetamol-pn", outcome=rpb.ADMINISTRATION_OUTCOME_PN_GIVEN,
            quantity="2", route="oral", administration_time=ts(now), pn_reason="smerter")))
    return now.astimezone(ZONE)


def _medctl(server: ServerFixture, role: Role, *args: str, facility: str = "demo") -> int:
    return main(["--target", server.target, "--token", token_for(role, facility), *args])


def _text(path: Path) -> tuple[str, int]:
    pdf = PdfReader(io.BytesIO(path.read_bytes()))
    return " ".join(" ".join(p.extract_text() for p in pdf.pages).split()), len(pdf.pages)


def test_chart_mar_writes_the_residents_month(server: ServerFixture, demo: datetime,
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "chart.pdf"
    assert _medctl(server, Role.CARER, "chart", "mar", "--resident", "r01", "--facility",
                   "demo", "--month", f"{demo:%Y-%m}", "--output", str(out)) == 0
    text, pages = _text(out)
    assert capsys.readouterr().out.strip() == f"skrev {out} ({pages} side" + \
        ("r)" if pages > 1 else ")")
    for expected in ("Medicinskema", "Karen Testesen (r01)", "Værelse: 101",
                     "Solhaven Demo Care Home", "Metformin", "Paracetamol 500 mg",
                     f"{demo:%H:%M}", "smerter", "AH = anne.hansen", f"Side 1 af {pages}"):
        assert expected in text, expected


def test_the_chart_rpc_returns_a_named_pdf(server: ServerFixture, demo: datetime) -> None:
    pharmacist = server.client(Role.PHARMACIST, "demo")
    doc = pharmacist.call(pharmacist.reports.GetAdministrationChart,
                          pb.GetAdministrationChartRequest(resident=R01,
                                                           month=f"{demo:%Y-%m}"))
    assert (doc.content_type, doc.filename) == ("application/pdf",
                                                f"medicinskema-r01-{demo:%Y-%m}.pdf")
    assert doc.content.startswith(b"%PDF") and doc.page_count == len(
        PdfReader(io.BytesIO(doc.content)).pages)


@pytest.mark.parametrize(("args", "role", "facility", "said", "code"), [
    # A month medctl cannot read is refused before any call, naming its option.
    (("--month", "2026-13"), Role.CARER, "demo", "--month: cannot read '2026-13'", 2),
    (("--month", "13-2026"), Role.CARER, "demo", "--month: cannot read '13-2026'", 2),
    (("--resident", "nobody"), Role.CARER, "demo", "RESIDENT_NOT_FOUND", 1),
    ((), Role.INTEGRATION, "demo", "PERMISSION_DENIED", 1),
    ((), Role.CARER, "elsewhere", "PERMISSION_DENIED", 1),
])
def test_chart_mar_bad_inputs_end_in_one_error(server: ServerFixture, demo: datetime,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               args: tuple[str, ...], role: Role,
                                               facility: str, said: str, code: int) -> None:
    given = {"--resident": "r01", "--month": f"{demo:%Y-%m}"}
    given.update(dict(zip(args[::2], args[1::2], strict=True)))
    out = tmp_path / "chart.pdf"
    assert _medctl(server, role, "chart", "mar", "--facility", "demo",
                   *[x for kv in given.items() for x in kv], "--output", str(out),
                   facility=facility) == code
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not out.exists()


def test_an_unwritable_output_is_one_line(server: ServerFixture, demo: datetime,
                                          tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no-such-dir" / "chart.pdf"
    assert _medctl(server, Role.CARER, "chart", "mar", "--resident", R01, "--month",
                   f"{demo:%Y-%m}", "--output", str(out)) == 2
    assert capsys.readouterr().err.strip().startswith(f"medctl: kan ikke skrive {out}")


def test_round_pdf_writes_the_emergency_list(server: ServerFixture, demo: datetime,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "noedliste.pdf"
    assert _medctl(server, Role.SHIFT_LEAD, "round", "--facility", "demo", "--date",
                   demo.date().isoformat(), "--shift", "evening", "--pdf", str(out)) == 0
    assert capsys.readouterr().out.startswith(f"skrev {out}")
    text, _ = _text(out)
    for expected in ("Nødliste", "Vagt: Aften 15:00-23:00",
                     f"Dato: {demo.date().isoformat()}", "Værelse 101 · Karen Testesen (r01)",
                     "18:00 Metformin 500 mg 1 tablet oral anvendelse Dosispose",
                     "PN Paracetamol 500 mg 2 tabletter", "Givet kl. Signatur"):
        assert expected in text, expected
    assert _medctl(server, Role.SHIFT_LEAD, "round", "--facility", "demo", "--date",
                   demo.date().isoformat(), "--shift", "brunch", "--pdf", str(out)) == 2
    assert "its shifts are day, evening, night" in capsys.readouterr().err
    assert _medctl(server, Role.INTEGRATION, "round", "--facility", "demo", "--date",
                   demo.date().isoformat(), "--pdf", str(out)) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err


def test_report_error_rate_writes_the_months(server: ServerFixture, demo: datetime,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rate.pdf"
    month = f"{demo:%Y-%m}"
    assert _medctl(server, Role.PHARMACIST, "report", "error-rate", "--facility", "demo",
                   "--from", month, "--to", month, "--output", str(out)) == 0
    assert capsys.readouterr().out.startswith(f"skrev {out} (1 side)")
    text, _ = _text(out)
    for expected in ("Fejlrate for medicingivning", "Solhaven Demo Care Home",
                     "Givne doser 1", "Doser med fejl", "Side 1 af 1"):
        assert expected in text, expected
    for args, role, said, code in (
            (("--from", month, "--to", "2020-01"), Role.PHARMACIST, "to_month: must not be",
             1),
            (("--from", "2026-00", "--to", month), Role.PHARMACIST,
             "--from: cannot read '2026-00'", 2),
            (("--from", month, "--to", month), Role.CARER, "PERMISSION_DENIED", 1)):
        assert _medctl(server, role, "report", "error-rate", "--facility", "demo", *args,
                       "--output", str(tmp_path / "bad.pdf")) == code
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err
    assert not (tmp_path / "bad.pdf").exists()
