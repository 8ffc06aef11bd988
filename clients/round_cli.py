"""`medctl give`, `medctl not-given`, `medctl check`, `medctl evaluate`: a quick round at
the command line."""

from __future__ import annotations

import argparse
from datetime import timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, MedServiceError, new_request_id
from clients.defaults import (
    UsageError,
    add_resident_options,
    facility_of,
    facility_view,
    now,
    order_name,
    parse_instant,
    parse_quantity,
    record_name,
    resident_name,
    resolve_order,
    timestamp,
)
from clients.output import print_json
from clients.words import say
from medservice.i18n import msg
from medservice.v1 import rounds_pb2 as pb

REASONS = {r.removeprefix("NOT_GIVEN_REASON_").lower().replace("_", "-"): v
           for r, v in pb.NotGivenReason.items() if v}
_VERDICT = {pb.CHECK_VERDICT_OK: "OK", pb.CHECK_VERDICT_WARN: "WARN",
            pb.CHECK_VERDICT_STOP: "STOP"}


def _now() -> Timestamp:
    return timestamp(now())


def _given_at(client: MedClient, resident: str, args: argparse.Namespace) -> Timestamp:
    """--time on the facility's clock (documented afterwards: its real time), else now."""
    if not args.time:
        return _now()
    facility = facility_view(client, facility_of(resident))
    return timestamp(parse_instant(args.time, facility.zone, facility.today(), "--time"))


def _find_dose(client: MedClient, resident: str, dose_id: str) -> pb.ScheduledDose:
    """The scheduled dose, looked up among the resident's doses of the last and next day."""
    at = now()
    for d in client.call(client.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
            parent=resident, start_time=timestamp(at - timedelta(days=1)),
            end_time=timestamp(at + timedelta(days=1)), page_size=500)).doses:
        if dose_id in (d.dose_id, d.name):
            return d
    raise MedServiceError(grpc.StatusCode.NOT_FOUND,
                          f"no dose {dose_id} for this resident around now", "DOSE_NOT_FOUND")


def _print_reasons(reasons: list[pb.CheckReason]) -> None:
    for r in reasons:
        print(f"  {r.code}: {r.message}")


def give(client: MedClient, args: argparse.Namespace) -> int:
    resident = resident_name(args.resident, args.facility)
    dose = _find_dose(client, resident, args.dose_id)
    quantity = (parse_quantity(args.quantity) if args.quantity
                else dose.amount.quantity or dose.amount.max_quantity)
    record = pb.AdministrationRecord(
        dose_id=dose.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity=quantity,
        route=dose.route, administration_time=_given_at(client, resident, args))
    return record_dose(client, args, resident, record)


def not_given(client: MedClient, args: argparse.Namespace) -> int:
    if args.reason == "other" and not args.text:
        raise UsageError("--text: say why, with --reason other")
    resident = resident_name(args.resident, args.facility)
    record = pb.AdministrationRecord(
        dose_id=args.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
        not_given_reason=REASONS[args.reason], reason_text=args.text or "")
    if args.time:
        record.administration_time.CopyFrom(_given_at(client, resident, args))
    # Without --time the service dates it at the dose's due time (the decision is about
    # that dose; a dose still to come is dated now): one rule, the service's.
    return record_dose(client, args, resident, record)


def record_dose(client: MedClient, args: argparse.Namespace, resident: str,
                record: pb.AdministrationRecord) -> int:
    """RecordDose with the --ack codes given; prints the record, its check reasons and the
    discrepancies it raised."""
    done = client.call(client.rounds.RecordDose, pb.RecordDoseRequest(
        parent=resident, record=record, acknowledged_reasons=[a.upper() for a in args.ack],
        request_id=new_request_id()))
    if args.json:
        print_json([done])
        return 0
    print(say(msg("cli.recorded", name=done.record.name)))
    _print_reasons(list(done.reasons))
    for name in done.discrepancies:
        print(f"  {say(msg('cli.discrepancy', name=name))}")
    return 0


def check(client: MedClient, args: argparse.Namespace) -> int:
    resident = resident_name(args.resident, args.facility)
    order, drug_id = order_name(resident, args.order) if args.order else "", ""
    if args.drug and not order:
        found = resolve_order(client, resident, args.drug, as_needed=args.pn,
                              required=False)
        # A drug not on the card is checked as it is: the service answers UNORDERED_DRUG.
        order, drug_id = (found.name, "") if found is not None else ("", args.drug)
    result = client.call(client.rounds.CheckDose, pb.CheckDoseRequest(
        resident=resident, dose_id=args.dose or "", order=order, drug_id=drug_id,
        quantity=parse_quantity(args.quantity) if args.quantity else "",
        route=args.route or "", as_needed=args.pn, administration_time=_now()))
    if args.json:
        print_json([result])
    else:
        print(_VERDICT.get(result.verdict, "?"))
        _print_reasons(list(result.reasons))
        if result.HasField("matched_dose"):
            d = result.matched_dose
            due = facility_view(client, facility_of(resident)).local_text(d.due_time)
            print(f"  {say(msg('cli.check.dose_due', dose=d.dose_id, due=due))}")
        if result.HasField("pn_doses_left"):
            print(f"  {say(msg('cli.check.pn_left', n=result.pn_doses_left))}")
    return 0 if result.verdict == pb.CHECK_VERDICT_OK else 4


EFFECTS = {"good": pb.PN_EFFECT_GOOD, "partial": pb.PN_EFFECT_PARTIAL,
           "none": pb.PN_EFFECT_NONE}


def evaluate(client: MedClient, args: argparse.Namespace) -> int:
    """Evaluate a PN dose's effect: reads the record for its etag, then evaluates."""
    args.record = record_name(args.record, args.resident, args.facility)
    resident = args.record.split("/administrations/")[0]
    records = client.call(client.rounds.ListAdministrationRecords,
                          pb.ListAdministrationRecordsRequest(parent=resident,
                                                              page_size=500)).records
    record = next((r for r in records if r.name == args.record), None)
    if record is None:
        raise MedServiceError(grpc.StatusCode.NOT_FOUND,
                              "no such record among the resident's latest", "RECORD_NOT_FOUND")
    done = client.call(client.rounds.EvaluatePnDose, pb.EvaluatePnDoseRequest(
        name=record.name, effect=EFFECTS[args.effect], note=args.note or "", etag=record.etag,
        request_id=new_request_id()))
    if args.json:
        print_json([done])
    else:
        print(say(msg("cli.evaluated", name=done.name, effect=msg(f"cli.effect.{args.effect}"))))
    return 0


def add_round_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("give", help="record a scheduled dose as given (now, or --time)")
    p.add_argument("dose_id")
    add_resident_options(p)
    p.add_argument("--quantity", help="default: the ordered quantity (the maximum of a "
                                      "range); 1,5 or 1.5")
    p.add_argument("--ack", action="append", default=[], metavar="CODE",
                   help="acknowledge a check reason (repeat)")
    p.add_argument("--time", help="when it was given, HH:MM facility time (default now)")
    p.set_defaults(handler=give)
    p = top.add_parser("not-given", help="record a scheduled dose as not given")
    p.add_argument("dose_id")
    add_resident_options(p)
    p.add_argument("--reason", required=True, choices=sorted(REASONS))
    p.add_argument("--text", help="required with --reason other")
    p.add_argument("--time", help="when it was decided, HH:MM (default the dose's due time)")
    p.set_defaults(handler=not_given, ack=[])
    p = top.add_parser("check", help="check a dose before giving it (exit 4 unless OK)")
    add_resident_options(p)
    p.add_argument("--dose", help="the scheduled dose's id")
    p.add_argument("--order", help="an order id of the resident's card")
    p.add_argument("--drug", help="the drug's name or ATC code (or drug id), as on the card")
    p.add_argument("--quantity", help="1,5 or 1.5")
    p.add_argument("--route")
    p.add_argument("--pn", action="store_true", help="an as-needed dose")
    p.set_defaults(handler=check)
    p = top.add_parser("evaluate", help="evaluate the effect of a PN dose")
    p.add_argument("record", help="facilities/F/residents/R/administrations/ID, or ID with "
                                  "--resident")
    add_resident_options(p, required=False)
    p.add_argument("--effect", required=True, choices=sorted(EFFECTS))
    p.add_argument("--note")
    p.set_defaults(handler=evaluate)
