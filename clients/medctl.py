"""medctl: the medservice command line.

Connection: --target (or MEDSERVICE_TARGET, default localhost:50051) and --token (or
MEDSERVICE_TOKEN). Errors print one line and exit 1 (a refused call), 2 (input medctl
cannot use) or 4 (a check that is not OK); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from clients.alerts_cli import add_alert_commands, add_webhook_commands
from clients.audit_cli import add_audit_commands
from clients.card_changes_cli import add_card_change_commands
from clients.card_checks_cli import add_card_check_commands
from clients.client import MedClient, MedServiceError
from clients.defaults import (
    UsageError,
    add_resident_options,
    add_shift_options,
    facility_view,
    resident_name,
)
from clients.dosage_cli import add_dosage_commands, run_local
from clients.explain import explain
from clients.offline_cli import add_offline_commands
from clients.output import print_json, print_table
from clients.records_cli import add_records_commands
from clients.report_cli import add_report_commands, emergency_list
from clients.review_cli import add_review_commands
from clients.round_cli import add_round_commands
from clients.settings_cli import add_settings_commands
from clients.words import enum_word, language, order_state, say
from medservice.domain.vocabulary import drug_text, route_text, unit_words
from medservice.i18n import LANGUAGES, msg, number, requesting
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb

Handler = Callable[[MedClient, argparse.Namespace], int]


def _masked(person_id: str) -> str:
    """Lists show only the birth date part; `get` shows the whole identifier."""
    return f"{person_id[:6]}-****" if len(person_id) == 10 else "****"


# facilities


def facilities_list(client: MedClient, args: argparse.Namespace) -> int:
    items = list(client.list_facilities())
    if args.json:
        print_json(items)
    else:
        print_table([(f.name.split("/")[-1], f.display_name, f.time_zone,
                       ", ".join(f"{s.shift_id} {s.start_time}-{s.end_time}" for s in f.shifts))
                      for f in items], ("ID", msg("cli.col.name"), msg("cli.col.time_zone"),
                                        msg("cli.col.shifts")))
    return 0


def facilities_get(client: MedClient, args: argparse.Namespace) -> int:
    print_json([client.get_facility(args.id)])
    return 0


def facilities_create(client: MedClient, args: argparse.Namespace) -> int:
    facility = fpb.Facility(display_name=args.name, time_zone=args.time_zone or "")
    print_json([client.create_facility(facility, args.id or "")])
    return 0


def facilities_update(client: MedClient, args: argparse.Namespace) -> int:
    facility = fpb.Facility(name=f"facilities/{args.id}")
    paths: list[str] = []
    if args.name is not None:
        facility.display_name, paths = args.name, [*paths, "display_name"]
    if args.time_zone is not None:
        facility.time_zone, paths = args.time_zone, [*paths, "time_zone"]
    if not paths:
        raise UsageError("nothing to update: give --name or --time-zone")
    print_json([client.update_facility(facility, paths)])
    return 0


# residents


def residents_list(client: MedClient, args: argparse.Namespace) -> int:
    items = list(client.list_residents(args.facility))
    if args.json:
        print_json(items)
    else:
        # The short id: what --resident takes with --facility.
        print_table([(r.room, r.name.rsplit("/", 1)[-1], r.display_name, _masked(r.person_id))
                     for r in items], (msg("report.room"), msg("report.resident"),
                                       msg("cli.col.name"), msg("cli.col.person_id")))
    return 0


def residents_get(client: MedClient, args: argparse.Namespace) -> int:
    print_json([client.get_resident(resident_name(args.name, args.facility, "name"))])
    return 0


def residents_create(client: MedClient, args: argparse.Namespace) -> int:
    resident = fpb.Resident(person_id=args.person_id, display_name=args.name,
                            room=args.room or "")
    created = client.create_resident(args.facility, resident, args.id or "")
    if args.json:
        print_json([created])
    else:  # as the list shows it: the CPR number masked on a terminal
        print_table([(created.room, created.name.rsplit("/", 1)[-1], created.display_name,
                      _masked(created.person_id))],
                    (msg("report.room"), msg("report.resident"), msg("cli.col.name"),
                     msg("cli.col.person_id")))
    return 0


def residents_update(client: MedClient, args: argparse.Namespace) -> int:
    resident = fpb.Resident(name=resident_name(args.name, args.facility, "name"))
    paths: list[str] = []
    if args.display_name is not None:
        resident.display_name, paths = args.display_name, [*paths, "display_name"]
    if args.room is not None:
        resident.room, paths = args.room, [*paths, "room"]
    if not paths:
        raise UsageError("nothing to update: give --display-name or --room")
    print_json([client.update_resident(resident, paths)])
    return 0


# medicine cards and rounds


def _quantity(amount: common_pb2.DoseQuantity, unit: cpb.DoseUnit) -> str:
    """"1 tablet", "2 tabletter", "1-2 tabletter" in medctl's language (the vocabulary's
    one name of the unit, singular or plural)."""
    language = _language()
    if amount.quantity:
        count = Decimal(amount.quantity)
        shown = number(count, language)
    else:
        count = Decimal(amount.max_quantity or "0")
        shown = (f"{number(Decimal(amount.min_quantity or '0'), language)}-"
                 f"{number(count, language)}")
    return f"{shown} {_words(unit_words(unit.singular, unit.plural, count))}".strip()


def _dosage_text(o: cpb.Order) -> str:
    """The order's short dosage text the server wrote in medctl's language."""
    return (o.dosage.text_en if _language() == "en" else "") or o.dosage.text_da


def card_get(client: MedClient, args: argparse.Namespace) -> int:
    card = client.get_card(resident_name(args.resident, args.facility))
    if args.json:
        print_json([card])
        return 0
    print(_words(msg("cli.card_version", version=card.card_version)))
    print_table([(o.name.rsplit("/", 1)[-1], o.drug.name, o.drug.strength, route_text(o.route),
                   order_state(o.state),
                   _dosage_text(o) or (msg("code.NEEDS_MANUAL_SCHEDULE")
                                       if o.needs_manual_schedule else ""))
                  for o in card.orders],
                 (msg("cli.col.order"), msg("report.drug"), msg("cli.col.strength"),
                  msg("report.route"), msg("cli.col.state"), msg("cli.col.dosage")))
    return 0


FHIR_CHUNK = 100  # MedicationRequests per call when a Bundle is large


def fhir_chunks(data: bytes, size: int = FHIR_CHUNK) -> list[bytes]:
    """A large FHIR Bundle as several smaller ones, each with `size` MedicationRequests and
    every other entry (Patient, Medication) they may reference. Anything else is sent whole
    and left to the server to judge."""
    try:
        doc = json.loads(data)
    except ValueError:
        return [data]
    entries = doc.get("entry") if isinstance(doc, dict) else None
    if doc.get("resourceType") != "Bundle" or not isinstance(entries, list):
        return [data]
    requests = [e for e in entries
                if (e.get("resource") or {}).get("resourceType") == "MedicationRequest"]
    if len(requests) <= size:
        return [data]
    others = [e for e in entries if e not in requests]
    return [json.dumps({**doc, "entry": others + requests[i:i + size]}).encode()
            for i in range(0, len(requests), size)]


def _import(client: MedClient, args: argparse.Namespace, kind: str) -> int:
    from rich.progress import Progress

    data = Path(args.file).read_bytes()
    parts = fhir_chunks(data) if kind == "fhir" else [data]
    def send(resident: str, part: bytes, timeout: float) -> cpb.ImportMedicineCardResponse:
        if kind == "fmk":
            return client.import_fmk(resident, part, timeout=timeout)
        return client.import_fhir(resident, part, timeout=timeout,
                                  unidentified=args.unidentified)

    results = []
    with Progress(transient=True, disable=args.json) as progress:
        task = progress.add_task(f"importing {Path(args.file).name}", total=len(parts))
        for part in parts:
            results.append(send(resident_name(args.resident, args.facility), part,
                                timeout=max(client.timeout, len(part) / 100_000)))
            progress.advance(task)
    if args.json:
        print_json(results)
        return 0
    print_import(results)
    return 0 if not any(r.problems for r in results) else 3


def _change_word(kind: cpb.OrderChangeKind.ValueType) -> str:
    """"oprettet", "opdateret", ... (the catalogue's cli.import.* keys)."""
    return _words(enum_word("import", cpb.OrderChangeKind.Name(kind), "ORDER_CHANGE_KIND_"))


def print_import(results: Sequence[cpb.ImportMedicineCardResponse]) -> None:
    """What an import did: a count per kind, then each order (created, updated, unchanged,
    removed, kept unreadable, refused, with why), then what was wrong with the document
    itself, and whether the card version was applied whole."""
    changes = [c for r in results for c in r.changes]
    counts: dict[str, int] = {}
    for change in changes:
        counts[_change_word(change.kind)] = counts.get(_change_word(change.kind), 0) + 1
    print(", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
          or _words(msg("cli.import.no_orders")))
    print_table([(_change_word(c.kind),
                   c.source_order_id or c.order.rsplit("/", 1)[-1] or "?",
                   str(c.version) if c.version else "", c.reason)
                  for c in changes], (msg("cli.col.done"), msg("cli.col.order"),
                                      msg("cli.col.version"), msg("cli.col.why")))
    reasons = [c.reason for c in changes]
    for p in (p for r in results for p in r.problems):
        said = f"{p.location}: {p.reason}" if p.location else p.reason
        if not any(reason.startswith(said) for reason in reasons):
            print(_words(msg("cli.import.problem_at", at=p.location, reason=p.reason)
                         if p.location else msg("cli.import.problem", reason=p.reason)))
    if results and results[-1].card.incomplete:
        print(_words(msg("cli.import.incomplete", version=results[-1].card.card_version)))


def import_fmk(client: MedClient, args: argparse.Namespace) -> int:
    return _import(client, args, "fmk")


def import_fhir(client: MedClient, args: argparse.Namespace) -> int:
    return _import(client, args, "fhir")


def _shift(client: MedClient, args: argparse.Namespace) -> None:
    """Fills in --shift and --date: the shift on duty now and the day it started."""
    facility = facility_view(client, args.facility)
    shift, day = facility.shift_and_date(args.shift, args.date)
    args.shift, args.date, args.zone = shift, day.isoformat(), facility.zone


def round_list(client: MedClient, args: argparse.Namespace) -> int:
    _shift(client, args)
    if args.pdf:
        return emergency_list(client, args)
    schedule = client.shift_schedule(args.facility, args.date, args.shift)
    if args.json:
        print_json([schedule])
        return 0
    zone = args.zone
    print(f"{args.facility}  {args.shift} {args.date}  "
          f"{_words(msg('cli.times_in', zone=zone.key))}")
    for r in schedule.residents:
        print(f"{r.room:>5}  {r.display_name}")
        for d in r.doses:
            window = ""
            if d.HasField("window_start"):
                half = d.window_end.ToDatetime() - d.due_time.ToDatetime()
                window = f"±{int(half.total_seconds() // 60)} min"
            print(f"       {d.local_time}  {_dose_status(d, zone):<36}  "
                  f"{_words(drug_text(d.drug.name, d.drug.strength))}  "
                  f"{_quantity(d.amount, d.unit)}  {_words(route_text(d.route))}  {window}  "
                  f"{d.dose_id}")
        for p in r.pn_allowances:
            period = p.period or _words(msg("period.24_hours"))
            limit = _words(msg("cli.pn_unlimited") if p.unlimited else msg(
                "cli.pn_left", left=p.doses_left, max=p.max_doses_per_day, period=period))
            last = _words(msg("cli.pn_last", at=_local_hhmm(p.last_given_time, zone))) \
                if p.HasField("last_given_time") else ""
            print(f"       PN     {_words(drug_text(p.drug.name, p.drug.strength))}  "
                  f"{_quantity(p.amount, p.unit)}  "
                  f"{_words(msg('cli.pn_given', given=p.doses_given, limit=limit, last=last))}")
        for n in r.notes:
            print(f"       {_words(msg('cli.note')):<6} {n.drug.name}: {n.text}")
    return 0


_NOT_GIVEN = {rpb.NOT_GIVEN_REASON_REFUSED: "refused",
              rpb.NOT_GIVEN_REASON_CLINICAL_HOLD: "clinical_hold",
              rpb.NOT_GIVEN_REASON_DRUG_UNAVAILABLE: "drug_unavailable",
              rpb.NOT_GIVEN_REASON_RESIDENT_ABSENT: "resident_absent",
              rpb.NOT_GIVEN_REASON_OTHER: "other"}  # the catalogue's not_given.* keys


def _local_hhmm(ts: Timestamp, zone: ZoneInfo) -> str:
    return ts.ToDatetime(tzinfo=UTC).astimezone(zone).strftime("%H:%M")


def _dose_status(d: rpb.ScheduledDose, zone: ZoneInfo) -> str:
    """The round list's status column: what happened, when (facility time) and by whom."""
    at = _local_hhmm(d.administration_time, zone) if d.HasField("administration_time") else ""
    if d.status == rpb.DOSE_STATUS_GIVEN:
        return _words(msg("cli.status.given", at=at, who=d.performer))
    if d.status == rpb.DOSE_STATUS_NOT_GIVEN:
        key = _NOT_GIVEN.get(d.not_given_reason)
        reason = msg(f"not_given.{key}") if key else msg("cli.no_reason")
        return _words(msg("cli.status.not_given", at=at, who=d.performer, reason=reason))
    if d.status == rpb.DOSE_STATUS_MISSED:
        return _words(msg("cli.status.missed"))
    if d.status == rpb.DOSE_STATUS_NOT_DOCUMENTED:
        return _words(msg("cli.status.not_documented"))
    return _words(msg("cli.status.due_again" if d.corrected_record else "cli.status.due"))


def dispensing(client: MedClient, args: argparse.Namespace) -> int:
    _shift(client, args)
    lst = client.dispensing_list(args.facility, args.date, args.shift)
    if args.json:
        print_json([lst])
        return 0
    rows = []
    for r in lst.residents:
        for source, items in (("pouch", r.pharmacy_dispensed), ("poured", r.staff_poured)):
            for i in items:
                total = Decimal(i.total_quantity)
                unit = _words(unit_words(i.unit.singular, i.unit.plural, total))
                quantity = f"{number(total, _language())} {unit}".strip()
                rows.append((r.room, r.display_name, _words(msg(f"report.{source}")),
                             _words(drug_text(i.drug.name, i.drug.strength)),
                             quantity + (_words(msg("cli.max")) if i.includes_range else ""),
                             " ".join(i.times)))
    print_table(rows, [_words(msg(key)) for key in (
        "report.room", "report.resident", "report.el_source", "report.drug", "cli.total",
        "cli.times")])
    return 0


_language = language  # --lang, set in main as the calls' accept-language
_words = say  # a catalogue message (or a plain value) in medctl's language


class _Parser(argparse.ArgumentParser):
    """A usage error is one line naming the command and what it takes, not the usage."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _json_everywhere(parser: argparse.ArgumentParser) -> None:
    """--json after the command as well as before it, on every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                if not any("--json" in a.option_strings for a in sub._actions):
                    sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                                     help="JSON lines instead of a table")
                _json_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medctl", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default=os.environ.get("MEDSERVICE_TARGET",
                                                           "localhost:50051"))
    parser.add_argument("--token", default=os.environ.get("MEDSERVICE_TOKEN", ""))
    parser.add_argument("--tls", action="store_true", help="use TLS")
    parser.add_argument("--ca-file", help="PEM root certificates for TLS")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument("--lang", dest="language", choices=LANGUAGES,
                        default=os.environ.get("MEDCTL_LANG") or None,
                        help="language of the texts, da or en (env MEDCTL_LANG); default: "
                             "the facility's for the server's texts, Danish for medctl's")
    top = parser.add_subparsers(dest="area", required=True)

    fac = top.add_parser("facilities", help="care homes").add_subparsers(dest="cmd",
                                                                       required=True)
    fac.add_parser("list").set_defaults(handler=facilities_list)
    p = fac.add_parser("get")
    p.add_argument("id")
    p.set_defaults(handler=facilities_get)
    p = fac.add_parser("create")
    p.add_argument("--id", help="facility id (default: generated)")
    p.add_argument("--name", required=True)
    p.add_argument("--time-zone")
    p.set_defaults(handler=facilities_create)
    p = fac.add_parser("update")
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--time-zone")
    p.set_defaults(handler=facilities_update)

    res = top.add_parser("residents", help="residents of a facility").add_subparsers(
        dest="cmd", required=True)
    p = res.add_parser("list")
    p.add_argument("--facility", required=True)
    p.set_defaults(handler=residents_list)
    p = res.add_parser("get")
    p.add_argument("name", help="facilities/F/residents/R, or R with --facility")
    p.add_argument("--facility")
    p.set_defaults(handler=residents_get)
    p = res.add_parser("create")
    p.add_argument("--facility", required=True)
    p.add_argument("--id")
    p.add_argument("--person-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--room")
    p.set_defaults(handler=residents_create)
    p = res.add_parser("update")
    p.add_argument("name", help="facilities/F/residents/R, or R with --facility")
    p.add_argument("--facility")
    p.add_argument("--display-name")
    p.add_argument("--room")
    p.set_defaults(handler=residents_update)

    card = top.add_parser("card", help="a resident's medicine card").add_subparsers(
        dest="cmd", required=True)
    p = card.add_parser("get")
    p.add_argument("resident", help="facilities/F/residents/R, or R with --facility")
    p.add_argument("--facility")
    p.set_defaults(handler=card_get)
    add_card_check_commands(card)
    add_card_change_commands(card)

    imp = top.add_parser("import", help="import an FMK or FHIR document into a card")
    imp_sub = imp.add_subparsers(dest="cmd", required=True)
    for kind, handler in (("fmk", import_fmk), ("fhir", import_fhir)):
        p = imp_sub.add_parser(kind)
        p.add_argument("file")
        add_resident_options(p)
        if kind == "fhir":
            p.add_argument("--unidentified", action="store_true",
                           help="the document names no patient by CPR number and I checked "
                                "that it is about this resident (recorded in the audit trail)")
        p.set_defaults(handler=handler)

    for name, handler, p in (
            ("round", round_list, top.add_parser("round", help="the round list of a shift")),
            ("dispensing", dispensing,
             top.add_parser("dispensing", help="what to prepare for a shift"))):
        add_shift_options(p)
        if name == "round":
            p.add_argument("--pdf", metavar="FILE",
                           help="save the emergency list (nødliste) of the shift as PDF")
        p.set_defaults(handler=handler, pdf=None)

    add_round_commands(top)
    add_offline_commands(top)
    add_alert_commands(top)
    add_webhook_commands(top)
    add_audit_commands(top)
    add_review_commands(top)
    add_report_commands(top)
    add_dosage_commands(top)
    add_records_commands(top)
    add_settings_commands(top, fac)
    _json_everywhere(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # medctl's own words (its errors' too), and the server's, in the language asked for
    with requesting(args.language):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "local", None) is not None:
            return run_local(args)
        ca = Path(args.ca_file).read_bytes() if args.ca_file else None
        with MedClient(args.target, args.token, tls=args.tls, root_certificates=ca,
                       timeout=args.timeout, language=args.language or "") as client:
            handler: Handler = args.handler
            return handler(client, args)
    except MedServiceError as e:
        print(f"medctl: {explain(e, args.target)}", file=sys.stderr)
        return 1
    except UsageError as e:
        print(f"medctl: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    except OSError as e:  # a file named on the command line: one line, never a traceback
        print(f"medctl: {file_error(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # a fault of medctl's own: still one line, never a traceback
        print(f"medctl: {_words(msg('cli.unexpected', error=f'{type(e).__name__}: {e}'))}",
              file=sys.stderr)
        return 70


def file_error(e: OSError) -> str:
    """"kan ikke læse /missing.xml: No such file or directory" (the system's reason as it
    says it)."""
    why = e.strerror or str(e)
    return _words(msg("cli.cannot_read", file=str(e.filename), why=why) if e.filename
                  else msg("cli.cannot_read_a_file", why=why))


if __name__ == "__main__":
    sys.exit(main())
