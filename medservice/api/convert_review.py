"""Proto <-> domain for discrepancies, their history and reviews."""

from __future__ import annotations

from medservice.api import convert
from medservice.api.convert import timestamp
from medservice.domain import names
from medservice.domain.discrepancy import Decision
from medservice.i18n import localised
from medservice.reconcile import Code
from medservice.store.discrepancies import (
    DiscrepancyEntry,
    DiscrepancyEvent,
    Status,
)
from medservice.v1 import discrepancies_pb2 as pb

CODE = {c: getattr(pb, f"DISCREPANCY_CODE_{c.name}") for c in Code}


CODE_BACK = {v: k for k, v in CODE.items()}


STATUS = {s: getattr(pb, f"DISCREPANCY_STATUS_{s.name}") for s in Status}


STATUS_BACK = {v: k for k, v in STATUS.items()}


DECISION = {d: getattr(pb, f"REVIEW_DECISION_{d.name}") for d in Decision}


DECISION_BACK = {v: k for k, v in DECISION.items()}


def discrepancy_to_proto(e: DiscrepancyEntry) -> pb.Discrepancy:
    d = e.discrepancy
    out = pb.Discrepancy(
        name=f"{names.facility_name(d.facility_id)}/discrepancies/{e.discrepancy_id}",
        key=d.key, code=CODE[d.code], severity=convert.SEVERITY[d.severity],
        is_error=d.is_error,
        resident=names.resident_name(d.facility_id, d.resident_id),
        order=names.order_name(d.facility_id, d.resident_id, d.order_id) if d.order_id
        else "",
        dose_id=d.dose_id or "",
        record=names.record_name(d.facility_id, d.resident_id, d.record_id) if d.record_id
        else "",
        occurrence_time=timestamp(d.occurred_at), detect_time=timestamp(e.detected_at),
        description=localised(d.message, d.description),
        known_at_administration=bool(d.known_at_administration),
        status=STATUS[e.status], etag=e.etag)
    if e.decision is not None:
        out.review.CopyFrom(pb.Review(decision=DECISION[e.decision], note=e.review_note,
                                      reviewer=e.reviewer, review_time=timestamp(e.reviewed_at)))
    return out


def event_to_proto(e: DiscrepancyEvent) -> pb.DiscrepancyEvent:
    return pb.DiscrepancyEvent(event_time=timestamp(e.event_time), kind=e.kind.name,
                               actor=e.actor, detail=e.detail)
