"""Builders of v1 messages for tests: orders and dosages as integrations send them."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from medservice.v1 import common_pb2
from medservice.v1 import medicine_cards_pb2 as pb

K = pb  # DoseTimeKind values live on the module: K.DOSE_TIME_KIND_MORNING ...


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def dose(kind: pb.DoseTimeKind.ValueType, quantity: str = "1", *, clock: str = "",
         as_needed: bool = False, low: str = "", high: str = "") -> pb.DosageDose:
    amount = common_pb2.DoseQuantity(min_quantity=low, max_quantity=high) if low else \
        common_pb2.DoseQuantity(quantity=quantity)
    return pb.DosageDose(time_kind=kind, clock_time=clock, amount=amount, as_needed=as_needed)


def structured(*days: list[pb.DosageDose], start: str = "2026-01-01", interval: int = 1,
               end: str = "", unit: tuple[str, str] = ("tablet", "tabletter")) -> pb.Dosage:
    return pb.Dosage(structured=pb.StructuredDosage(
        unit=pb.DoseUnit(singular=unit[0], plural=unit[1]),
        periods=[pb.DosagePeriod(start_date=start, end_date=end,
                                 iteration_interval_days=interval,
                                 days=[pb.DosageDay(day_number=i + 1, doses=d)
                                       for i, d in enumerate(days)])]))


def morning_evening(quantity: str = "1") -> pb.Dosage:
    return structured([dose(K.DOSE_TIME_KIND_MORNING, quantity),
                       dose(K.DOSE_TIME_KIND_EVENING, quantity)])


def order(resident: str, order_id: str, drug: str, dosage: pb.Dosage, *,
          mode: common_pb2.DispensingMode.ValueType = common_pb2.DISPENSING_MODE_DOSE_DISPENSED,
          route: str = "oral",
          start: str = "2026-01-01", end: str = "", time_critical: bool = False) -> pb.Order:
    return pb.Order(name=f"{resident}/orders/{order_id}",
                    drug=pb.Drug(name=drug, drug_id=f"id-{drug.lower()}", form="tabletter"),
                    route=route, treatment_start_date=start, treatment_end_date=end,
                    dosage=dosage, dispensing_mode=mode, time_critical=time_critical)


CARD_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
