"""`medctl chart mar`, `medctl report error-rate|dpsd` and `medctl round --pdf`: the
printable documents, saved as PDF (and CSV) files."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from google.protobuf.json_format import MessageToJson

from clients.client import MedClient
from clients.defaults import facility_of, facility_view, parse_date, parse_month
from clients.output import print_table
from clients.words import say
from medservice.i18n import Msg, msg
from medservice.v1 import reports_pb2 as pb


def resident_name(value: str, facility: str | None) -> str:
    """A resident's resource name: given whole, or as a short id within --facility."""
    if value.startswith("facilities/") or not facility:
        return value
    return f"facilities/{facility}/residents/{value}"


def write_whole(content: bytes, output: str) -> bool:
    """Writes `output` whole or not at all (a temporary file renamed); False, with one
    line, when it cannot be written."""
    target = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, target)
    except OSError as e:
        print(f"medctl: {say(msg('cli.cannot_write', file=output, why=e.strerror or str(e)))}",
              file=sys.stderr)
        return False
    return True


def save(document: pb.Document, output: str, as_json: bool) -> int:
    """Writes the document to `output` and says where; exit 2 with one line when it cannot
    be written."""
    target = Path(output)
    if not write_whole(document.content, output):
        return 2
    if as_json:
        print(json.dumps({"output": str(target), "filename": document.filename,
                          "page_count": document.page_count, "bytes": len(document.content)}))
    else:
        print(say(msg("cli.wrote_pages", document.page_count, file=str(target))))
    return 0


def _month(value: str, option: str) -> str:
    """A month as people write it ("2026-03", "3-2026"), as the API takes it: "2026-03"."""
    year, month = parse_month(value, option)
    return f"{year:04d}-{month:02d}"


def chart_mar(client: MedClient, args: argparse.Namespace) -> int:
    document = client.call(client.reports.GetAdministrationChart,
                           pb.GetAdministrationChartRequest(
                               resident=resident_name(args.resident, args.facility),
                               month=_month(args.month, "--month")))
    return save(document, args.output or document.filename, args.json)


def emergency_list(client: MedClient, args: argparse.Namespace) -> int:
    document = client.call(client.reports.GetEmergencyList, pb.GetEmergencyListRequest(
        facility=f"facilities/{args.facility}", date=args.date, shift_id=args.shift))
    return save(document, args.pdf, args.json)


def error_rate_report(client: MedClient, args: argparse.Namespace) -> int:
    document = client.call(client.reports.GetErrorRateReport, pb.GetErrorRateReportRequest(
        facility=f"facilities/{args.facility}", from_month=_month(args.from_month, "--from"),
        to_month=_month(args.to_month, "--to")))
    return save(document, args.output or document.filename, args.json)



def _category(category: pb.DpsdCategory.ValueType) -> Msg | str:
    """A DPSD category in the words of the printed report (report.dp_cat_*)."""
    name = pb.DpsdCategory.Name(category).removeprefix("DPSD_CATEGORY_").lower()
    return msg(f"report.dp_cat_{name}") if category else "?"


def _area(area: str) -> Msg | str:
    """"administration", "dispensing" in the printed report's words; another as it is."""
    return msg(f"report.dp_area_{area}") if area in ("administration", "dispensing") else area


def dpsd_report(client: MedClient, args: argparse.Namespace) -> int:
    """The month's counts on stdout (a table, or the whole report as JSON without the
    documents); --csv and --pdf write the files."""
    report = client.call(client.reports.GetDpsdReport, pb.GetDpsdReportRequest(
        facility=f"facilities/{args.facility}", month=_month(args.month, "--month"),
        include_csv=bool(args.csv), include_pdf=bool(args.pdf)))
    for output, document in ((args.csv, report.csv), (args.pdf, report.pdf)):
        if output and not write_whole(document.content, output):
            return 2
    if args.json:
        shown = pb.DpsdReport()
        shown.CopyFrom(report)
        shown.ClearField("csv")
        shown.ClearField("pdf")
        print(MessageToJson(shown, indent=None, preserving_proto_field_name=True))
        return 0
    rows: list[tuple[str | Msg, ...]] = [
        (_area(c.area), _category(c.category), str(c.confirmed), str(c.awaiting_review))
        for c in report.counts]
    rows.append((msg("report.dp_total"), "", str(report.confirmed_total),
                 str(report.awaiting_review_total)))
    print(f"DPSD {report.month} {report.facility} ({report.time_zone})")
    print_table(rows, (msg("report.dp_area"), msg("report.dp_category"),
                       msg("report.dp_confirmed"), msg("report.dp_awaiting")))
    print(say(msg("cli.dpsd.outside", n=report.confirmed_outside_categories)))
    print(say(msg("cli.dpsd.individual", n=len(report.individual))))
    for output in (args.csv, args.pdf):
        if output:
            print(say(msg("cli.wrote", file=output)))
    return 0


def fhir_export(client: MedClient, args: argparse.Namespace) -> int:
    """The Bundle's JSON on stdout (or --output)."""
    resident = resident_name(args.resident, args.facility)
    today = facility_view(client, facility_of(resident)).today()
    document = client.call(client.reports.ExportFhir, pb.ExportFhirRequest(
        resident=resident, start_date=parse_date(args.from_date, today, "--from").isoformat(),
        end_date=parse_date(args.to_date, today, "--to").isoformat()))
    if args.output:
        return save(document, args.output, args.json)
    sys.stdout.write(document.content.decode() + "\n")
    return 0


def add_report_commands(top: argparse._SubParsersAction) -> None:
    chart = top.add_parser("chart", help="printable charts").add_subparsers(dest="cmd",
                                                                          required=True)
    p = chart.add_parser("mar", help="a resident's administration chart (medicinskema) "
                                     "for a month, as PDF")
    p.add_argument("--resident", required=True,
                   help="facilities/F/residents/R, or R with --facility")
    p.add_argument("--facility", help="the facility of a short resident id")
    p.add_argument("--month", required=True, help="YYYY-MM (facility-local)")
    p.add_argument("--output", help="PDF file (default: the document's own name)")
    p.set_defaults(handler=chart_mar)
    report = top.add_parser("report", help="printable reports").add_subparsers(
        dest="cmd", required=True)
    p = report.add_parser("error-rate", help="a facility's monthly error rate, as PDF")
    p.add_argument("--facility", required=True)
    p.add_argument("--from", dest="from_month", required=True, help="YYYY-MM")
    p.add_argument("--to", dest="to_month", required=True, help="YYYY-MM")
    p.add_argument("--output", help="PDF file (default: the document's own name)")
    p.set_defaults(handler=error_rate_report)
    p = report.add_parser("dpsd", help="a facility's DPSD collective report of a month "
                                       "(samlerapportering): counts, --csv, --pdf")
    p.add_argument("--facility", required=True)
    p.add_argument("--month", required=True, help="YYYY-MM (facility-local)")
    p.add_argument("--csv", help="write the counts as CSV to this file")
    p.add_argument("--pdf", help="write the report as PDF to this file")
    p.set_defaults(handler=dpsd_report)

    fhir = top.add_parser("fhir", help="FHIR R4 documents").add_subparsers(dest="cmd",
                                                                          required=True)
    p = fhir.add_parser("export", help="a resident's administrations and discrepancies as a "
                                       "FHIR R4 searchset Bundle (JSON on stdout)")
    p.add_argument("--resident", required=True,
                   help="facilities/F/residents/R, or R with --facility")
    p.add_argument("--facility", help="the facility of a short resident id")
    p.add_argument("--from", dest="from_date", required=True,
                   help="first local date YYYY-MM-DD")
    p.add_argument("--to", dest="to_date", required=True,
                   help="local date YYYY-MM-DD after the last (exclusive)")
    p.add_argument("--output", help="a file instead of stdout")
    p.set_defaults(handler=fhir_export)
