"""`medctl chart mar`, `medctl report error-rate` and `medctl round --pdf`: the printable
documents, saved as PDF files."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from clients.client import MedClient
from medservice.v1 import reports_pb2 as pb


def resident_name(value: str, facility: str | None) -> str:
    """A resident's resource name: given whole, or as a short id within --facility."""
    if value.startswith("facilities/") or not facility:
        return value
    return f"facilities/{facility}/residents/{value}"


def save(document: pb.Document, output: str, as_json: bool) -> int:
    """Writes the document to `output` whole or not at all (a temporary file renamed), and
    says where; exit 2 with one line when it cannot be written."""
    target = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(document.content)
        os.replace(tmp, target)
    except OSError as e:
        print(f"medctl: cannot write {output}: {e.strerror or e}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps({"output": str(target), "filename": document.filename,
                          "page_count": document.page_count, "bytes": len(document.content)}))
    else:
        pages = "page" if document.page_count == 1 else "pages"
        print(f"wrote {target} ({document.page_count} {pages})")
    return 0


def chart_mar(client: MedClient, args: argparse.Namespace) -> int:
    document = client.call(client.reports.GetAdministrationChart,
                           pb.GetAdministrationChartRequest(
                               resident=resident_name(args.resident, args.facility),
                               month=args.month))
    return save(document, args.output or document.filename, args.json)


def emergency_list(client: MedClient, args: argparse.Namespace) -> int:
    document = client.call(client.reports.GetEmergencyList, pb.GetEmergencyListRequest(
        facility=f"facilities/{args.facility}", date=args.date, shift_id=args.shift))
    return save(document, args.pdf, args.json)


def error_rate_report(client: MedClient, args: argparse.Namespace) -> int:
    document = client.call(client.reports.GetErrorRateReport, pb.GetErrorRateReportRequest(
        facility=f"facilities/{args.facility}", from_month=args.from_month,
        to_month=args.to_month))
    return save(document, args.output or document.filename, args.json)


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
