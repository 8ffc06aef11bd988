"""The facility clock: local dates and times to UTC instants, shifts and windows (DOMAIN.md §5-6).

Date arithmetic happens on local dates; conversion to an instant comes last. Instants are
timezone-aware UTC datetimes, so arithmetic on them is real elapsed time.

DST (zoneinfo's fold=0 rule, which is exactly the domain's rule):
- spring forward: a local time in the missing hour moves forward by the gap
  (02:30 on 2026-03-29 in Copenhagen is 03:30 CEST, 01:30 UTC);
- fall back: an ambiguous local time means its first occurrence (02:30 CEST, not CET).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from zoneinfo import ZoneInfo

from medservice.domain.dosage import TimeKind, parse_time_key
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.facility import (
    Facility,
    MedicationTimes,
    Shift,
    TimingWindows,
    default_shifts,
)

_CACHE_LIMIT = 16_384  # memo entries; bounded, since a clock may live for a long batch
_MINUTES_PER_DAY = 24 * 60


class WindowKind(Enum):
    """Which of the facility's window rules applies to a dose (DOMAIN.md §6)."""

    TIME_CRITICAL = "time_critical"
    MORE_THAN_DAILY = "more_than_daily"
    DAILY_OR_LESS = "daily_or_less"


def window_kind(time_critical: bool, doses_that_day: int) -> WindowKind:
    """The window rule of a dose: a time-critical order's; else that of doses due more
    often than daily (more than one fixed dose that day); else daily or less often."""
    if time_critical:
        return WindowKind.TIME_CRITICAL
    if doses_that_day > 1:
        return WindowKind.MORE_THAN_DAILY
    return WindowKind.DAILY_OR_LESS


@dataclass(frozen=True)
class FacilityClock:
    """A facility's zone, medication times, shifts and window rules, and the arithmetic
    on them. Immutable; build one per facility with `from_facility`."""

    zone: ZoneInfo
    medication_times: MedicationTimes = field(default_factory=MedicationTimes)
    shifts: tuple[Shift, ...] = field(default_factory=default_shifts)
    windows: TimingWindows = field(default_factory=TimingWindows)
    # Memo of dose_time(); the clock is immutable, so entries never go stale.
    _dose_times: dict[tuple[date, str], tuple[time, datetime]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    # Half-widths by (time_critical, more often than daily), derived once from `windows`.
    _half_widths: dict[tuple[bool, bool], timedelta] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        half_widths = {
            (critical, often): timedelta(
                minutes=self.window_minutes(window_kind(critical, 2 if often else 1)))
            for critical in (False, True) for often in (False, True)
        }
        object.__setattr__(self, "_half_widths", half_widths)  # frozen: set once, here

    @classmethod
    def from_facility(cls, facility: Facility) -> FacilityClock:
        return cls(
            zone=facility.zone,
            medication_times=facility.medication_times,
            shifts=facility.shifts,
            windows=facility.timing_windows,
        )

    # -- local time <-> instants ------------------------------------------------------

    def instant(self, local_date: date, local_time: time) -> datetime:
        """The UTC instant of a local wall-clock time (DST rules in the module docstring)."""
        if local_time.tzinfo is not None or local_time.fold:
            local_time = local_time.replace(tzinfo=None, fold=0)
        return _instant(self.zone, local_date, local_time)

    def local(self, instant: datetime) -> datetime:
        """An instant as the facility's local wall-clock time."""
        return _aware(instant).astimezone(self.zone)

    def text(self, instant: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """An instant as staff read it: facility time with its zone, "2026-12-05 10:49 CET".
        Every time in a text staff read is written so: never UTC, never two clocks."""
        local = self.local(instant)
        return f"{local.strftime(fmt)} {local.strftime('%Z')}"

    def local_date_of(self, instant: datetime) -> date:
        return self.local(instant).date()

    def wall_time(self, instant: datetime) -> time:
        """The local clock time an instant shows: 03:30 for a dose set at 02:30 on the
        spring night, when 02:30 does not exist (DOMAIN.md §5)."""
        return self.local(instant).time().replace(fold=0)

    # -- dose times -------------------------------------------------------------------

    def time_of(
        self, time_kind: TimeKind, clock_time: time | None, index: int = 0, count: int = 1
    ) -> time:
        """The local clock time of a dose.

        Named times are the facility's medication times; a CLOCK dose keeps its own time.
        ANY-time doses ("N gange daglig") follow the house rule, where `index` (0-based) is
        the dose's place among the day's `count` ANY-time doses:
        1 -> morning; 2 -> morning, evening; 3 -> morning, noon, evening;
        4 -> morning, noon, evening, night; more -> evenly spaced from morning to night,
        both included, rounded down to the minute (12 doses with the default times:
        08:00, 09:16, ... 22:00). If night is not after morning, the span runs past
        midnight and wraps around; the dose stays on its local date.
        """
        if time_kind is TimeKind.CLOCK:
            if clock_time is None:
                raise InvalidArgument([FieldViolation("clock_time", "is required for CLOCK")])
            return clock_time
        t = self.medication_times
        if time_kind is TimeKind.MORNING:
            return t.morning
        if time_kind is TimeKind.NOON:
            return t.noon
        if time_kind is TimeKind.EVENING:
            return t.evening
        if time_kind is TimeKind.NIGHT:
            return t.night
        return self._spread(index, count)

    def dose_time(self, local_date: date, time_key: str) -> tuple[time, datetime]:
        """(wall-clock time, UTC instant) of a dose given by its `dosage.time_key`
        ("morning", "12:30", "any-2of3") on a local date: `time_of`, then `instant`.

        Memoized: a facility's doses share a handful of times a day."""
        key = (local_date, time_key)
        found = self._dose_times.get(key)
        if found is None:
            if len(self._dose_times) >= _CACHE_LIMIT:
                self._dose_times.clear()
            local_time = self.time_of(*parse_time_key(time_key))
            found = _dose_time(self.zone, local_date, local_time.replace(tzinfo=None, fold=0))
            self._dose_times[key] = found
        return found

    def _spread(self, index: int, count: int) -> time:
        t = self.medication_times
        if count <= 4:
            named = ((t.morning,), (t.morning, t.evening), (t.morning, t.noon, t.evening),
                     (t.morning, t.noon, t.evening, t.night))[max(count, 1) - 1]
            return named[min(max(index, 0), len(named) - 1)]
        start = _minutes(t.morning)
        span = (_minutes(t.night) - start) % _MINUTES_PER_DAY
        offset = span * min(max(index, 0), count - 1) // (count - 1)
        minute = (start + offset) % _MINUTES_PER_DAY
        return time(minute // 60, minute % 60)

    # -- shifts -----------------------------------------------------------------------

    def shift(self, shift_id: str) -> Shift:
        for s in self.shifts:
            if s.shift_id == shift_id:
                return s
        # Names the valid ones: the caller (a front end, medctl) can offer them.
        raise InvalidArgument([FieldViolation(
            "shift_id", "is not a shift of this facility; its shifts are "
            + ", ".join(s.shift_id for s in self.shifts))])

    def shift_interval(self, shift_date: date, shift_id: str) -> tuple[datetime, datetime]:
        """[start, end) of a shift in UTC. A shift past midnight belongs to the date it
        starts on, so a 23-07 night shift lasts 7 hours on the spring DST night, 9 on the
        autumn one."""
        s = self.shift(shift_id)
        end_date = shift_date + timedelta(days=1) if s.crosses_midnight else shift_date
        return self.instant(shift_date, s.start), self.instant(end_date, s.end)

    def shift_of(self, instant: datetime) -> tuple[str, date] | None:
        """(shift_id, shift_date) of the shift whose interval holds the instant, or None
        when the facility's shifts leave that time uncovered."""
        instant = _aware(instant)
        local_date = self.local_date_of(instant)
        for shift_date in (local_date, local_date - timedelta(days=1)):
            for s in self.shifts:
                start, end = self.shift_interval(shift_date, s.shift_id)
                if start <= instant < end:
                    return s.shift_id, shift_date
        return None

    # -- windows ----------------------------------------------------------------------

    def window_minutes(self, kind: WindowKind) -> int:
        w = self.windows
        if kind is WindowKind.TIME_CRITICAL:
            return w.time_critical_minutes
        if kind is WindowKind.MORE_THAN_DAILY:
            return w.more_than_daily_minutes
        return w.daily_or_less_minutes

    def half_width(
        self, time_critical: bool, doses_that_day: int, override_minutes: int | None = None
    ) -> timedelta:
        """Half the window of a dose: an order's override, else the facility's rule for
        the dose's kind (see `window_kind`)."""
        if override_minutes:
            return timedelta(minutes=override_minutes)
        return self._half_widths[time_critical, doses_that_day > 1]


@lru_cache(maxsize=_CACHE_LIMIT)
def _instant(zone: ZoneInfo, local_date: date, local_time: time) -> datetime:
    """The zone conversion, memoized for all clocks of a zone (a pure function of
    immutable values: a day's schedule asks for the same few times again and again)."""
    return datetime.combine(local_date, local_time, tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=_CACHE_LIMIT)
def _dose_time(zone: ZoneInfo, local_date: date, local_time: time) -> tuple[time, datetime]:
    """(wall-clock time, instant) of a local time, memoized like `_instant`: the wall time
    differs from `local_time` only inside the spring night's gap."""
    instant = _instant(zone, local_date, local_time)
    return instant.astimezone(zone).time().replace(fold=0), instant


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidArgument([FieldViolation("instant", "must carry a time zone")])
    return instant
