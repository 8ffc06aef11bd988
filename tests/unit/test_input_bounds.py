"""The supported range of dates and instants, and the request checks built on it (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from medservice.api import convert
from medservice.domain import bounds
from medservice.domain.errors import InvalidArgument
from medservice.domain.order_codec import content_from_dict
from medservice.domain.orders import Drug, OrderContent, Pause, validate_content
from medservice.v1 import alerts_pb2, common_pb2
from medservice.v1 import medicine_cards_pb2 as cpb


def _order(**extra: object) -> dict[str, object]:
    return {"order_id": "o1", "drug": {"name": "Paracetamol"},
            "dosage": {"free_text": "efter skema"}, **extra}


def test_range_edges() -> None:
    assert bounds.date_violation(date(1900, 1, 1), "d") is None
    assert bounds.date_violation(date(8999, 12, 31), "d") is None
    assert bounds.date_violation(date(1899, 12, 31), "d") is not None
    assert bounds.date_violation(date(9000, 1, 1), "d") is not None
    assert bounds.instant_violation(datetime(8999, 12, 31, 23, 59, tzinfo=UTC), "t") is None
    assert bounds.instant_violation(datetime(9000, 1, 1, tzinfo=UTC), "t") is not None
    assert bounds.timestamp_violation(bounds.EARLIEST_SECONDS, 0, "t") is None
    assert bounds.timestamp_violation(bounds.EARLIEST_SECONDS - 1, 0, "t") is not None
    assert bounds.timestamp_violation(0, 1_000_000_000, "t") is not None
    assert bounds.timestamp_violation(0, -1, "t") is not None


def test_request_violations_name_every_bad_field_at_any_depth() -> None:
    first = cpb.Order(name="facilities/f/residents/r/orders/a")
    first.dispensing_mode = 77  # type: ignore[assignment]
    second = cpb.Order(pauses=[cpb.Pause(end_time=Timestamp(seconds=0, nanos=-1))])
    request = cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(orders=[first, second]), valid_time=Timestamp(seconds=2**40),
        request_id="x\x00")
    found = {v.field for v in convert.request_violations(request)}
    assert found == {"card.orders[0].dispensing_mode", "card.orders[1].pauses[0].end_time",
                     "valid_time", "request_id"}
    with pytest.raises(InvalidArgument):
        convert.check_request(request)
    convert.check_request(cpb.SyncMedicineCardRequest(valid_time=Timestamp(seconds=0)))


def test_enum_value_refuses_unknown_numbers_and_values_not_accepted_here() -> None:
    allowed = {common_pb2.ROLE_SHIFT_LEAD: "shift lead"}
    assert convert.enum_value(alerts_pb2.ListAlertsRequest(), "audience", allowed) is None
    assert convert.enum_value(alerts_pb2.ListAlertsRequest(audience=common_pb2.ROLE_SHIFT_LEAD),
                              "audience", allowed) == "shift lead"
    with pytest.raises(InvalidArgument) as e:
        convert.enum_value(alerts_pb2.ListAlertsRequest(audience=common_pb2.ROLE_CARER),
                           "audience", allowed)
    assert e.value.violations[0].field == "audience"
    unknown = alerts_pb2.ListAlertsRequest()
    unknown.audience = 9  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as e:
        convert.enum_value(unknown, "audience", allowed, path="x.audience")
    assert e.value.violations[0].field == "x.audience"
    assert "9 is not a value of Role" in e.value.violations[0].description


def test_an_unknown_dispensing_mode_is_refused_not_taken_for_staff_poured() -> None:
    with pytest.raises(InvalidArgument) as e:
        content_from_dict(_order(dispensing_mode=77))
    assert [v.field for v in e.value.violations] == ["order.dispensing_mode"]
    assert content_from_dict(_order()).dispensing_mode.name == "STAFF_POURED"


def test_order_dates_out_of_range_are_refused_from_sources_but_read_back_when_stored() -> None:
    late = _order(treatment_end_date="9999-12-31",
                  pauses=[{"start_time": "0001-01-01T00:00:00Z"}])
    with pytest.raises(InvalidArgument) as e:
        content_from_dict(late)
    assert {v.field for v in e.value.violations} == {"order.treatment_end_date",
                                                     "order.pauses[0].start_time"}
    kept = content_from_dict(late, "stored", stored=True)  # checked when it came in
    assert kept.treatment_end == date(9999, 12, 31)


def test_imports_meet_the_same_range_through_validate_content() -> None:
    content = OrderContent("o1", Drug("Paracetamol"), treatment_start=date(1, 1, 1),
                           pauses=(Pause(None, datetime(9999, 1, 1, tzinfo=UTC)),))
    assert {v.field for v in validate_content(content, "x")} == {
        "x.treatment_start_date", "x.pauses[0].end_time"}
