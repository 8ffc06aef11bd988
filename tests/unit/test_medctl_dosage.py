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
    assert main(["dosage", "expand", "--fmk-xml", str(path), "--from", "28-03-2026",
                 "--days", "1"]) == 2
    assert "--from" in capsys.readouterr().err
    assert main(["dosage", "expand", "--fmk-xml", str(path), "--from", "2026-03-28",
                 "--days", "1", "--zone", "Mars/Olympus"]) == 2
    assert "--zone" in capsys.readouterr().err
