"""`medctl card checks`: the inspection checks of a facility's medicine cards, as a table,
JSON lines, or the printable report (--pdf)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from google.protobuf.json_format import MessageToJson

from clients.client import MedClient
from clients.output import print_table
from clients.report_cli import resident_name, save
from clients.words import say
from medservice.i18n import msg
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import reports_pb2 as rpb


def card_findings(client: MedClient, facility: str, resident: str = ""
                  ) -> Iterator[cpb.CardFinding]:
    token = ""
    while True:
        resp = client.call(client.cards.ListCardFindings, cpb.ListCardFindingsRequest(
            parent=f"facilities/{facility}", resident=resident, page_size=500,
            page_token=token))
        yield from resp.findings
        token = resp.next_page_token
        if not token:
            return


def card_checks(client: MedClient, args: argparse.Namespace) -> int:
    if args.pdf:
        document = client.call(client.reports.GetCardChecksReport,
                               rpb.GetCardChecksReportRequest(
                                   facility=f"facilities/{args.facility}"))
        return save(document, args.pdf, args.json)
    resident = resident_name(args.resident, args.facility) if args.resident else ""
    findings = list(card_findings(client, args.facility, resident))
    if args.json:
        for f in findings:
            print(MessageToJson(f, indent=None, preserving_proto_field_name=True))
        return 0
    if not findings:
        print(say(msg("cli.no_findings")))
        return 0
    print_table([(f.room, f.resident_display_name, f.drug.name, f.checkpoint_title, f.problem,
                  f.action) for f in findings],
                (msg("report.room"), msg("report.resident"), msg("report.drug"),
                 msg("report.cc_checkpoint"), msg("report.cc_problem"), msg("report.cc_action")))
    return 0


def add_card_check_commands(card: argparse._SubParsersAction) -> None:
    p = card.add_parser("checks", help="inspection checks of the facility's medicine cards")
    p.add_argument("--facility", required=True)
    p.add_argument("--resident", help="only this resident: facilities/F/residents/R or R")
    p.add_argument("--pdf", metavar="FILE", help="save the printable report as PDF instead")
    p.set_defaults(handler=card_checks)
