"""`medctl facilities set` (medication times, shifts, windows, escalation: administrators)
and `medctl order pause|resume|discontinue|reverse-discontinuation` (integrations)."""

from __future__ import annotations

import argparse
import re

from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient, new_request_id
from clients.defaults import (
    UsageError,
    add_resident_options,
    facility_of,
    facility_view,
    order_name,
    parse_instant,
    resident_name,
    resolve_order,
    timestamp,
)
from clients.output import print_json
from clients.words import order_state, say
from medservice.i18n import msg
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb

PN_DAYS = {"rolling": fpb.PN_DAY_MODE_ROLLING_24_HOURS, "calendar": fpb.PN_DAY_MODE_CALENDAR_DAY}
_TIMES = ("morning", "noon", "evening", "night")
# option -> TimingWindows field
_WINDOWS = {"window_time_critical": "time_critical_minutes",
            "window_more_than_daily": "more_than_daily_minutes",
            "window_daily": "daily_or_less_minutes",
            "late_documentation": "late_documentation_minutes"}


def _hhmm(value: str, option: str) -> str:
    m = re.fullmatch(r"(\d{1,2})[:.](\d{2})", value.strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise UsageError(f"{option}: cannot read {value!r}; give HH:MM")
    return f"{int(m[1]):02d}:{m[2]}"


def _shift(value: str) -> fpb.Shift:
    """"day=07:00-15:00" (or "day=7-15")."""
    m = re.fullmatch(r"([a-z0-9-]+)=([\d:.]+)-([\d:.]+)", value.strip())
    if not m:
        raise UsageError(f"--shift: cannot read {value!r}; give ID=HH:MM-HH:MM, e.g. "
                         "day=07:00-15:00 (repeat for every shift)")
    start, end = (v if re.search(r"[:.]", v) else f"{v}:00" for v in (m[2], m[3]))
    return fpb.Shift(shift_id=m[1], display_name=m[1].capitalize(),
                     start_time=_hhmm(start, "--shift"), end_time=_hhmm(end, "--shift"))


def _minutes(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        raise UsageError(f"{option}: give a number of minutes of at least 1")
    return value


def facilities_set(client: MedClient, args: argparse.Namespace) -> int:
    """Changes only what is given; the rest is kept as read (under its etag, so a change
    made meanwhile by someone else is refused, not overwritten)."""
    current = client.get_facility(args.id)
    facility = fpb.Facility(name=current.name, etag=current.etag)
    paths: list[str] = []
    if any(getattr(args, t) for t in _TIMES):
        facility.medication_times.CopyFrom(current.medication_times)
        for t in _TIMES:
            if getattr(args, t):
                setattr(facility.medication_times, t, _hhmm(getattr(args, t), f"--{t}"))
        paths.append("medication_times")
    if args.shift:
        given = [_shift(s) for s in args.shift]
        # A shift given replaces the one with its id and keeps its name; the others stay
        # (changing the day shift must not drop the night), unless --replace-shifts.
        kept = [] if args.replace_shifts else list(current.shifts)
        ids = [s.shift_id for s in kept]
        for new in given:
            if new.shift_id in ids:
                old = kept[ids.index(new.shift_id)]
                new.display_name = old.display_name or new.display_name
                kept[ids.index(new.shift_id)] = new
            else:
                kept.append(new)
                ids.append(new.shift_id)
        facility.shifts.extend(kept)
        paths.append("shifts")
    if any(getattr(args, o) is not None for o in _WINDOWS):
        facility.timing_windows.CopyFrom(current.timing_windows)
        for option, field in _WINDOWS.items():
            value = _minutes(getattr(args, option), "--" + option.replace("_", "-"))
            if value is not None:
                setattr(facility.timing_windows, field, value)
        paths.append("timing_windows")
    if args.escalation is not None:
        facility.alert_escalation_minutes = _minutes(args.escalation, "--escalation") or 0
        paths.append("alert_escalation_minutes")
    if args.pn_evaluation is not None:
        facility.pn_evaluation_minutes = _minutes(args.pn_evaluation, "--pn-evaluation") or 0
        paths.append("pn_evaluation_minutes")
    if args.pn_day:
        facility.pn_day_mode = PN_DAYS[args.pn_day]
        paths.append("pn_day_mode")
    if not paths:
        raise UsageError("nothing to change: give --morning/--noon/--evening/--night, "
                         "--shift, --window-*, --late-documentation, --escalation, "
                         "--pn-evaluation or --pn-day")
    done = client.update_facility(facility, paths)
    if args.json:
        print_json([done])
        return 0
    m, w = done.medication_times, done.timing_windows
    print(f"{done.name.rsplit('/', 1)[-1]}: " + say(msg(
        "cli.settings", times=f"{m.morning} {m.noon} {m.evening} {m.night}",
        shifts=", ".join(f"{s.shift_id} {s.start_time}-{s.end_time}" for s in done.shifts),
        windows=f"±{w.time_critical_minutes}/±{w.more_than_daily_minutes}/"
                f"±{w.daily_or_less_minutes}",
        late=w.late_documentation_minutes, escalation=done.alert_escalation_minutes)))
    return 0


def _order(client: MedClient, args: argparse.Namespace) -> str:
    resident = resident_name(args.resident, args.facility)
    if args.order:
        return order_name(resident, args.order)
    if not args.drug:
        raise UsageError("--order: give the order's id, or the drug with --drug")
    found = resolve_order(client, resident, args.drug)
    assert found is not None  # required: resolve_order raises when none is found
    return found.name


def _instant(client: MedClient, args: argparse.Namespace, value: str | None, option: str
             ) -> Timestamp | None:
    if not value:
        return None
    facility = facility_view(client, facility_of(resident_name(args.resident, args.facility)))
    return timestamp(parse_instant(value, facility.zone, facility.today(), option))


def _done(args: argparse.Namespace, order: cpb.Order, what: str) -> int:
    """"sat på pause ...: nu pauseret"; `what` is a cli.order.* message key."""
    if args.json:
        print_json([order])
    else:
        print(say(msg(what, name=order.name,
                      drug=f"{order.drug.name} {order.drug.strength}".rstrip(),
                      state=order_state(order.state))))
    return 0


def order_pause(client: MedClient, args: argparse.Namespace) -> int:
    request = cpb.PauseOrderRequest(name=_order(client, args), request_id=new_request_id())
    for field, value, option in (("pause_start", args.start, "--from"),
                                 ("pause_end", args.until, "--until")):
        ts = _instant(client, args, value, option)
        if ts is not None:
            getattr(request, field).CopyFrom(ts)
    return _done(args, client.call(client.cards.PauseOrder, request), "cli.order.paused")


def order_resume(client: MedClient, args: argparse.Namespace) -> int:
    request = cpb.ResumeOrderRequest(name=_order(client, args), request_id=new_request_id())
    ts = _instant(client, args, args.at, "--at")
    if ts is not None:
        request.resume_time.CopyFrom(ts)
    return _done(args, client.call(client.cards.ResumeOrder, request), "cli.order.resumed")


def order_discontinue(client: MedClient, args: argparse.Namespace) -> int:
    request = cpb.DiscontinueOrderRequest(name=_order(client, args), reason=args.reason or "",
                                          request_id=new_request_id())
    ts = _instant(client, args, args.at, "--at")
    if ts is not None:
        request.discontinue_time.CopyFrom(ts)
    return _done(args, client.call(client.cards.DiscontinueOrder, request),
                 "cli.order.discontinued")


def order_reverse(client: MedClient, args: argparse.Namespace) -> int:
    order = client.call(client.cards.ReverseDiscontinuation, cpb.ReverseDiscontinuationRequest(
        name=_order(client, args), request_id=new_request_id()))
    return _done(args, order, "cli.order.reversed")


def add_settings_commands(top: argparse._SubParsersAction,
                          facilities: argparse._SubParsersAction) -> None:
    p = facilities.add_parser("set", help="set a facility's medication times, shifts, "
                                          "windows and escalation (admin)")
    p.add_argument("id", help="the facility id")
    for t in _TIMES:
        p.add_argument(f"--{t}", help=f"the {t} dose time, HH:MM")
    p.add_argument("--shift", action="append", metavar="ID=HH:MM-HH:MM",
                   help="a shift; repeat for each: each replaces the shift with its id, the "
                        "others stay")
    p.add_argument("--replace-shifts", action="store_true",
                   help="the shifts given are all the facility's shifts")
    p.add_argument("--window-time-critical", type=int, metavar="MIN",
                   help="half-width of a time-critical dose's window")
    p.add_argument("--window-more-than-daily", type=int, metavar="MIN",
                   help="half-width for doses due more often than daily")
    p.add_argument("--window-daily", type=int, metavar="MIN",
                   help="half-width for doses due daily or less often")
    p.add_argument("--late-documentation", type=int, metavar="MIN",
                   help="a record entered this long after the dose is late documentation")
    p.add_argument("--escalation", type=int, metavar="MIN",
                   help="minutes an alert may stay unacknowledged before it escalates")
    p.add_argument("--pn-evaluation", type=int, metavar="MIN",
                   help="minutes within which a PN dose's effect is evaluated")
    p.add_argument("--pn-day", choices=sorted(PN_DAYS),
                   help="PN maximums per rolling 24 hours or per calendar day")
    p.set_defaults(handler=facilities_set)

    order = top.add_parser("order", help="pause, resume or discontinue an order "
                                         "(integration)")
    sub = order.add_subparsers(dest="cmd", required=True)
    for name, handler, p in (
            ("pause", order_pause,
             sub.add_parser("pause", help="pause an order (from now, open-ended by default)")),
            ("resume", order_resume,
             sub.add_parser("resume", help="end an order's pause (now by default)")),
            ("discontinue", order_discontinue,
             sub.add_parser("discontinue", help="discontinue an order (now by default)")),
            ("reverse-discontinuation", order_reverse,
             sub.add_parser("reverse-discontinuation", help="undo a discontinuation"))):
        add_resident_options(p)
        p.add_argument("--order", help="the order's id on the card")
        p.add_argument("--drug", help="or the drug's name or ATC code")
        if name == "pause":
            p.add_argument("--from", dest="start", help="HH:MM or date and HH:MM (default now)")
            p.add_argument("--until", help="HH:MM or date and HH:MM (default open-ended)")
        if name in ("resume", "discontinue"):
            p.add_argument("--at", help="HH:MM or date and HH:MM (default now)")
        if name == "discontinue":
            p.add_argument("--reason")
        p.set_defaults(handler=handler)
