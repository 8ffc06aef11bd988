"""Orders as plain dicts in the v1 API's JSON shape (proto field names).

One codec serves two readers: the store keeps order contents as this JSON, and the API
layer turns an `Order` message into this dict (MessageToDict) and back (ParseDict), so the
shape a caller sends is the shape the mirror keeps. Reading validates and names the field,
relative to the caller's prefix (e.g. "card.orders[2].dosage.structured.periods[0]").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from medservice.domain.dosage import (
    Amount,
    DosageDay,
    DosageDose,
    DosagePeriod,
    DoseUnit,
    FreeTextDosage,
    LocalSchemaDosage,
    StructuredDosage,
    TimeKind,
)
from medservice.domain.errors import FieldViolation, InvalidArgument, require
from medservice.domain.fhir_timing import TimingDosage
from medservice.domain.orders import (
    DispensingMode,
    Drug,
    OrderContent,
    Pause,
    validate_content,
)

Json = dict[str, Any]

_TIME_KIND = {k: f"DOSE_TIME_KIND_{k.name}" for k in TimeKind}
_TIME_KIND_BACK = {v: k for k, v in _TIME_KIND.items()}
_DISPENSING = {m: f"DISPENSING_MODE_{m.name}" for m in DispensingMode}
_DISPENSING_BACK = {v: k for k, v in _DISPENSING.items()}


# writing


def instant_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _amount(a: Amount) -> Json:
    if a.quantity is not None:
        return {"quantity": str(a.quantity)}
    return {"min_quantity": str(a.min_quantity), "max_quantity": str(a.max_quantity)}


def _dose(d: DosageDose) -> Json:
    out: Json = {"time_kind": _TIME_KIND[d.time_kind], "amount": _amount(d.amount)}
    if d.clock_time is not None:
        out["clock_time"] = d.clock_time.strftime("%H:%M")
    if d.as_needed:
        out["as_needed"] = True
    return out


def _period(p: DosagePeriod) -> Json:
    out: Json = {"start_date": p.start_date.isoformat(),
                 "days": [{"day_number": d.day_number, "doses": [_dose(x) for x in d.doses]}
                          for d in p.days]}
    if p.end_date is not None:
        out["end_date"] = p.end_date.isoformat()
    if p.iteration_interval_days:
        out["iteration_interval_days"] = p.iteration_interval_days
    if p.supplementary_text:
        out["supplementary_text"] = p.supplementary_text
    return out


def _timing(t: TimingDosage) -> Json:
    out: Json = {
        "unit": {"singular": t.unit.singular, "plural": t.unit.plural},
        "frequency": t.frequency,
        "period": str(t.period) if t.period is not None else "",
        "period_unit": t.period_unit,
        "when": list(t.when),
        "time_of_day": [x.strftime("%H:%M") for x in t.time_of_day],
        "day_of_week": list(t.day_of_week),
        "bounds_start": instant_text(t.bounds_start) if t.bounds_start else "",
        "bounds_end": instant_text(t.bounds_end) if t.bounds_end else "",
        "bounds_first_date": t.bounds_first_date.isoformat() if t.bounds_first_date else "",
        "bounds_last_date": t.bounds_last_date.isoformat() if t.bounds_last_date else "",
        "bounds_duration": str(t.bounds_duration) if t.bounds_duration is not None else "",
        "bounds_duration_unit": t.bounds_duration_unit,
        "count": t.count or 0,
        "offset_minutes": t.offset_minutes,
        "code": t.code,
        "as_needed": t.as_needed,
        "max_dose_quantity": str(t.max_dose_quantity) if t.max_dose_quantity is not None
        else "",
        "max_dose_unit": t.max_dose_unit,
        "max_dose_period_minutes": int(t.max_dose_period.total_seconds() // 60)
        if t.max_dose_period else 0,
        "events": [instant_text(e) for e in t.events],
        "then": [_timing(step) for step in t.then],
        "also": [_timing(part) for part in t.also],
    }
    if t.amount is not None:
        out["amount"] = _amount(t.amount)
    return {k: v for k, v in out.items() if v or k == "unit"}


def dosage_to_dict(dosage: object) -> Json:
    if isinstance(dosage, StructuredDosage):
        return {"structured": {
            "unit": {"singular": dosage.unit.singular, "plural": dosage.unit.plural},
            "periods": [_period(p) for p in dosage.periods]}}
    if isinstance(dosage, FreeTextDosage):
        return {"free_text": dosage.text}
    if isinstance(dosage, LocalSchemaDosage):
        return {"local_schema": dosage.text}
    if isinstance(dosage, TimingDosage):
        return {"timing": _timing(dosage)}
    raise TypeError(f"cannot encode dosage of type {type(dosage).__name__}")


def content_to_dict(c: OrderContent) -> Json:
    out: Json = {
        "order_id": c.order_id,
        "drug": {k: v for k, v in vars(c.drug).items() if v},
        "dosage": dosage_to_dict(c.dosage),
        "dispensing_mode": _DISPENSING[c.dispensing_mode],
    }
    optional: Json = {
        "source_version": c.source_version, "indication": c.indication, "route": c.route,
        "treatment_start_date": c.treatment_start.isoformat() if c.treatment_start else "",
        "treatment_started_previously": c.treatment_started_previously,
        "treatment_end_date": c.treatment_end.isoformat() if c.treatment_end else "",
        "time_critical": c.time_critical,
        "window_minutes": c.window_minutes or 0,
        "pauses": [{k: instant_text(v) for k, v in
                    (("start_time", p.start), ("end_time", p.end)) if v is not None}
                   for p in c.pauses],
        "discontinue_time": instant_text(c.discontinued_at) if c.discontinued_at else "",
        "cannot_check_reason": c.cannot_check or "",
        "first_given_time": instant_text(c.first_given_at) if c.first_given_at else "",
    }
    out.update({k: v for k, v in optional.items() if v})
    return out


# reading


class _Reader:
    """Collects every violation instead of stopping at the first."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def bad(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def date(self, value: Any, field: str) -> date | None:
        if not value:
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.bad(field, "must be a date YYYY-MM-DD")
            return None

    def instant(self, value: Any, field: str) -> datetime | None:
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.bad(field, "must be an RFC 3339 timestamp")
            return None
        if parsed.tzinfo is None:
            self.bad(field, "must carry a time zone offset")
            return None
        return parsed.astimezone(UTC)

    def decimal(self, value: Any, field: str) -> Decimal | None:
        if value in (None, ""):
            return None
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            self.bad(field, "must be a decimal number such as 0.5")
            return None
        if not d.is_finite():
            self.bad(field, "must be a finite decimal number")
            return None
        return d

    def amount(self, value: Json, field: str) -> Amount | None:
        before = len(self.violations)
        q = self.decimal(value.get("quantity"), f"{field}.quantity")
        lo = self.decimal(value.get("min_quantity"), f"{field}.min_quantity")
        hi = self.decimal(value.get("max_quantity"), f"{field}.max_quantity")
        if len(self.violations) > before:
            return None
        try:
            return Amount(q, lo, hi)
        except InvalidArgument as e:
            self.violations += [FieldViolation(
                field + v.field.removeprefix("amount"), v.description) for v in e.violations]
            return None

    def dose(self, value: Json, field: str) -> DosageDose | None:
        kind = _TIME_KIND_BACK.get(value.get("time_kind", "DOSE_TIME_KIND_ANY"))
        if kind is None:
            self.bad(f"{field}.time_kind", "is not a known dose time")
            return None
        clock: time | None = None
        if kind is TimeKind.CLOCK:
            try:
                clock = time.fromisoformat(value.get("clock_time", ""))
            except ValueError:
                self.bad(f"{field}.clock_time", "must be HH:MM for a clock-time dose")
                return None
        amount = self.amount(value.get("amount", {}), f"{field}.amount")
        if amount is None:
            return None
        return self._build(DosageDose, field, time_kind=kind, clock_time=clock, amount=amount,
                           as_needed=bool(value.get("as_needed", False)))

    def period(self, value: Json, field: str) -> DosagePeriod | None:
        start = self.date(value.get("start_date"), f"{field}.start_date")
        if start is None and not value.get("start_date"):
            self.bad(f"{field}.start_date", "is required")
        end = self.date(value.get("end_date"), f"{field}.end_date")
        days = []
        for i, d in enumerate(value.get("days", [])):
            doses = [self.dose(x, f"{field}.days[{i}].doses[{j}]")
                     for j, x in enumerate(d.get("doses", []))]
            if all(x is not None for x in doses):
                day = self._build(DosageDay, f"{field}.days[{i}]",
                                  day_number=int(d.get("day_number", 0)), doses=tuple(doses))
                if day is not None:
                    days.append(day)
        if start is None or len(days) != len(value.get("days", [])):
            return None
        return self._build(DosagePeriod, field, start_date=start, end_date=end,
                           iteration_interval_days=int(value.get("iteration_interval_days", 0)),
                           supplementary_text=value.get("supplementary_text", ""),
                           days=tuple(days))

    def dosage(self, value: Json, field: str) -> object | None:
        if "structured" in value:
            s = value["structured"]
            unit = s.get("unit", {})
            periods = [self.period(p, f"{field}.structured.periods[{i}]")
                       for i, p in enumerate(s.get("periods", []))]
            if not periods:
                self.bad(f"{field}.structured.periods", "a structured dosage needs a period")
            if any(p is None for p in periods):
                return None
            return StructuredDosage(
                DoseUnit(unit.get("singular", ""), unit.get("plural", "")
                         or unit.get("singular", "")), tuple(periods))  # type: ignore[arg-type]
        if "timing" in value:
            return self.timing(value["timing"], f"{field}.timing")
        if "local_schema" in value:
            return LocalSchemaDosage(value["local_schema"])
        if "free_text" in value:
            return FreeTextDosage(value["free_text"])
        self.bad(field, "is required: structured, free_text, local_schema or timing")
        return None

    def timing(self, v: Json, field: str) -> TimingDosage | None:
        before = len(self.violations)
        unit = v.get("unit", {})
        amount = self.amount(v["amount"], f"{field}.amount") if "amount" in v else None
        times = []
        for i, x in enumerate(v.get("time_of_day", [])):
            try:
                times.append(time.fromisoformat(x))
            except ValueError:
                self.bad(f"{field}.time_of_day[{i}]", "must be HH:MM")
        minutes = int(v.get("max_dose_period_minutes", 0) or 0)
        events = tuple(self.instant(x, f"{field}.events[{i}]")
                       for i, x in enumerate(v.get("events", [])))
        then = tuple(self.timing(x, f"{field}.then[{i}]") for i, x in enumerate(v.get("then", [])))
        also = tuple(self.timing(x, f"{field}.also[{i}]") for i, x in enumerate(v.get("also", [])))
        kwargs = dict(
            unit=DoseUnit(unit.get("singular", ""), unit.get("plural", "")
                          or unit.get("singular", "")),
            amount=amount, frequency=int(v.get("frequency", 0) or 0),
            period=self.decimal(v.get("period"), f"{field}.period"),
            period_unit=v.get("period_unit", ""), when=tuple(v.get("when", [])),
            time_of_day=tuple(times), day_of_week=tuple(v.get("day_of_week", [])),
            bounds_start=self.instant(v.get("bounds_start"), f"{field}.bounds_start"),
            bounds_end=self.instant(v.get("bounds_end"), f"{field}.bounds_end"),
            bounds_first_date=self.date(v.get("bounds_first_date"),
                                        f"{field}.bounds_first_date"),
            bounds_last_date=self.date(v.get("bounds_last_date"), f"{field}.bounds_last_date"),
            bounds_duration=self.decimal(v.get("bounds_duration"), f"{field}.bounds_duration"),
            bounds_duration_unit=v.get("bounds_duration_unit", ""),
            count=int(v.get("count", 0) or 0) or None,
            offset_minutes=int(v.get("offset_minutes", 0) or 0), code=v.get("code", ""),
            as_needed=bool(v.get("as_needed", False)),
            max_dose_quantity=self.decimal(v.get("max_dose_quantity"),
                                           f"{field}.max_dose_quantity"),
            max_dose_unit=v.get("max_dose_unit", ""),
            max_dose_period=timedelta(minutes=minutes) if minutes else None,
            events=tuple(e for e in events if e is not None),
            then=tuple(step for step in then if step is not None),
            also=tuple(part for part in also if part is not None))
        if len(self.violations) > before or ("amount" in v and amount is None):
            return None
        built: TimingDosage | None = self._build(TimingDosage, field, **kwargs)
        return built

    def _build(self, cls: type, field: str, **kwargs: Any) -> Any:
        """Construct a domain object whose own checks may refuse it; name the field."""
        try:
            return cls(**kwargs)
        except InvalidArgument as e:
            self.violations += [FieldViolation(f"{field}.{v.field}" if v.field else field,
                                               v.description) for v in e.violations]
        except ValueError as e:
            self.bad(field, str(e))
        return None


def drug_from_dict(d: Json) -> Drug:
    """The drug of a content's dict (content_to_dict's "drug"; absent fields are empty)."""
    return Drug(d.get("name", ""), d.get("drug_id", ""), d.get("atc_code", ""),
                d.get("form", ""), d.get("strength", ""))


def content_from_dict(d: Json, prefix: str = "order", *, stored: bool = False
                      ) -> OrderContent:
    """Read an order content; raise InvalidArgument with every violation, fields prefixed.
    `stored`: the mirror's own copy, checked against the supported dates when it came in
    (so a range narrowed later never makes a kept order unreadable)."""
    r = _Reader()
    drug = d.get("drug") or {}
    dosage = r.dosage(d.get("dosage", {}), f"{prefix}.dosage")
    mode = _DISPENSING_BACK.get(d.get("dispensing_mode", _DISPENSING[DispensingMode.STAFF_POURED]))
    if mode is None:  # an unknown number: never a guess at what the source meant
        r.bad(f"{prefix}.dispensing_mode", "is not a known dispensing mode")
    pauses = []
    for i, p in enumerate(d.get("pauses", [])):
        pauses.append(Pause(r.instant(p.get("start_time"), f"{prefix}.pauses[{i}].start_time"),
                            r.instant(p.get("end_time"), f"{prefix}.pauses[{i}].end_time")))
    window = int(d.get("window_minutes", 0) or 0)
    require(r.violations)
    content = OrderContent(
        order_id=d.get("order_id", ""),
        drug=drug_from_dict(drug),
        dosage=dosage,  # type: ignore[arg-type]
        source_version=d.get("source_version", ""),
        indication=d.get("indication", ""),
        route=d.get("route", ""),
        treatment_start=r.date(d.get("treatment_start_date"), f"{prefix}.treatment_start_date"),
        treatment_started_previously=bool(d.get("treatment_started_previously", False)),
        treatment_end=r.date(d.get("treatment_end_date"), f"{prefix}.treatment_end_date"),
        dispensing_mode=mode or DispensingMode.STAFF_POURED,
        time_critical=bool(d.get("time_critical", False)),
        window_minutes=window or None,
        pauses=tuple(pauses),
        discontinued_at=r.instant(d.get("discontinue_time"), f"{prefix}.discontinue_time"),
        cannot_check=str(d.get("cannot_check_reason") or "") or None,
        first_given_at=r.instant(d.get("first_given_time"), f"{prefix}.first_given_time"),
    )
    require(r.violations + validate_content(content, prefix, check_bounds=not stored))
    return content
