"""`medctl dosage text|expand`: what a pharmacist sees at the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clients.medctl import main

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
FMK = REFERENCE / "fmk/examples/2012/06/01"


def _need(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("MEDSERVICE_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"reference file missing: {path}")
        pytest.skip(f"reference data not present ({path})")
    return path


def test_text_prints_file_tab_text(capsys: pytest.CaptureFixture[str]) -> None:
    path = _need(FMK / "Dosage-2 tabletter 3 gange daglig.xml")
    assert main(["dosage", "text", "--fmk-xml", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}\t2 tabletter 3 gange daglig\n"
    assert main(["dosage", "text", "--lang", "en", "--fmk-xml", str(path)]) == 0
    assert capsys.readouterr().out.endswith("\t2 tablets 3 times daily\n")


def test_unreadable_files_exit_2_with_one_line_and_no_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<Dosage><Structure>")
    assert main(["dosage", "text", "--fmk-xml", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(bad) in err
    assert main(["dosage", "expand", "--fmk-xml", str(bad), "--from", "2026-01-01",
                 "--days", "1"]) == 2


def test_free_text_cannot_be_expanded(capsys: pytest.CaptureFixture[str]) -> None:
    path = _need(FMK / "Dosage-FreeText.xml")
    assert main(["dosage", "expand", "--fmk-xml", str(path), "--from", "2026-01-01",
                 "--days", "3"]) == 2
    assert capsys.readouterr().err == "medctl: cannot expand: the dosage is free text\n"


def test_expand_as_json_lines_across_the_spring_dst_day(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = _need(REFERENCE / "fhir-r4/medicationrequest0306.json")  # 6 mg once daily
    assert main(["dosage", "expand", "--fhir-json", str(path), "--from", "2026-03-28",
                 "--days", "2", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["local_time"], x["due_time"]) for x in lines] == [
        ("08:00", "2026-03-28T07:00:00+00:00"), ("08:00", "2026-03-29T06:00:00+00:00")]
    assert lines[0]["quantity"] == "6"


def test_bad_options_name_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    path = _need(FMK / "Dosage-2 tabletter 3 gange daglig.xml")
    assert main(["dosage", "expand", "--fmk-xml", str(path), "--from", "30-02-2026",
                 "--days", "1"]) == 2
    assert "--from" in capsys.readouterr().err
    # The Danish order of a date is read as elsewhere in medctl.
    assert main(["dosage", "expand", "--fmk-xml", str(path), "--from", "28-03-2026",
                 "--days", "1"]) == 0
    assert "2026-03-28" in capsys.readouterr().out
    assert main(["dosage", "expand", "--fmk-xml", str(path), "--from", "2026-03-28",
                 "--days", "1", "--zone", "Mars/Olympus"]) == 2
    assert "--zone" in capsys.readouterr().err


FHIR = REFERENCE / "fhir-r4"


def _expand_json(capsys: pytest.CaptureFixture[str], name: str, start: str, days: int
                 ) -> tuple[int, list[dict[str, str]], str]:
    path = _need(FHIR / f"medicationrequest{name}.json")
    code = main(["dosage", "expand", "--fhir-json", str(path), "--from", start,
                 "--days", str(days), "--json"])
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines()], err


def test_the_40_fhir_examples_expand_or_are_refused_naming_the_field(
        capsys: pytest.CaptureFixture[str]) -> None:
    _need(FHIR)
    expanded, refused = [], {}
    for path in sorted(FHIR.glob("medicationrequest*.json")):
        code = main(["dosage", "expand", "--fhir-json", str(path), "--from", "2026-03-27",
                     "--days", "7"])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        name = path.stem.removeprefix("medicationrequest")
        if code == 0:
            expanded.append(name)
        else:
            assert code == 2 and err.count("\n") == 1, err
            refused[name] = err
    assert len(expanded) + len(refused) == 40
    assert len(expanded) >= 24, expanded
    # The refusals that stay right (issue 20), each naming the field.
    assert set(refused) == {"0302", "0317", "0321", "0327", "0336", "0337", "0338", "0339",
                            "example2"}
    for name, err in refused.items():
        assert "dosageInstruction" in err, (name, err)


def test_an_interval_with_no_start_is_anchored_at_from(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, doses, _ = _expand_json(capsys, "0318", "2026-03-29", 1)  # q6h; the spring DST day
    assert code == 0
    assert [(d["local_time"], d["due_time"]) for d in doses] == [
        ("00:00", "2026-03-28T23:00:00+00:00"), ("07:00", "2026-03-29T05:00:00+00:00"),
        ("13:00", "2026-03-29T11:00:00+00:00"), ("19:00", "2026-03-29T17:00:00+00:00")]


def test_a_single_dose_with_no_start_is_due_once_from(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, doses, _ = _expand_json(capsys, "0332", "2026-03-02", 5)  # count 1
    assert code == 0
    assert [(d["local_date"], d["due_time"], d["window_start"]) for d in doses] == [
        ("2026-03-02", "2026-03-02T07:00:00+00:00", None)]  # one-time: no window


def test_a_course_of_n_doses_every_3_weeks_from(capsys: pytest.CaptureFixture[str]) -> None:
    code, doses, err = _expand_json(capsys, "0316", "2026-03-02", 366)  # 16 cycles, q3wk
    assert code == 0
    assert "note: an import would refuse the order" in err  # no start; completed, no end
    assert len(doses) == 16
    assert (doses[0]["due_time"], doses[1]["due_time"], doses[-1]["local_date"]) == (
        "2026-03-02T07:00:00+00:00", "2026-03-23T07:00:00+00:00", "2027-01-11")


def test_a_listed_instant_and_its_repeat(capsys: pytest.CaptureFixture[str]) -> None:
    # 0323: hung at 22:00 (+11:00) on 15 January 2015, then every 24 hours.
    code, doses, _ = _expand_json(capsys, "0323", "2015-01-15", 3)
    assert code == 0
    assert [d["due_time"] for d in doses] == [
        "2015-01-15T11:00:00+00:00", "2015-01-16T11:00:00+00:00", "2015-01-17T11:00:00+00:00"]
    assert doses[0]["local_time"] == "12:00"  # 11:00 UTC in Copenhagen (CET)


def test_a_taper_in_sequence_expands_step_by_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, doses, err = _expand_json(capsys, "0303", "2015-01-19", 6)
    assert code == 0 and err == ""
    assert [(d["local_date"], d["quantity"]) for d in doses] == [
        ("2015-01-19", "4"), ("2015-01-20", "4"), ("2015-01-23", "2"), ("2015-01-24", "2")]
