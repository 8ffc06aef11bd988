"""The message catalogue (issue 15): every message in both languages with the same
placeholders, every key the code uses in the catalogue, no staff-facing sentence written
outside it, and the language of a call chosen as documented (docs/i18n.md)."""

from __future__ import annotations

import ast
import re
import string
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from clients.medctl import main as medctl
from medservice import i18n
from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility, PnDayMode
from medservice.domain.vocabulary import (
    ROUTES,
    UNITS,
    drug_text,
    quantity_text,
    route_concept,
    route_text,
    same_route,
)
from medservice.i18n import LANGUAGES, Msg, msg, negotiate, text
from medservice.reconcile.ledger import DAY, FacilityRules, period_msg
from medservice.reports.texts import catalogue_key

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "medservice"


def _catalogue(language: str) -> Catalog:
    with i18n.catalogue_path(language).open("rb") as f:
        return read_po(f, locale=language)


def _entries(language: str) -> dict[str, tuple[str, ...]]:
    """message id -> its text(s) (singular and plural for a plural message)."""
    out: dict[str, tuple[str, ...]] = {}
    for m in _catalogue(language):
        if not m.id:
            continue  # the header
        key = str(m.id[0] if isinstance(m.id, tuple | list) else m.id)
        texts = m.string if isinstance(m.string, tuple | list) else (m.string,)
        out[key] = tuple(str(t or "") for t in texts)
    return out


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_is_in_both_languages_with_the_same_placeholders() -> None:
    da, en = _entries("da"), _entries("en")
    assert set(da) == set(en), set(da) ^ set(en)
    for key in da:
        for language, texts in (("da", da[key]), ("en", en[key])):
            assert all(t.strip() for t in texts), f"{key} has no {language} text"
        assert len(da[key]) == len(en[key]), f"{key}: plural in one language only"
        names = {f for t in da[key] for f in _fields(t)}
        assert names == {f for t in en[key] for f in _fields(t)}, key


_CLI_KEY = re.compile(r"cli(\.[a-z_]+)+")


def _used_keys() -> tuple[set[str], set[str]]:
    """Keys the code names literally (msg("x"), text("x"), t("x") in reports) and the
    prefixes of those it builds (msg(f"route.{concept}"))."""
    keys, prefixes = set(), set()
    for path in [*MODULES.rglob("*.py"), *(ROOT / "clients").rglob("*.py")]:
        if "v1" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        # text() is the catalogue's only where imported from it (not SQLAlchemy's text).
        ours = {"msg", "Msg", "t"} | {
            a.asname or a.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "medservice.i18n"
            for a in node.names if a.name == "text"}
        for node in ast.walk(tree):
            if ("clients" in path.parts and isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and _CLI_KEY.fullmatch(node.value)):
                keys.add(node.value)  # medctl's keys, also where chosen before msg()
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.args and node.func.id in ours):
                continue
            first = node.args[0]
            reports = node.func.id == "t"
            if reports and "reports" not in path.parts:
                continue
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                keys.add(catalogue_key(first.value) if reports else first.value)
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                head = str(first.values[0].value)
                prefixes.add(catalogue_key(head) if reports else head)
    return keys, prefixes


def test_every_key_the_code_uses_is_in_the_catalogue() -> None:
    catalogue = set(_entries("da"))
    keys, prefixes = _used_keys()
    assert len(keys) > 40  # the scan sees the code
    assert keys - catalogue == set()
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in catalogue), prefix


def test_every_route_and_unit_concept_has_its_words() -> None:
    catalogue = set(_entries("da"))
    assert {f"route.{c}" for c in ROUTES} <= catalogue
    assert {f"unit.{c}" for c in UNITS} <= catalogue


# The modules whose strings reach staff: a sentence there must be a catalogue message.
# (domain/vocabulary.py holds what sources send, matched, never shown as such.)
STAFF_FACING = [
    "reconcile/findings.py", "reconcile/check.py", "reconcile/engine.py",
    "reconcile/ledger.py", "reconcile/status.py", "domain/alerts.py", "service/alerts.py",
    "reports/mar.py", "reports/emergency.py",
    "reports/error_rate.py", "reports/pdf.py", "reports/texts.py",
    "api/convert_alerts.py", "api/convert_review.py", "api/convert_rounds.py",
    "domain/rounds.py", "domain/orders.py", "domain/dosage.py", "service/rounds.py",
    "service/charts.py",
]
_WORDS = re.compile(r"[A-Za-zÆØÅæøå]{2,}[ ,:;][ ]?[A-Za-zÆØÅæøå]{2,}")
# Calls whose string arguments are for developers, logs or callers' programs, not staff:
# errors (API errors are English by design, docs/i18n.md), logs, asserts.
_NOT_STAFF_CALLS = {"FieldViolation", "InvalidArgument", "NotFound", "FailedPrecondition",
                    "PermissionDenied", "Aborted", "OutOfRange", "AlreadyExists",
                    "DomainError", "ValueError", "TypeError", "RuntimeError",
                    "AssertionError", "info", "warning", "error", "debug", "exception",
                    "ParagraphStyle", "TableStyle", "ContextVar", "TypeVar", "setFont"}


def _sentences(path: Path, not_staff: frozenset[str] = frozenset()) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", "")
            if name in _NOT_STAFF_CALLS | not_staff:
                skip |= {id(n) for n in ast.walk(node)}
        if isinstance(node, ast.Assert | ast.Raise):
            skip |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and _WORDS.search(re.sub(r"<[^>]*>", " ", node.value))):  # markup is no text
            found.append((node.lineno, node.value))
    return found


@pytest.mark.parametrize("module", STAFF_FACING)
def test_no_staff_facing_sentence_bypasses_the_catalogue(module: str) -> None:
    assert _sentences(MODULES / module) == []


# medctl's modules: what it prints for staff is from the catalogue; its --help and the
# errors about what was typed on its command line (UsageError) are for whoever runs it.
MEDCTL = ["alerts_cli.py", "audit_cli.py", "card_changes_cli.py", "card_checks_cli.py",
          "explain.py", "medctl.py", "offline_cli.py", "output.py", "records_cli.py",
          "report_cli.py", "review_cli.py", "round_cli.py", "settings_cli.py", "words.py"]
_MEDCTL_USAGE = frozenset({"add_argument", "add_parser", "_add_days", "UsageError",
                           "LineError", "fail", "ArgumentTypeError", "MedServiceError",
                           "ArgumentParser", "_Parser", "add_task"})


@pytest.mark.parametrize("module", MEDCTL)
def test_no_medctl_line_bypasses_the_catalogue(module: str) -> None:
    assert _sentences(ROOT / "clients" / module, _MEDCTL_USAGE) == []


def test_the_scan_would_see_a_sentence_written_in_the_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def f(at: str) -> str:\n    return f"dose given at {at}"\n')
    assert [line for line, _ in _sentences(bad)] == [2]


def test_a_message_renders_in_each_language_with_its_decimals_and_plurals() -> None:
    wrong = msg("finding.wrong_dose", given=Decimal("1.5"), ordered=Decimal("1"))
    assert wrong.render("da") == "mængde 1,5, hvor 1 er ordineret"
    assert wrong.render("en") == "quantity 1.5 where 1 is ordered"
    assert wrong.render("sv") == wrong.render("da")  # unknown: the default
    for count, da, en in ((1, "1 tablet", "1 tablet"), (2, "2 tabletter", "2 tablets"),
                          (Decimal("0.5"), "0,5 tablet", "0.5 tablet")):
        q = quantity_text(count, "tabletter")
        assert (q.render("da"), q.render("en")) == (da, en)
    assert text("period.hours", "da", 1) == "1 time"
    assert text("period.hours", "da", 6) == "6 timer"


def test_a_stored_message_comes_back_the_same_and_a_broken_one_is_none() -> None:
    nested = msg("alert.escalation", since="13:00 CET", summary=msg(
        "alert.discrepancy", code=msg("code.WRONG_DOSE"),
        description=msg("finding.wrong_dose", given=Decimal("0.5"), ordered="1")))
    back = i18n.decode(i18n.encode(nested))
    assert back == nested
    assert back is not None and back.render("en") == (
        "not acknowledged since 13:00 CET: Wrong dose: quantity 0.5 where 1 is ordered")
    for broken in ("{", "[]", '{"a": 1}', None):
        assert i18n.decode(broken) is None
    assert Msg.from_json({"k": "unit.tablet", "n": 2}).render("da") == "tabletter"


@pytest.mark.parametrize(("header", "language"), [
    ("en", "en"), ("en-GB,en;q=0.9", "en"), ("da-DK", "da"), ("EN-us", "en"),
    ("fr, en;q=0.5, da;q=0.8", "da"), ("nb-NO", None), ("en;q=0", None), ("", None),
    ("en;q=abc, da", "da"), ("*", None)])
def test_the_language_a_caller_asks_for(header: str, language: str | None) -> None:
    assert negotiate(header) == language


def test_the_call_language_is_the_callers_else_the_facilitys() -> None:
    with i18n.requesting("en-GB"):
        assert i18n.call_language("da") == "en"
        assert i18n.localised(msg("code.MISSED_DOSE"), "Glemt dosis") == "Missed dose"
    assert i18n.requested_language() is None  # only within the block
    assert i18n.call_language("en") == "en" and i18n.call_language() == "da"
    assert i18n.localised(msg("code.MISSED_DOSE"), "stored") == "stored"
    assert i18n.localised(None, "stored before 0016") == "stored before 0016"


def test_one_route_whatever_the_source() -> None:
    for value in ("OR", "oral", "Oral anvendelse", "26643006", "Oral Route",
                  "Oral Route (qualifier value)", " ORAL "):
        assert route_concept(value) == "oral", value
        assert route_text(value) == msg("route.oral")
    assert route_concept("47625008") == route_concept("255560000") == "intravenous"
    assert same_route("OR", "26643006") and not same_route("OR", "SC")
    assert same_route("Noget andet", "noget andet")  # unknown: compared as written
    assert route_text("efter aftale") == "efter aftale"
    assert languages_of(route_text("SC")) == ("subkutan anvendelse", "subcutaneous")


def test_the_drug_is_shown_with_its_strength_once() -> None:
    assert text("drug.with_strength", "da", name="Metformin", strength="500 mg") == \
        "Metformin 500 mg"
    assert drug_text("Metformin", "500 mg") == msg("drug.with_strength", name="Metformin",
                                                   strength="500 mg")
    assert drug_text("Metformin 500 mg", "500 mg") == "Metformin 500 mg"
    assert drug_text("Metformin", "") == "Metformin"


def languages_of(value: object) -> tuple[str, ...]:
    assert isinstance(value, Msg)
    return tuple(value.render(language) for language in LANGUAGES)


def test_medctl_dosage_expand_says_header_and_rows_in_one_language(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT.parent / "shared/reference/fmk/examples/2012/06/01" / \
        "Dosage-2 tabletter 3 gange daglig.xml"
    if not path.exists():
        pytest.skip(f"reference data not present ({path})")
    args = ["dosage", "expand", "--fmk-xml", str(path), "--from", "2026-03-28", "--days", "1"]
    assert medctl(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 tabletter 3 gange daglig  (3 doser)"
    assert lines[1].split()[2:] == ["vilkårlig", "2", "tabletter"]
    assert medctl(["--lang", "en", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 tablets 3 times daily  (3 doses)"
    assert lines[1].split()[2:] == ["any", "2", "tablets"]
    assert i18n.requested_language() is None  # --lang held for the command only


def test_pn_periods_in_words_per_language() -> None:
    rules = FacilityRules(FacilityClock.from_facility(Facility("f", "F")))
    calendar = replace(rules, pn_day_mode=PnDayMode.CALENDAR_DAY)
    cases = ((DAY, rules, "24 timer", "24 hours"), (DAY, calendar, "kalenderdag", "calendar day"),
             (timedelta(hours=4), rules, "4 timer", "4 hours"),
             (timedelta(hours=1), rules, "1 time", "1 hour"),
             (timedelta(days=2), rules, "2 dage", "2 days"),
             (timedelta(minutes=90), rules, "90 minutter", "90 minutes"))
    for period, r, da, en in cases:
        words = period_msg(period, r)
        assert (words.render("da"), words.render("en")) == (da, en)
