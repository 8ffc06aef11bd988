"""The dosage engine against the Danish Medicines Agency's 516 dosage proposals and the FMK
example Dosage documents (../shared/reference, see its README).

Without the reference folder these tests skip, unless MEDSERVICE_REQUIRE_REFERENCE=1 (CI),
which turns the skip into a failure.

The official short texts were rendered with the dosages starting on the date their long
texts name ("Doseringsforløbet starter mandag den 3. juni 2013"), not the XML's 2010-01-01;
weekday names depend on it, so each dosage is moved to that date before its text is compared.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from medservice.domain.dosage import (
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    TimeKind,
    needs_manual_schedule,
    pn_allowance,
)
from medservice.domain.dosage_text import short_text
from medservice.i18n import msg
from medservice.imports.fmk_dosage import parse_dosage_proposal, parse_dosage_xml
from tests.dosage_slots import expand_dosage

pytestmark = pytest.mark.reference

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
REQUIRE_ENV = "MEDSERVICE_REQUIRE_REFERENCE"
PROPOSALS = REFERENCE / "fmk" / "dosage-proposals" / "DosageStructures.json"
EXAMPLES = REFERENCE / "fmk" / "examples" / "2012" / "06" / "01"
REQUIRED_MATCH_RATE = 0.95
_MONTHS = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
           "september", "oktober", "november", "december")


def reference_file(path: Path) -> Path:
    """The path, or a skip (a failure when the reference is required) when it is absent."""
    if not path.exists():
        reason = f"reference data not found at {path} (see ../shared/reference/README.md)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    return path


@cache
def _proposals() -> tuple[dict[str, Any], ...]:
    data = json.loads(PROPOSALS.read_text(encoding="utf-8"))
    return tuple(data["dosageStructures"])


@pytest.fixture(scope="module")
def proposals() -> tuple[dict[str, Any], ...]:
    reference_file(PROPOSALS)
    return _proposals()


def rendered_start(long_text: str) -> date:
    """The start date a long text names: "... starter mandag den 3. juni 2013 ..."."""
    found = re.search(r"starter \w+ den (\d+)\. (\w+) (\d{4})", long_text)
    assert found, long_text
    day, month, year = found.groups()
    return date(int(year), _MONTHS.index(month) + 1, int(day))


def test_every_proposal_parses_in_every_14_schema_version(
    proposals: tuple[dict[str, Any], ...]
) -> None:
    assert len(proposals) == 516
    missing_140 = []
    for proposal in proposals:
        versions = parse_dosage_proposal(proposal["xml"])
        assert "1.4.4" in versions, proposal["code"]
        if "1.4.0" not in versions:
            missing_140.append(proposal["code"])
        # The same dosage, whichever schema carried it.
        assert all(v == versions["1.4.4"] for v in versions.values()), proposal["code"]
    assert missing_140 == [304]  # the export has no 1.4.0 block for proposal 304


def test_every_structured_proposal_expands(proposals: tuple[dict[str, Any], ...]) -> None:
    kinds = {"N daglig": 0, "M+M+A+N": 0, "PN": 0, "FT": 0}
    for proposal in proposals:
        dosage = parse_dosage_proposal(proposal["xml"])["1.4.4"]
        kinds[proposal["type"]] += 1
        if proposal["type"] == "FT":
            assert isinstance(dosage, FreeTextDosage)
            assert needs_manual_schedule(dosage) == msg("schedule.free_text")
            continue
        assert isinstance(dosage, StructuredDosage)
        assert needs_manual_schedule(dosage) is None, proposal["code"]
        start = dosage.periods[0].start_date
        due = expand_dosage(dosage, start, start + timedelta(days=400))
        if proposal["type"] == "PN":
            assert due == [] and pn_allowance(dosage, start) is not None, proposal["code"]
        else:
            assert due, proposal["code"]
            if proposal["type"] == "M+M+A+N":
                assert all(s.time_kind not in (TimeKind.ANY, TimeKind.CLOCK) for s in due)
    assert kinds == {"N daglig": 349, "M+M+A+N": 118, "PN": 48, "FT": 1}


def test_danish_short_texts_match_fmk(proposals: tuple[dict[str, Any], ...]) -> None:
    mismatches = []
    for proposal in proposals:
        dosage = parse_dosage_proposal(proposal["xml"])["1.4.4"]
        if isinstance(dosage, StructuredDosage):
            dosage = dosage.starting(rendered_start(proposal["longTranslation"]))
        text = short_text(dosage)
        if text != proposal["shortTranslation"]:
            mismatches.append((proposal["code"], proposal["shortTranslation"], text))
        assert short_text(dosage, "en")
    rate = 1 - len(mismatches) / len(proposals)
    print(f"\nDanish short texts matching FMK: {len(proposals) - len(mismatches)}"
          f"/{len(proposals)} = {rate:.1%}")
    for code, expected, got in mismatches:
        print(f"  {code}: expected {expected!r}, got {got!r}")
    assert rate >= REQUIRED_MATCH_RATE


def test_the_fmk_example_dosage_documents() -> None:
    def read(name: str) -> Any:
        return parse_dosage_xml(reference_file(EXAMPLES / name).read_bytes())

    assert short_text(read("Dosage-2 tabletter 3 gange daglig.xml")) == \
        "2 tabletter 3 gange daglig"
    assert short_text(read("Dosage-2 tabletter morgen, middag og aften.xml")) == \
        "2 tabletter morgen, middag og aften"
    assert short_text(read("Dosage-1-2 stk 2-3 gange daglig.xml")) == "1-2 stk 2-3 gange daglig"
    assert isinstance(read("Dosage-FreeText.xml"), FreeTextDosage)
    assert isinstance(read("Dosage-AdministrationAccordingToSchemaInLocalSystem.xml"),
                      LocalSchemaDosage)
    thrice_weekly = read("Dosage-10 milliliter tre gange ugentlig.xml")
    start = thrice_weekly.periods[0].start_date
    assert [s.local_date - start for s in expand_dosage(
        thrice_weekly, start, start + timedelta(days=13))] == [
        timedelta(days=n) for n in (0, 2, 4, 7, 9, 11)]
    taper = read("Dosage-nedtrapning.xml")
    assert [len(expand_dosage(taper, day, day)) for day in (
        taper.periods[0].start_date + timedelta(days=n) for n in range(6))] == [3, 2, 2, 1, 1, 0]
    assert needs_manual_schedule(read("DosageExample.xml")) is None
    # A fixed dose on a day without a number cannot be placed on a date.
    reason = needs_manual_schedule(read("DosageExample-NotIterated.xml"))
    assert reason is not None and "any day" in reason.render("en")
