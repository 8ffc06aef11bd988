"""medctl's readings of what people type, and its one-line errors: pure, no server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import grpc
import pytest

from clients import defaults
from clients.client import MedServiceError
from clients.defaults import (
    FacilityView,
    UsageError,
    find_orders,
    parse_date,
    parse_instant,
    parse_month,
    parse_quantity,
    resident_name,
)
from clients.explain import explain
from medservice import i18n
from medservice.api.convert import facility_to_proto
from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.v1 import medicine_cards_pb2 as cpb
from tests.builders import K, dose, morning_evening, order, structured

TODAY = date(2026, 12, 5)
ZONE = ZoneInfo("Europe/Copenhagen")


@pytest.mark.parametrize(("said", "day"), [
    ("today", TODAY), ("I dag", TODAY), ("i  morgen", date(2026, 12, 6)),
    ("tomorrow", date(2026, 12, 6)), ("i går", date(2026, 12, 4)),
    ("2026-12-24", date(2026, 12, 24)), ("24-12-2026", date(2026, 12, 24)),
    ("24.12.2026", date(2026, 12, 24))])
def test_dates_as_people_write_them(said: str, day: date) -> None:
    assert parse_date(said, TODAY) == day


@pytest.mark.parametrize("said", ["32-13-2026", "næste uge", "", "2026-02-30"])
def test_an_unreadable_date_names_what_is_taken(said: str) -> None:
    with pytest.raises(UsageError, match="DD-MM-YYYY, today/i dag, tomorrow/i morgen"):
        parse_date(said, TODAY)


def test_quantities_take_the_danish_decimal_comma_and_refuse_the_rest() -> None:
    assert [parse_quantity(q) for q in ("1,5", "1.5", "0,025", " 2 ")] == [
        "1.5", "1.5", "0.025", "2"]
    for bad in ("", "en", "1,5,0", "-1", "0", "1e3", "nan"):
        with pytest.raises(UsageError, match=r"write it as 1,5 or 1\.5"):
            parse_quantity(bad)


def test_months_and_instants_on_the_facility_clock() -> None:
    assert parse_month("2026-03", "--month") == (2026, 3)
    with pytest.raises(UsageError, match="YYYY-MM"):
        parse_month("2026-13", "--month")
    # 08:15 in December is CET (UTC+1); a date and a time; an ISO instant keeps its offset.
    assert parse_instant("08:15", ZONE, TODAY, "--time") == datetime(2026, 12, 5, 7, 15,
                                                                     tzinfo=UTC)
    assert parse_instant("i går 8.15", ZONE, TODAY, "--time") == datetime(
        2026, 12, 4, 7, 15, tzinfo=UTC)
    assert parse_instant("2026-07-01T08:15:00+02:00", ZONE, TODAY, "--time") == datetime(
        2026, 7, 1, 6, 15, tzinfo=UTC)
    with pytest.raises(UsageError, match="--time: cannot read '25:00'"):
        parse_instant("25:00", ZONE, TODAY, "--time")


def test_short_resident_ids_need_the_facility() -> None:
    assert resident_name("r1", "f") == "facilities/f/residents/r1"
    assert resident_name("facilities/g/residents/r1", "f") == "facilities/g/residents/r1"
    with pytest.raises(UsageError, match="needs --facility"):
        resident_name("r1", None)


def _card() -> cpb.MedicineCard:
    r = "facilities/f/residents/r1"
    orders = [order(r, "para", "Paracetamol", morning_evening()),
              order(r, "pn", "Paracetamol", structured([dose(K.DOSE_TIME_KIND_ANY,
                                                             as_needed=True)])),
              order(r, "old", "Ibuprofen", morning_evening())]
    orders[0].drug.atc_code = orders[1].drug.atc_code = "N02BE01"
    orders[0].state = orders[1].state = cpb.ORDER_STATE_ACTIVE
    orders[2].state = cpb.ORDER_STATE_DISCONTINUED
    return cpb.MedicineCard(orders=orders)


def test_a_drug_by_name_prefix_or_atc_code_and_pn_narrows_it() -> None:
    card = _card()
    assert [o.name[-4:] for o in find_orders(card, "n02be01")] == ["para", "s/pn"]
    assert [o.name[-2:] for o in find_orders(card, "parac", as_needed=True)] == ["pn"]
    assert [o.name[-4:] for o in find_orders(card, "PARACETAMOL", as_needed=False)] == [
        "para"]
    assert [o.name[-3:] for o in find_orders(card, "ibu")] == ["old"]  # only one there
    assert find_orders(card, "Warfarin") == []


def test_an_error_is_one_line_with_its_violations_once_and_advice() -> None:
    bad = MedServiceError(grpc.StatusCode.INVALID_ARGUMENT, "quantity: not a decimal",
                          "INVALID_ARGUMENT", [("quantity", "not a decimal")])
    assert explain(bad) == "INVALID_ARGUMENT: quantity: not a decimal"
    bare = MedServiceError(grpc.StatusCode.INVALID_ARGUMENT, "", "",
                           [("a", "x"), ("b", "y")])
    assert explain(bare) == "INVALID_ARGUMENT: a: x; b: y"
    ack = MedServiceError(grpc.StatusCode.FAILED_PRECONDITION, "the check found WRONG_DOSE, "
                          "LATE_DOSE", "CHECK_NOT_ACKNOWLEDGED",
                          metadata={"reasons": "WRONG_DOSE,LATE_DOSE"})
    assert explain(ack).endswith("registrér den igen med --ack WRONG_DOSE --ack LATE_DOSE")
    with i18n.requesting("en"):  # medctl --lang en
        assert explain(ack).endswith("record it again with --ack WRONG_DOSE --ack LATE_DOSE")
    done = MedServiceError(grpc.StatusCode.ALREADY_EXISTS, "already recorded",
                           "DOSE_ALREADY_RECORDED", metadata={"record": "facilities/f/x"})
    assert explain(done) == ("ALREADY_EXISTS: already recorded [DOSE_ALREADY_RECORDED] "
                             "(record: facilities/f/x)")
    assert all("\n" not in explain(e) for e in (bad, bare, ack, done))


def _view() -> FacilityView:
    facility = Facility("f", "Home")
    return FacilityView(facility_to_proto(facility), FacilityClock.from_facility(facility))


@pytest.mark.parametrize(("utc_hour", "shift", "day"), [
    (8, "day", date(2026, 12, 5)),  # 09:00 CET
    (15, "evening", date(2026, 12, 5)),  # 16:00
    (23, "night", date(2026, 12, 5)),  # 00:00 on the 6th: the night that began on the 5th
    (5, "night", date(2026, 12, 4))])  # 06:00 on the 5th: the night of the 4th
def test_the_shift_on_duty_and_the_day_it_began(monkeypatch: pytest.MonkeyPatch,
                                                utc_hour: int, shift: str, day: date) -> None:
    monkeypatch.setattr(defaults, "CLOCK", lambda: datetime(2026, 12, 5, utc_hour, tzinfo=UTC))
    assert _view().shift_and_date(None, None) == (shift, day)


def test_a_shift_or_date_given_is_taken_and_a_wrong_shift_names_the_shifts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "CLOCK", lambda: datetime(2026, 12, 5, 8, tzinfo=UTC))
    view = _view()
    assert view.shift_and_date("night", None) == ("night", date(2026, 12, 5))
    assert view.shift_and_date(None, "i morgen") == ("day", date(2026, 12, 6))
    with pytest.raises(UsageError, match=r"its shifts are day, evening, night$"):
        view.shift_and_date("brunch", None)


def _offline_time(said: str) -> datetime:
    from clients.offline_cli import item_from_line

    item = item_from_line({"resident": "r1", "order": "para", "outcome": "not-given",
                           "reason": "refused", "time": said}, "f", 3, ZONE, TODAY)
    return item.record.administration_time.ToDatetime(tzinfo=UTC)


@pytest.mark.parametrize(("said", "utc"), [
    ("05-12-2026 14:30", datetime(2026, 12, 5, 13, 30, tzinfo=UTC)),  # facility time (CET)
    ("04.12.2026 8.05", datetime(2026, 12, 4, 7, 5, tzinfo=UTC)),
    ("01-07-2026 08:00", datetime(2026, 7, 1, 6, 0, tzinfo=UTC)),  # summer time (CEST)
    ("2026-12-05T14:30", datetime(2026, 12, 5, 13, 30, tzinfo=UTC)),
    ("2026-12-05T14:30:00+01:00", datetime(2026, 12, 5, 13, 30, tzinfo=UTC)),  # ISO as before
    ("2026-12-05T13:30:00Z", datetime(2026, 12, 5, 13, 30, tzinfo=UTC)),
    # The autumn night's repeated 02:30 is its first occurrence (CEST).
    ("25-10-2026 02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC))])
def test_offline_record_times_as_staff_write_them_on_the_facility_clock(
        said: str, utc: datetime) -> None:
    assert _offline_time(said) == utc


@pytest.mark.parametrize("said", ["14:30", "8.05", "i går 22:00", "i dag 14:30", "2026-12-05",
                                  "05-12-2026", "kl. 14"])
def test_an_offline_time_without_its_calendar_date_is_refused(said: str) -> None:
    """Paper is often typed in a day later: a bare time, a date relative to the day the
    file is sent, or a date alone would land the record on the wrong day (and name
    another record each day the file is sent)."""
    from clients.offline_cli import LineError

    with pytest.raises(LineError) as info:
        _offline_time(said)
    assert isinstance(info.value, UsageError)  # medctl: one line, exit 2
    text = str(info.value)
    assert text.startswith(f"line 3: time {said!r} needs its calendar date and time of day")
    assert "\n" not in text


@pytest.mark.parametrize("said", ["25-12-2026 25:00", "32-12-2026 08:00"])
def test_an_unreadable_offline_time_names_the_line_and_field(said: str) -> None:
    from clients.offline_cli import LineError

    with pytest.raises(LineError) as info:
        _offline_time(said)
    assert isinstance(info.value, UsageError)  # medctl: one line, exit 2
    text = str(info.value)
    assert text.startswith(f"line 3: time: cannot read {said!r}") and "\n" not in text
