"""What medctl fills in and reads the way people write it: today and the current shift,
short resident ids within --facility, a drug by name or ATC code, the Danish decimal comma,
dates as "i morgen" or DD-MM-YYYY and times on the facility's clock.

A value that cannot be read is a UsageError: one line naming the option and what it takes
(medctl prints it and exits 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from clients.client import MedClient
from medservice.api.convert import facility_from_proto
from medservice.domain.clock import FacilityClock
from medservice.domain.errors import DomainError
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb


class UsageError(Exception):
    """A value on the command line that medctl cannot use: printed as one line, exit 2."""


def _real_now() -> datetime:
    return datetime.now(UTC)


# What medctl takes as now; tests set it to their server's clock.
CLOCK: Callable[[], datetime] = _real_now


def now() -> datetime:
    return CLOCK()


# -- dates, times and quantities ---------------------------------------------------------

_RELATIVE_DAYS = {"today": 0, "i dag": 0, "idag": 0, "tomorrow": 1, "i morgen": 1,
                  "imorgen": 1, "yesterday": -1, "i går": -1, "igår": -1}
DATE_HELP = "YYYY-MM-DD, DD-MM-YYYY, today/i dag, tomorrow/i morgen or yesterday/i går"


def parse_date(value: str, today: date, option: str = "--date") -> date:
    """A calendar date as people write it; relative words count from `today` (local)."""
    text = " ".join(value.strip().lower().split())
    if text in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[text])
    for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise UsageError(f"{option}: cannot read {value!r}; give {DATE_HELP}")


def parse_month(value: str, option: str) -> tuple[int, int]:
    """(year, month) of "YYYY-MM" or "MM-YYYY"."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})|(\d{1,2})-(\d{4})", value.strip())
    if m:
        year, month = (int(m[1]), int(m[2])) if m[1] else (int(m[4]), int(m[3]))
        if 1 <= month <= 12:
            return year, month
    raise UsageError(f"{option}: cannot read {value!r}; give a month as YYYY-MM")


def parse_instant(value: str, zone: ZoneInfo, today: date, option: str) -> datetime:
    """An instant: "HH:MM" (today, facility time), a date and "HH:MM", or ISO 8601 (with
    its offset, or without one on the facility's clock). Local times are on the facility's
    clock: fold 0, so a time the autumn night repeats is its first occurrence and one the
    spring night skips moves on by the gap (DOMAIN.md §5)."""
    text = value.strip()
    unreadable = UsageError(f"{option}: cannot read {value!r}; give HH:MM (facility time), "
                            "a date and HH:MM, or ISO 8601")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    day, clock = today, text
    if parsed is None and " " in text:
        day_text, _, clock = text.rpartition(" ")
        try:
            day = parse_date(day_text, today, option)
        except UsageError:
            raise unreadable from None  # the whole value, not the part before the time
    elif parsed is not None:
        return parsed.replace(tzinfo=zone).astimezone(UTC)
    m = re.fullmatch(r"(\d{1,2})[:.](\d{2})", clock)
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise unreadable
    return datetime.combine(day, time(int(m[1]), int(m[2])), zone).astimezone(UTC)


def timestamp(instant: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(instant.astimezone(UTC))
    return ts


def parse_quantity(value: str, option: str = "--quantity") -> str:
    """A decimal string for the API: "1,5" (Danish) and "1.5" both give "1.5"."""
    text = value.strip().replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0 or "e" in text.lower():
        raise UsageError(f"{option}: {value!r} is not a quantity; write it as 1,5 or 1.5")
    return text


# -- resources ---------------------------------------------------------------------------

def resident_name(value: str, facility: str | None, option: str = "--resident") -> str:
    """facilities/F/residents/R as given, or a short id R within --facility."""
    if value.startswith("facilities/"):
        return value
    if "/" in value or not value:
        raise UsageError(f"{option}: give a resident id with --facility, or "
                         "facilities/F/residents/R")
    if not facility:
        raise UsageError(f"{option}: a short resident id ({value}) needs --facility, or give "
                         f"facilities/F/residents/{value}")
    return f"facilities/{facility}/residents/{value}"


def facility_of(name: str) -> str:
    """The facility id of a resource name "facilities/F/..."."""
    parts = name.split("/")
    if len(parts) < 2 or parts[0] != "facilities" or not parts[1]:
        raise UsageError(f"{name!r} is not a resource name of a facility (facilities/F/...)")
    return parts[1]


@dataclass(frozen=True)
class FacilityView:
    """A facility as medctl needs it: its zone and clock, and what its shifts are."""

    proto: fpb.Facility
    clock: FacilityClock

    @property
    def facility_id(self) -> str:
        return self.proto.name.rsplit("/", 1)[-1]

    @property
    def zone(self) -> ZoneInfo:
        return self.clock.zone

    def today(self) -> date:
        return self.clock.local_date_of(now())

    def shift_ids(self) -> list[str]:
        return [s.shift_id for s in self.proto.shifts]

    def shift_and_date(self, shift: str | None, day: str | None) -> tuple[str, date]:
        """The shift and its date: the ones given, else the shift on duty now (and the date
        it started: a night shift after midnight belongs to yesterday)."""
        current = self.clock.shift_of(now())
        if shift is None:
            if current is None:
                raise UsageError("--shift: no shift of this facility is on duty now; give "
                                 "one of " + ", ".join(self.shift_ids()))
            shift = current[0]
        elif shift not in self.shift_ids():
            raise UsageError(f"--shift: {shift!r} is not a shift of {self.facility_id}; "
                             "its shifts are " + ", ".join(self.shift_ids()))
        if day is not None:
            return shift, parse_date(day, self.today())
        if current is not None and current[0] == shift:
            return shift, current[1]
        return shift, self.today()

    def local_text(self, ts: Timestamp, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """An instant on the facility's clock, with its zone ("2026-12-05 10:49 CET")."""
        local = ts.ToDatetime(tzinfo=UTC).astimezone(self.zone)
        return f"{local.strftime(fmt)} {local.strftime('%Z')}"


def facility_view(client: MedClient, facility_id: str) -> FacilityView:
    proto = client.get_facility(facility_id)
    try:
        clock = FacilityClock.from_facility(facility_from_proto(proto, facility_id))
    except DomainError as e:  # the service sent settings it would itself refuse
        raise UsageError(f"facility {facility_id}: {e.message}") from None
    return FacilityView(proto, clock)


class FacilityViews:
    """Facilities read once per command, by id (a list may span several)."""

    def __init__(self, client: MedClient) -> None:
        self._client = client
        self._views: dict[str, FacilityView] = {}

    def of(self, name: str) -> FacilityView:
        facility_id = facility_of(name)
        if facility_id not in self._views:
            self._views[facility_id] = facility_view(self._client, facility_id)
        return self._views[facility_id]


# -- orders of a resident's card ----------------------------------------------------------

def _as_needed(o: cpb.Order) -> bool:
    d = o.dosage
    if d.HasField("timing"):
        return d.timing.as_needed
    return any(dose.as_needed for p in d.structured.periods for day in p.days
               for dose in day.doses)


def order_label(o: cpb.Order) -> str:
    pn = ", PN" if _as_needed(o) else ""
    atc = f", ATC {o.drug.atc_code}" if o.drug.atc_code else ""
    return (f"{o.name.rsplit('/', 1)[-1]} ({o.drug.name} {o.drug.strength}".rstrip()
            + f"{atc}{pn})")


def find_orders(card: cpb.MedicineCard, drug: str, *, as_needed: bool | None = None
                ) -> list[cpb.Order]:
    """The card's orders of a drug named by its name (or the start of it), ATC code or
    drug id, case-insensitive. Orders in force come first; `as_needed` narrows to PN (or
    scheduled) orders when that leaves any."""
    key = drug.strip().casefold()
    if key.startswith("facilities/"):  # an order's full name: its id
        key = key.rsplit("/", 1)[-1]
    exact = [o for o in card.orders
             if key in (o.drug.name.casefold(), o.drug.atc_code.casefold(),
                        o.drug.drug_id.casefold(), o.name.rsplit("/", 1)[-1].casefold())]
    found = exact or [o for o in card.orders if o.drug.name.casefold().startswith(key)]
    live = [o for o in found if o.state in (cpb.ORDER_STATE_ACTIVE, cpb.ORDER_STATE_PAUSED)]
    found = live or found
    if as_needed is not None:
        found = [o for o in found if _as_needed(o) == as_needed] or found
    return found


def resolve_order(client: MedClient, resident: str, drug: str, *,
                  as_needed: bool | None = None, required: bool = True) -> cpb.Order | None:
    """The one order of the resident's card that `drug` names; None when none does and
    `required` is false (the service then judges the drug: UNORDERED_DRUG). Several are
    an error listing them, to choose with --order."""
    found = find_orders(client.get_card(resident), drug, as_needed=as_needed)
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(f"--drug {drug!r} names {len(found)} orders of this resident: "
                         + "; ".join(order_label(o) for o in found)
                         + "; choose one with --order")
    if required:
        raise UsageError(f"--drug {drug!r} is not on this resident's card (see `medctl card "
                         "get`)")
    return None


def order_name(resident: str, value: str) -> str:
    """An order's resource name: given whole, or its id on the resident's card."""
    return value if value.startswith("facilities/") else f"{resident}/orders/{value}"


# -- the options every command of a resident takes ----------------------------------------

def add_resident_options(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--resident", required=required,
                   help="a resident id with --facility, or facilities/F/residents/R")
    p.add_argument("--facility", help="the facility of a short resident id")


def add_shift_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--facility", required=True)
    p.add_argument("--date", help=f"the day the shift starts: {DATE_HELP} (default: the "
                                  "day of the shift on duty)")
    p.add_argument("--shift", help="a shift id of the facility (default: the one on duty)")


def facility_child(value: str, facility: str | None, collection: str, option: str) -> str:
    """facilities/F/<collection>/X as given, or a short id X within --facility."""
    if value.startswith("facilities/"):
        return value
    if not facility or "/" in value or not value:
        raise UsageError(f"{option}: give facilities/F/{collection}/ID, or the ID with "
                         "--facility")
    return f"facilities/{facility}/{collection}/{value}"


def record_name(value: str, resident: str | None, facility: str | None) -> str:
    """A record's name as given, or its id with --resident (and --facility)."""
    if "/administrations/" in value:
        return value
    if not resident or "/" in value or not value:
        raise UsageError("record: give facilities/F/residents/R/administrations/ID, or the "
                         "record id with --resident and --facility")
    return f"{resident_name(resident, facility)}/administrations/{value}"
