"""`medctl dosage`: dosage texts and expansions for pharmacists, locally, without a server.

A dosage that cannot be read or expanded ends the command with exit code 2 and the reason
on one line; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path

from clients.defaults import UsageError, parse_date
from medservice.domain.clock import FacilityClock
from medservice.domain.dosage import FreeTextDosage, needs_manual_schedule
from medservice.domain.dosage_text import Language, short_text
from medservice.domain.errors import DomainError, InvalidArgument
from medservice.domain.facility import Facility, validate_time_zone
from medservice.domain.fhir_timing import TimingDosage, timing_problem
from medservice.domain.orders import Dosage
from medservice.domain.schedule import OrderTerms, ScheduledDose
from medservice.domain.schedule_timing import schedule_terms
from medservice.domain.vocabulary import unit_words
from medservice.i18n import Msg, call_language, number, text
from medservice.imports.fhir import read_fhir, read_fhir_dosage
from medservice.imports.fmk_dosage import parse_dosage_xml

EXIT_UNREADABLE = 2


class DosageRefused(Exception):
    """Why a dosage cannot be shown or expanded: printed as one line, exit code 2."""


def _reason(error: DomainError) -> str:
    return error.message.replace("\n", " ")


def _fmk(path: str) -> Dosage:
    try:
        return parse_dosage_xml(Path(path).read_bytes())
    except OSError as e:
        raise DosageRefused(f"{path}: cannot read the file: {e.strerror}") from None
    except DomainError as e:
        raise DosageRefused(f"{path}: {_reason(e)}") from None


def _fhir(path: str) -> tuple[Dosage, date | None, str]:
    """The dosage of the (first) MedicationRequest in a FHIR JSON file, and its start.

    The dosage is shown whatever the order's status: a completed order with no end is
    refused by an import (its doses would fall due), not by a look at its dosage; that
    refusal is returned as a note, said on stderr once the doses are shown."""
    try:
        data = Path(path).read_bytes()
        dosage, start = read_fhir_dosage(data)
    except OSError as e:
        raise DosageRefused(f"{path}: cannot read the file: {e.strerror}") from None
    except DomainError as e:
        raise DosageRefused(f"{path}: {_reason(e)}") from None
    problems = read_fhir(data).problems
    note = (f"medctl: note: an import would refuse the order: {problems[0].location}: "
            f"{problems[0].reason}" if problems else "")
    return dosage, start, note


def text_command(args: argparse.Namespace) -> int:
    status = 0
    for path in args.fmk_xml:
        try:
            print(f"{path}\t{short_text(_fmk(path), args.lang)}")
        except DosageRefused as e:
            print(f"medctl: {e}", file=sys.stderr)
            status = EXIT_UNREADABLE
    return status


def _expand(dosage: Dosage, start: date | None, first: date, days: int, zone: str,
            from_fhir: bool = False) -> list[ScheduledDose]:
    # A course with no start of its own begins at --from: here the first dose is at --from.
    if isinstance(dosage, TimingDosage):
        problem = timing_problem(dosage, order_start=start or first)
    elif isinstance(dosage, FreeTextDosage) and from_fhir:  # FHIR: the field that is missing
        problem = "dosageInstruction.timing: there is none, only text: the dosage is free text"
    else:  # the CLI's refusals are English, as its other errors
        manual = needs_manual_schedule(dosage)
        problem = manual.render("en") if manual is not None else None
    if problem:
        raise DosageRefused(f"cannot expand: {problem}")
    clock = FacilityClock.from_facility(Facility("cli", "cli", time_zone=zone))
    terms = OrderTerms(resident_id="cli", order_id="cli", dosage=dosage,
                       treatment_start=start or first)
    return schedule_terms(terms, clock, first, first + timedelta(days=days - 1))


def expand_command(args: argparse.Namespace) -> int:
    try:  # as medctl reads dates elsewhere (YYYY-MM-DD, DD-MM-YYYY, "i dag" ...)
        first = parse_date(args.from_date, date.today(), "--from")
    except UsageError:
        raise DosageRefused("--from must be a date YYYY-MM-DD or DD-MM-YYYY") from None
    if not 1 <= args.days <= 366:
        raise DosageRefused("--days must be between 1 and 366")
    if validate_time_zone(args.zone):
        raise DosageRefused(f"--zone: {args.zone!r} is not a known IANA time zone")
    dosage, start, note = (_fmk(args.fmk_xml), None, "") if args.fmk_xml else _fhir(
        args.fhir_json)
    doses = _expand(dosage, start, first, args.days, args.zone, from_fhir=bool(args.fhir_json))
    if note:
        print(note, file=sys.stderr)
    if args.json:
        for d in doses:
            print(json.dumps({
                "dose_id": d.dose_id, "local_date": d.local_date.isoformat(),
                "local_time": d.local_time.strftime("%H:%M"), "time": d.time_kind.value,
                "due_time": d.due_time.isoformat(),
                "window_start": d.window_start.isoformat() if d.window_start else None,
                "window_end": d.window_end.isoformat() if d.window_end else None,
                "quantity": str(d.amount.quantity) if d.amount.quantity is not None else None,
                "min_quantity": str(d.amount.min_quantity) if d.amount.is_range else None,
                "max_quantity": str(d.amount.max_quantity) if d.amount.is_range else None,
                "unit": d.unit.singular if d.amount.high == 1 else d.unit.plural,
            }))
        return 0
    # One language for the header and the rows: medctl --lang, Danish by default.
    language: Language = "en" if call_language() == "en" else "da"
    print(text("cli.expanded", language, len(doses), dosage=short_text(dosage, language)))
    for d in doses:
        amount = (number(d.amount.quantity, language) if d.amount.quantity is not None
                  else f"{number(d.amount.low, language)}-{number(d.amount.high, language)}")
        unit = unit_words(d.unit.singular, d.unit.plural, d.amount.high)
        when = text(f"time_kind.{d.time_kind.value}", language)
        print(f"{d.local_date.isoformat()}  {d.local_time.strftime('%H:%M')}  "
              f"{when:8}  {amount} {unit.render(language) if isinstance(unit, Msg) else unit}")
    return 0


def add_dosage_commands(top: argparse._SubParsersAction) -> None:
    dosage = top.add_parser("dosage", help="dosage texts and expansions (local, no server)")
    sub = dosage.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("text", help="FILE<TAB>text for FMK Dosage XML files")
    p.add_argument("--fmk-xml", nargs="+", required=True, metavar="FILE")
    p.add_argument("--lang", choices=("da", "en"), default="da")
    p.set_defaults(local=text_command)
    p = sub.add_parser("expand", help="the scheduled doses of a dosage")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fmk-xml", metavar="FILE")
    src.add_argument("--fhir-json", metavar="FILE")
    p.add_argument("--from", dest="from_date", required=True, help="first date, YYYY-MM-DD")
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--zone", default="Europe/Copenhagen")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="JSON lines instead of a table")
    p.set_defaults(local=expand_command)


def run_local(args: argparse.Namespace) -> int:
    try:
        return int(args.local(args))
    except DosageRefused as e:
        print(f"medctl: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except InvalidArgument as e:
        print(f"medctl: {_reason(e)}", file=sys.stderr)
        return EXIT_UNREADABLE
