"""Proto <-> domain for alerts."""

from __future__ import annotations

from medservice.api import convert
from medservice.api.convert import timestamp
from medservice.domain import names
from medservice.domain.alerts import (
    Alert,
    AlertKind,
)
from medservice.i18n import localised
from medservice.v1 import alerts_pb2 as pb

_KIND = {k: getattr(pb, f"ALERT_KIND_{k.name}") for k in AlertKind}


def alert_to_proto(a: Alert) -> pb.Alert:
    base = names.facility_name(a.facility_id)
    return pb.Alert(
        name=f"{base}/alerts/{a.alert_id}", position=a.position, kind=_KIND[a.kind],
        audience=convert.ROLE[a.audience], shift_id=a.shift_id, shift_date=a.shift_date,
        discrepancy=f"{base}/discrepancies/{a.discrepancy_id}" if a.discrepancy_id else "",
        resident=names.resident_name(a.facility_id, a.resident_id) if a.resident_id else "",
        severity=convert.SEVERITY[a.severity], summary=localised(a.message, a.summary),
        create_time=timestamp(a.created_at), acknowledged=a.acknowledged_at is not None,
        acknowledged_by=a.acknowledged_by, acknowledge_time=timestamp(a.acknowledged_at),
        escalates=f"{base}/alerts/{a.escalates}" if a.escalates else "")
