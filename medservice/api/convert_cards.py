"""Proto <-> domain for the medicine card mirror. The order shape is shared with the store
through medservice.domain.order_codec."""

from __future__ import annotations

from google.protobuf.json_format import MessageToDict, ParseDict

from medservice.api.convert import timestamp
from medservice.domain import names
from medservice.domain.card_changes import DA_ASPECT, ChangeStatus, PendingChange
from medservice.domain.card_checks import Checkpoint
from medservice.domain.dosage_text import short_text
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.domain.order_codec import content_from_dict, content_to_dict
from medservice.domain.orders import OrderContent, OrderState, OrderVersion
from medservice.imports.result import ImportProblem
from medservice.service.card_checks import ResidentFinding
from medservice.service.cards import CardOrder, CardView, ChangeKind, OrderChange
from medservice.v1 import medicine_cards_pb2 as pb

_STATE = {s: getattr(pb, f"ORDER_STATE_{s.name}") for s in OrderState}
_CHANGE = {k: getattr(pb, f"ORDER_CHANGE_KIND_{k.name}") for k in ChangeKind}


def order_content_from_proto(order: pb.Order, facility_id: str, resident_id: str,
                             prefix: str) -> OrderContent:
    """An order sent by a caller; its name must lie under the given resident."""
    f, r, order_id = names.parse_order_name(order.name, f"{prefix}.name")
    if (f, r) != (facility_id, resident_id):
        raise InvalidArgument([FieldViolation(f"{prefix}.name",
                                              "names an order of another resident")])
    data = MessageToDict(order, preserving_proto_field_name=True)
    data.pop("cannot_check_reason", None)  # output only: the mirror sets it, never a caller
    data.pop("first_given_time", None)  # output only, likewise
    data["order_id"] = order_id
    return content_from_dict(data, prefix)


def _content_to_proto(c: OrderContent, order: pb.Order) -> None:
    data = content_to_dict(c)
    del data["order_id"]
    ParseDict(data, order)


def order_to_proto(version: OrderVersion, content: OrderContent,
                   state: OrderState | None) -> pb.Order:
    order = pb.Order(name=names.order_name(version.facility_id, version.resident_id,
                                           version.order_id))
    _content_to_proto(content, order)
    if state is not None:
        order.state = _STATE[state]
    order.needs_manual_schedule = content.manual_schedule_reason is not None
    order.dosage.text_da = short_text(content.dosage, "da")
    order.dosage.text_en = short_text(content.dosage, "en")
    order.valid_time.FromDatetime(version.valid_from)
    order.recorded_time.FromDatetime(version.recorded_at)
    order.version = version.version
    return order


def order_view_to_proto(view: CardOrder) -> pb.Order:
    return order_to_proto(view.version, view.content, view.state)


def card_to_proto(card: CardView) -> pb.MedicineCard:
    return pb.MedicineCard(
        name=names.card_name(card.facility_id, card.resident_id),
        card_version=card.card_version,
        orders=[order_view_to_proto(v) for v in card.orders],
        valid_time=timestamp(card.valid_at),
        recorded_time=timestamp(card.known_at),
        incomplete=not card.complete,
    )


def import_response(card: CardView, changes: list[OrderChange],
                    problems: list[ImportProblem]) -> pb.ImportMedicineCardResponse:
    return pb.ImportMedicineCardResponse(
        card=card_to_proto(card),
        changes=changes_to_proto(card.facility_id, card.resident_id, changes),
        problems=[pb.ImportProblem(source_order_id=p.source_order_id, location=p.location,
                                   reason=p.reason) for p in problems])


def changes_to_proto(facility_id: str, resident_id: str, changes: list[OrderChange]
                     ) -> list[pb.OrderChange]:
    return [pb.OrderChange(order=_order_name(facility_id, resident_id, c.order_id),
                           kind=_CHANGE[c.kind], version=c.version, reason=c.reason,
                           source_order_id=c.order_id) for c in changes]


_CHANGE_STATE = {s: getattr(pb, f"CARD_CHANGE_STATE_{s.name}") for s in ChangeStatus}


def card_change_to_proto(c: PendingChange, time_zone: str) -> pb.CardChange:
    return pb.CardChange(
        name=names.card_change_name(c.facility_id, c.resident_id, c.order_id, c.first_version),
        resident=names.resident_name(c.facility_id, c.resident_id),
        order=names.order_name(c.facility_id, c.resident_id, c.order_id),
        drug_name=c.drug_name, aspects=[a.value for a in c.aspects],
        aspects_da=[DA_ASPECT[a] for a in c.aspects], before=c.before, after=c.after,
        time_zone=time_zone, stops_doses=c.stops, base_version=c.base_version,
        version=c.version, state=_CHANGE_STATE[c.status], detect_time=timestamp(c.detected_at),
        update_time=timestamp(c.updated_at), approve_time=timestamp(c.approved_at),
        approved_by=c.approved_by, etag=c.etag)


def _order_name(facility_id: str, resident_id: str, order_id: str) -> str:
    """The order's name; "" for an identifier no order of the mirror can have (a refused
    order's: unreadable, too long, or with a '/')."""
    if not order_id.strip() or len(order_id) > 63 or "/" in order_id:
        return ""
    return names.order_name(facility_id, resident_id, order_id)


_CHECKPOINT = {c: getattr(pb, f"CARD_CHECKPOINT_{c.name}") for c in Checkpoint}


def card_finding_to_proto(facility_id: str, rf: ResidentFinding) -> pb.CardFinding:
    r, f = rf.resident, rf.finding
    d = f.drug
    return pb.CardFinding(
        checkpoint=_CHECKPOINT[f.checkpoint], checkpoint_title=f.title,
        resident=names.resident_name(facility_id, r.resident_id),
        resident_display_name=r.display_name, room=r.room,
        order=names.order_name(facility_id, r.resident_id, f.order_id),
        drug=pb.Drug(name=d.name, drug_id=d.drug_id, atc_code=d.atc_code, form=d.form,
                     strength=d.strength),
        problem=f.problem, action=f.action)
