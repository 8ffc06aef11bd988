"""`medctl pn`, `correct`, `records list`, `discrepancies list|get`, `error-rate` and
`reconcile`: what carers, shift leads and pharmacists do besides the scheduled round.

Times are shown on the facility's clock with its zone; days default to today there."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from decimal import Decimal

from clients.client import MedClient, new_request_id
from clients.defaults import (
    DATE_HELP,
    FacilityView,
    FacilityViews,
    UsageError,
    add_resident_options,
    facility_child,
    facility_of,
    facility_view,
    now,
    parse_date,
    parse_instant,
    parse_month,
    parse_quantity,
    record_name,
    resident_name,
    resolve_order,
    timestamp,
)
from clients.output import print_json, print_table
from clients.round_cli import record_dose
from clients.words import (
    decimal_text,
    decision,
    discrepancy_status,
    enum_word,
    language,
    say,
    severity,
)
from medservice.i18n import Arg, Msg, msg, number
from medservice.v1 import common_pb2
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as rpb

CODES = {c.removeprefix("DISCREPANCY_CODE_"): v for c, v in dpb.DiscrepancyCode.items() if v}
STATUSES = {s.removeprefix("DISCREPANCY_STATUS_").lower(): v
            for s, v in dpb.DiscrepancyStatus.items() if v}
SEVERITIES = {s.removeprefix("SEVERITY_").lower(): v for s, v in common_pb2.Severity.items()
              if v}


def _day_range(facility: FacilityView, day: date, last: date | None = None
               ) -> tuple[datetime, datetime]:
    """[start, end) of local days `day`..`last` (inclusive) on the facility's clock."""
    start = facility.clock.instant(day, datetime.min.time())
    end = facility.clock.instant((last or day) + timedelta(days=1), datetime.min.time())
    return start, end


def _days(facility: FacilityView, args: argparse.Namespace) -> tuple[datetime, datetime]:
    """--date, or --from and --to (inclusive); default today, on the facility's clock."""
    today = facility.today()
    if args.date and (args.from_date or args.to_date):
        raise UsageError("--date: give either --date or --from/--to")
    if args.from_date or args.to_date:
        first = parse_date(args.from_date, today, "--from") if args.from_date else today
        last = parse_date(args.to_date, today, "--to") if args.to_date else today
        if last < first:
            raise UsageError("--to: comes before --from")
        return _day_range(facility, first, last)
    return _day_range(facility, parse_date(args.date, today) if args.date else today)


def _add_days(p: argparse.ArgumentParser, default: str = "today") -> None:
    p.add_argument("--date", help=f"one day: {DATE_HELP} (default {default})")
    p.add_argument("--from", dest="from_date", help="first day (inclusive)")
    p.add_argument("--to", dest="to_date", help="last day (inclusive)")


# -- PN doses, corrections, records ------------------------------------------------------

def _pn_amount(o: cpb.Order) -> str:
    """The quantity a PN order gives at a time, when it names one."""
    d = o.dosage
    if d.HasField("timing"):
        return d.timing.amount.quantity
    return next((dose.amount.quantity for p in d.structured.periods for day in p.days
                 for dose in day.doses if dose.as_needed and dose.amount.quantity), "")


def pn_given(client: MedClient, args: argparse.Namespace) -> int:
    """Records a PN (as-needed) dose given, by drug name, ATC code or order id."""
    resident = resident_name(args.resident, args.facility)
    facility = facility_view(client, facility_of(resident))
    if not (args.drug or args.order):
        raise UsageError("--drug: name the drug (or ATC code), or give --order")
    order = resolve_order(client, resident, args.order or args.drug, as_needed=True,
                          required=bool(args.order))
    quantity = parse_quantity(args.quantity) if args.quantity else (
        _pn_amount(order) if order is not None else "")
    if not quantity:
        raise UsageError("--quantity: the order names no PN quantity; give it (1,5 or 1.5)")
    at = (parse_instant(args.time, facility.zone, facility.today(), "--time") if args.time
          else now())
    record = rpb.AdministrationRecord(
        order=order.name if order is not None else "",
        drug_id="" if order is not None else (args.drug or ""),
        outcome=rpb.ADMINISTRATION_OUTCOME_PN_GIVEN, quantity=quantity,
        route=args.route or (order.route if order is not None else ""),
        pn_reason=args.reason or "", administration_time=timestamp(at))
    return record_dose(client, args, resident, record)


def correct(client: MedClient, args: argparse.Namespace) -> int:
    """Marks a record entered-in-error (it is kept; its dose is due again)."""
    name = record_name(args.record, args.resident, args.facility)
    if not args.reason.strip():
        raise UsageError("--reason: say why the record is wrong")
    done = client.call(client.rounds.CorrectRecord, rpb.CorrectRecordRequest(
        name=name, reason=args.reason, request_id=new_request_id()))
    if args.json:
        print_json([done])
    else:
        print(say(msg("cli.record.corrected", name=done.name, reason=done.correction_reason)))
    return 0


def _drugs(client: MedClient, resident: str) -> dict[str, str]:
    """Order name -> "Drug strength", from the resident's card."""
    return {o.name: f"{o.drug.name} {o.drug.strength}".strip()
            for o in client.get_card(resident).orders}


def records_list(client: MedClient, args: argparse.Namespace) -> int:
    resident = resident_name(args.resident, args.facility)
    facility = facility_view(client, facility_of(resident))
    start, end = _days(facility, args)
    request = rpb.ListAdministrationRecordsRequest(
        parent=resident, start_time=timestamp(start), end_time=timestamp(end), page_size=500)
    records: list[rpb.AdministrationRecord] = []
    while True:
        page = client.call(client.rounds.ListAdministrationRecords, request)
        records += page.records
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    if args.json:
        print_json(records)
        return 0
    drugs = _drugs(client, resident)
    print_table([(facility.local_text(r.administration_time),
                  drugs.get(r.order, r.drug_id or "?"),
                  enum_word("outcome", rpb.AdministrationOutcome.Name(r.outcome),
                            "ADMINISTRATION_OUTCOME_"),
                  number(Decimal(r.quantity), language()) if r.quantity else "", r.performer,
                  msg("cli.entered_in_error")
                  if r.state == rpb.RECORD_STATE_ENTERED_IN_ERROR else "",
                  r.name.rsplit("/", 1)[-1]) for r in records],
                (msg("cli.col.time"), msg("report.drug"), msg("cli.col.outcome"),
                 msg("report.quantity"), msg("cli.col.by"), msg("cli.col.state"),
                 msg("cli.col.record")))
    return 0


# -- discrepancies, error rate, reconciliation -------------------------------------------

def discrepancy_row(d: dpb.Discrepancy, facility: FacilityView) -> tuple[str, ...]:
    """The code stays the code (what --code takes); the description is in words."""
    return (facility.local_text(d.occurrence_time),
            dpb.DiscrepancyCode.Name(d.code).removeprefix("DISCREPANCY_CODE_"),
            say(severity(d.severity)), say(discrepancy_status(d.status)),
            d.resident.rsplit("/", 1)[-1], d.description, d.name)


def discrepancies_list(client: MedClient, args: argparse.Namespace) -> int:
    parent = f"facilities/{args.facility}" if args.facility else "facilities/-"
    views = FacilityViews(client)
    request = dpb.ListDiscrepanciesRequest(
        parent=parent, page_size=500,
        resident=resident_name(args.resident, args.facility) if args.resident else "",
        code=CODES[args.code.upper()] if args.code else 0,  # type: ignore[arg-type]
        status=STATUSES[args.status] if args.status else 0,  # type: ignore[arg-type]
        min_severity=SEVERITIES[args.min_severity] if args.min_severity else 0)  # type: ignore[arg-type]
    if args.date or args.from_date or args.to_date:
        if not args.facility:
            raise UsageError("--date: days are the facility's; give --facility as well")
        start, end = _days(views.of(parent), args)
        request.start_time.CopyFrom(timestamp(start))
        request.end_time.CopyFrom(timestamp(end))
    items: list[dpb.Discrepancy] = []
    while True:
        page = client.call(client.discrepancies.ListDiscrepancies, request)
        items += page.discrepancies
        if not page.next_page_token or len(items) >= args.limit:
            break
        request.page_token = page.next_page_token
    items = items[:args.limit]
    if args.json:
        print_json(items)
        return 0
    print_table([discrepancy_row(d, views.of(d.name)) for d in items],
                (msg("cli.col.occurred"), msg("cli.col.code"), msg("cli.col.severity"),
                 msg("cli.col.status"), msg("report.resident"), msg("cli.col.what"),
                 msg("cli.col.discrepancy")))
    return 0


def discrepancies_get(client: MedClient, args: argparse.Namespace) -> int:
    d = client.get_discrepancy(facility_child(args.name, args.facility, "discrepancies",
                                              "name"))
    if args.json:
        print_json([d])
        return 0
    facility = facility_view(client, facility_of(d.name))
    row = discrepancy_row(d, facility)
    fields: list[tuple[Msg, Arg]] = [
        (msg("cli.col.discrepancy"), d.name), (msg("cli.col.code"), row[1]),
        (msg("cli.col.severity"), row[2]),
        (msg("cli.col.error"), msg("cli.yes" if d.is_error else "cli.no")),
        (msg("cli.col.status"), row[3]), (msg("cli.col.occurred"), row[0]),
        (msg("cli.col.detected"), facility.local_text(d.detect_time)),
        (msg("report.resident"), d.resident), (msg("cli.col.order"), d.order or "-"),
        (msg("cli.col.record"), d.record or "-"), (msg("cli.col.what"), d.description)]
    for label, value in fields:
        print(f"{say(label).lower() + ':':<12} {say(value)}")
    if d.HasField("review"):
        review = say(msg("cli.review.by", decision=decision(d.review.decision),
                         who=d.review.reviewer, at=facility.local_text(d.review.review_time)))
        print(f"{say(msg('cli.col.review')).lower() + ':':<12} {review} "
              f"{d.review.note}".rstrip())
    return 0


def error_rate(client: MedClient, args: argparse.Namespace) -> int:
    """The error rate of a month (default this one so far) or of the days given."""
    facility = facility_view(client, args.facility)
    if args.month:
        year, month = parse_month(args.month, "--month")
        first = date(year, month, 1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        start, end = _day_range(facility, first, last)
    elif args.date or args.from_date or args.to_date:
        start, end = _days(facility, args)
    else:
        start, end = _day_range(facility, facility.today().replace(day=1), facility.today())
    rate = client.call(client.discrepancies.ComputeErrorRate, dpb.ComputeErrorRateRequest(
        facility=f"facilities/{args.facility}", start_time=timestamp(start),
        end_time=timestamp(end)))
    if args.json:
        print_json([rate])
        return 0
    last_day = facility.clock.local_date_of(end - timedelta(microseconds=1))
    first_day = facility.clock.local_date_of(start)
    doses = rate.doses_given + rate.doses_not_given
    percent = decimal_text(rate.error_rate_percent or "0")
    print(f"{args.facility} {first_day}..{last_day}: " + say(msg(
        "cli.error_rate", percent=percent, errors=msg("cli.errors", rate.errors),
        doses=msg("cli.doses", doses), given=rate.doses_given,
        not_given=rate.doses_not_given)))
    return 0


def reconcile(client: MedClient, args: argparse.Namespace) -> int:
    facility = facility_view(client, args.facility)
    start, end = _days(facility, args)
    end = min(end, max(now(), start))  # nothing to find in what has not happened yet
    done = client.call(client.discrepancies.ReconcileFacility, dpb.ReconcileFacilityRequest(
        facility=f"facilities/{args.facility}", start_time=timestamp(start),
        end_time=timestamp(end), request_id=new_request_id()))
    if args.json:
        print_json([done])
        return 0
    print(say(msg("cli.reconciled", facility=args.facility, doses=done.doses_examined,
                  records=done.records_examined, found=done.discrepancies_found,
                  new=done.discrepancies_new)))
    return 0


def add_records_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("pn", help="record a PN (as-needed) dose given")
    add_resident_options(p)
    p.add_argument("--drug", help="the drug's name or ATC code, as on the card")
    p.add_argument("--order", help="the PN order's id (when --drug names several)")
    p.add_argument("--quantity", help="1,5 or 1.5 (default: the order's PN quantity)")
    p.add_argument("--reason", help="why it was given (e.g. smerter)")
    p.add_argument("--route", help="default: the order's route")
    p.add_argument("--time", help="when it was given: HH:MM facility time (default now)")
    p.add_argument("--ack", action="append", default=[], metavar="CODE",
                   help="acknowledge a check reason (repeat)")
    p.set_defaults(handler=pn_given)

    p = top.add_parser("correct", help="mark a record entered-in-error (it is kept)")
    p.add_argument("record", help="facilities/F/residents/R/administrations/ID, or ID with "
                                  "--resident")
    add_resident_options(p, required=False)
    p.add_argument("--reason", required=True, help="why the record is wrong")
    p.set_defaults(handler=correct)

    records = top.add_parser("records", help="a resident's administration records")
    sub = records.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="the records of a day (default today), newest first")
    add_resident_options(p)
    _add_days(p)
    p.set_defaults(handler=records_list)

    disc = top.add_parser("discrepancies", help="differences between ordered and done")
    sub = disc.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="newest occurrence first")
    p.add_argument("--facility", help="default: every facility of the token")
    p.add_argument("--resident", help="a resident id with --facility, or its full name")
    p.add_argument("--code", type=str.upper, choices=sorted(CODES))
    p.add_argument("--status", choices=sorted(STATUSES))
    p.add_argument("--min-severity", choices=sorted(SEVERITIES))
    _add_days(p, "every day")
    p.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    p.set_defaults(handler=discrepancies_list)
    p = sub.add_parser("get", help="one discrepancy")
    p.add_argument("name", help="facilities/F/discrepancies/D, or D with --facility")
    p.add_argument("--facility")
    p.set_defaults(handler=discrepancies_get)

    p = top.add_parser("error-rate", help="the medication error rate, with its counts")
    p.add_argument("--facility", required=True)
    p.add_argument("--month", help="YYYY-MM (default: this month so far)")
    _add_days(p, "this month")
    p.set_defaults(handler=error_rate)

    p = top.add_parser("reconcile", help="look for discrepancies again (pharmacist, admin)")
    p.add_argument("--facility", required=True)
    _add_days(p)
    p.set_defaults(handler=reconcile)

