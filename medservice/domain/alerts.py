"""Who is alerted of what (DOMAIN.md §9), and the watcher's resume token.

A missed dose goes to the shift lead of the facility and shift that owned the dose; a PN
dose not evaluated in time to the shift lead of the shift on duty when it was found (at its
deadline, by the sweep); any other high-severity discrepancy to the pharmacist-in-charge.
A shift lead's missed-dose alert that nobody acknowledges in time escalates to the
pharmacist-in-charge (a pharmacist's own alerts are already in the review queue, so they
do not escalate).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum

from medservice.domain.access import Role
from medservice.domain.card_changes import DA_ASPECT, PendingChange
from medservice.domain.clock import FacilityClock
from medservice.domain.discrepancy import Code, Discrepancy, Severity
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.orders import Drug
from medservice.domain.vocabulary import drug_text
from medservice.i18n import DEFAULT_LANGUAGE, Arg, Msg, msg


class AlertKind(Enum):
    MISSED_DOSE = "missed_dose"
    DISCREPANCY = "discrepancy"
    ESCALATION = "escalation"
    CARD_CHANGE = "card_change"  # a clinical change of a medicine card to approve


@dataclass(frozen=True)
class NewAlert:
    """An alert to append to a facility's log (the log gives it its position)."""

    source_key: str
    facility_id: str
    kind: AlertKind
    audience: Role
    severity: Severity
    summary: str
    created_at: datetime
    shift_id: str = ""
    shift_date: str = ""
    discrepancy_id: str | None = None
    resident_id: str | None = None
    escalate_at: datetime | None = None
    escalates: str | None = None
    message: Msg | None = None  # the summary as a catalogue message (any language)

    @property
    def alert_id(self) -> str:
        """The same source gives the same id in every replica."""
        return NewAlert.id_of(self.source_key)

    @staticmethod
    def id_of(source_key: str) -> str:
        return hashlib.sha256(source_key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Alert:
    """An alert as stored: a new alert with its position and acknowledgement."""

    alert_id: str
    position: int
    facility_id: str
    kind: AlertKind
    audience: Role
    severity: Severity
    summary: str
    created_at: datetime
    shift_id: str
    shift_date: str
    discrepancy_id: str | None
    resident_id: str | None
    escalates: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str
    message: Msg | None = None  # None: stored before messages were (its summary stays)


def alert_for(d: Discrepancy, discrepancy_id: str, clock: FacilityClock, now: datetime,
              escalate_after: timedelta, language: str = DEFAULT_LANGUAGE,
              drug: Drug | None = None, room: str = "") -> NewAlert | None:
    """The alert a newly found discrepancy raises, if any. The summary says where and what
    ("Glemt dosis: værelse 12, Metformin 500 mg: ...": the resident's `room` and the
    order's `drug` with its strength, when known) and names the resident by id only:
    alerts reach consoles on the ward, never a person identifier or name. It is written in
    the facility's `language` and kept as a message for callers asking for another."""
    message = alert_text(d, drug, room)
    summary = message.render(language)
    if d.code is Code.MISSED_DOSE:
        shift = clock.shift_of(d.occurred_at)
        shift_id, shift_date = shift if shift is not None else ("", None)
        return NewAlert(
            source_key=f"discrepancy:{d.key}", facility_id=d.facility_id,
            kind=AlertKind.MISSED_DOSE, audience=Role.SHIFT_LEAD, severity=d.severity,
            summary=summary, message=message, created_at=now,
            shift_id=shift_id, shift_date=_iso(shift_date), discrepancy_id=discrepancy_id,
            resident_id=d.resident_id, escalate_at=now + escalate_after)
    if d.code is Code.PN_NOT_EVALUATED:
        # Low severity: the shift lead on duty sees to the evaluation; it does not escalate
        # (the pharmacist has it in the review queue).
        shift = clock.shift_of(now)
        shift_id, shift_date = shift if shift is not None else ("", None)
        return NewAlert(
            source_key=f"discrepancy:{d.key}", facility_id=d.facility_id,
            kind=AlertKind.DISCREPANCY, audience=Role.SHIFT_LEAD, severity=d.severity,
            summary=summary, message=message, created_at=now,
            shift_id=shift_id, shift_date=_iso(shift_date), discrepancy_id=discrepancy_id,
            resident_id=d.resident_id)
    if d.severity is Severity.HIGH:
        return NewAlert(
            source_key=f"discrepancy:{d.key}", facility_id=d.facility_id,
            kind=AlertKind.DISCREPANCY, audience=Role.PHARMACIST, severity=d.severity,
            summary=summary, message=message, created_at=now,
            discrepancy_id=discrepancy_id, resident_id=d.resident_id)
    return None


def card_change_alert(change: PendingChange, version: int, clock: FacilityClock,
                      now: datetime, language: str = DEFAULT_LANGUAGE) -> NewAlert:
    """The shift lead's alert for a new clinical change of a medicine card (issue 16): to
    the shift on duty, once per order version (its source key). High when it stops doses
    (a discontinuation, a pause, an order off the card), else medium. Names the drug and
    what changed, never the person."""
    shift = clock.shift_of(now)
    shift_id, shift_date = shift if shift is not None else ("", None)
    what = ", ".join(DA_ASPECT[a] for a in change.aspects)
    message = msg("alert.card_change", drug=change.drug_name, what=what)
    return NewAlert(
        source_key=_card_change_key(change, version),
        facility_id=change.facility_id, kind=AlertKind.CARD_CHANGE,
        audience=Role.SHIFT_LEAD, severity=Severity.HIGH if change.stops else Severity.MEDIUM,
        summary=message.render(language)[:1000], message=message,
        created_at=now, shift_id=shift_id, shift_date=_iso(shift_date),
        resident_id=change.resident_id)


def _card_change_key(change: PendingChange, version: int) -> str:
    return f"card_change:{change.facility_id}/{change.resident_id}/{change.order_id}/v{version}"


def card_change_alert_ids(change: PendingChange) -> list[str]:
    """The ids of the alerts raised for the versions a change took in: approving the
    change answers them."""
    return [NewAlert.id_of(_card_change_key(change, v))
            for v in range(change.first_version, change.version + 1)]


def alert_text(d: Discrepancy, drug: Drug | None, room: str) -> Msg:
    description = d.message if d.message is not None else d.description
    code = msg(f"code.{d.code.value}")
    drug_shown = drug_text(drug.name, drug.strength) if drug is not None else None
    if room and drug_shown is not None:
        about: Arg | None = msg("alert.room_drug", room=room, drug=drug_shown)
    elif room:
        about = msg("alert.room", room=room)
    else:
        about = drug_shown
    if about is None:
        return msg("alert.discrepancy", code=code, description=description)
    return msg("alert.discrepancy_about", code=code, about=about, description=description)


def escalation_of(alert: Alert, now: datetime, clock: FacilityClock,
                  language: str = DEFAULT_LANGUAGE) -> NewAlert:
    """The pharmacist-in-charge's alert for a shift lead's alert nobody acknowledged. One
    clock in one text: the facility's local time with its zone, as the summary it quotes."""
    message = msg("alert.escalation",
                  since=f"{clock.local(alert.created_at):%H:%M %Z}",
                  summary=alert.message if alert.message is not None else alert.summary)
    return NewAlert(
        source_key=f"escalation:{alert.alert_id}", facility_id=alert.facility_id,
        kind=AlertKind.ESCALATION, audience=Role.PHARMACIST, severity=alert.severity,
        summary=message.render(language), message=message,
        created_at=now, shift_id=alert.shift_id, shift_date=alert.shift_date,
        discrepancy_id=alert.discrepancy_id, resident_id=alert.resident_id,
        escalates=alert.alert_id)


def _iso(d: date | None) -> str:
    return d.isoformat() if d is not None else ""


# -- resume tokens -------------------------------------------------------------------------

@dataclass(frozen=True)
class ResumePoint:
    """Where a watcher is in a facility's log: it has seen everything up to `position`."""

    facility_id: str
    position: int


def resume_token(point: ResumePoint) -> str:
    raw = json.dumps({"f": point.facility_id, "p": point.position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_resume_token(token: str, facility_id: str) -> ResumePoint:
    """The point a token names; INVALID_ARGUMENT for a token that is not ours or belongs to
    another facility's log."""
    bad = InvalidArgument([FieldViolation("resume_token", "is not a resume token of this "
                                          "facility's alerts")])
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        point = ResumePoint(str(data["f"]), int(data["p"]))
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if point.facility_id != facility_id or point.position < 0:
        raise bad
    return point
