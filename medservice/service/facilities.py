"""Use cases for facilities and residents. Each runs inside the caller's unit of work."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from medservice.domain.errors import (
    Aborted,
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    require,
)
from medservice.domain.facility import (
    Facility,
    Resident,
    normalise_person_id,
    validate_facility,
    validate_resident,
    validate_resource_id,
)
from medservice.domain.names import new_etag
from medservice.reconcile import FacilityRules
from medservice.reconcile.findings import pn_evaluation_deadline
from medservice.service.horizon import replan_facility
from medservice.service.materialise import settings_key
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork


def new_id() -> str:
    return uuid.uuid4().hex


def create_facility(uow: UnitOfWork, facility: Facility, now: datetime) -> Facility:
    facility_id = facility.facility_id or new_id()
    require(validate_resource_id(facility_id, "facility_id") + validate_facility(facility))
    if uow.facilities.exists(facility_id):
        raise AlreadyExists("a facility with this id exists", reason="FACILITY_EXISTS")
    created = dataclasses.replace(
        facility, facility_id=facility_id, create_time=now, update_time=now, etag=new_etag())
    uow.facilities.add(created)
    return created


def get_facility(uow: UnitOfWork, facility_id: str) -> Facility:
    facility = uow.facilities.get(facility_id)
    if facility is None:
        raise NotFound("no such facility", reason="FACILITY_NOT_FOUND")
    return facility


def list_facilities(
    uow: UnitOfWork, page: Page, visible: frozenset[str] | None
) -> tuple[list[Facility], str]:
    rows = uow.facilities.list(limit=page.size + 1, after=page.after, only=visible)
    items = rows[: page.size]
    return items, next_token(page, rows, items[-1].facility_id if items else None)


def _check_etag(given: str, current: str) -> None:
    if given and given != current:
        raise Aborted("the resource changed since it was read; read it again",
                      reason="ETAG_MISMATCH")


def update_facility(
    uow: UnitOfWork, facility_id: str, patch: dict[str, Any], etag: str, now: datetime
) -> Facility:
    """Replace the patched fields (already converted to domain values) and validate the whole."""
    current = get_facility(uow, facility_id)
    _check_etag(etag, current.etag)
    updated = dataclasses.replace(current, **patch, update_time=now, etag=new_etag())
    require(validate_facility(updated))
    if not uow.facilities.replace(updated, expected_etag=current.etag):
        raise Aborted("the facility changed concurrently; read it again", reason="ETAG_MISMATCH")
    if settings_key(updated) != settings_key(current):
        # Times, shifts, windows or zone moved: the sweep's rows become the new plan in
        # this transaction, so each missed dose of the new plan is alerted once.
        replan_facility(uow, updated, now)
    if updated.pn_evaluation_minutes != current.pn_evaluation_minutes:
        # The sweep looks at each PN dose at the deadline the setting gives now.
        rules = FacilityRules.from_facility(updated)
        uow.records.move_followups(facility_id,
                                   lambda at, rec: pn_evaluation_deadline(at, rec, rules))
    return updated


def create_resident(uow: UnitOfWork, resident: Resident, now: datetime) -> Resident:
    resident_id = resident.resident_id or new_id()
    violations = validate_resource_id(resident_id, "resident_id") + validate_resident(resident)
    try:
        person_id = normalise_person_id(resident.person_id)
    except InvalidArgument as e:
        violations += [FieldViolation("resident." + v.field, v.description) for v in e.violations]
        person_id = ""
    require(violations)
    get_facility(uow, resident.facility_id)
    if uow.residents.get(resident.facility_id, resident_id) is not None:
        raise AlreadyExists("a resident with this id exists", reason="RESIDENT_EXISTS")
    # Per facility: the answer never depends on what another facility holds (a global
    # check told any administrator whether a person lived in another care home).
    if uow.residents.person_id_taken(resident.facility_id, person_id):
        raise AlreadyExists("a resident of this facility has this person identifier",
                            reason="PERSON_ID_EXISTS")
    created = dataclasses.replace(
        resident, resident_id=resident_id, person_id=person_id, create_time=now,
        update_time=now, etag=new_etag())
    uow.residents.add(created)
    return created


def get_resident(uow: UnitOfWork, facility_id: str, resident_id: str) -> Resident:
    resident = uow.residents.get(facility_id, resident_id)
    if resident is None:
        raise NotFound("no such resident", reason="RESIDENT_NOT_FOUND")
    return resident


def all_residents(uow: UnitOfWork, facility_id: str) -> list[Resident]:
    """Every resident of a facility, in room order (round lists, inspection checks)."""
    residents: list[Resident] = []
    after: tuple[str, str] | None = None
    while True:
        page = uow.residents.list(facility_id, limit=1000, after=after)
        residents += page
        if len(page) < 1000:
            return residents
        after = (page[-1].room, page[-1].resident_id)


def list_residents(uow: UnitOfWork, facility_id: str, page: Page) -> tuple[list[Resident], str]:
    get_facility(uow, facility_id)
    after = tuple(page.after) if page.after is not None else None
    rows = uow.residents.list(facility_id, limit=page.size + 1, after=after)
    items = rows[: page.size]
    last = [items[-1].room, items[-1].resident_id] if items else None
    return items, next_token(page, rows, last)


_RESIDENT_WRITABLE = {"display_name", "room"}


def update_resident(
    uow: UnitOfWork, facility_id: str, resident_id: str, patch: dict[str, Any], etag: str,
    now: datetime,
) -> Resident:
    current = get_resident(uow, facility_id, resident_id)
    _check_etag(etag, current.etag)
    unknown = set(patch) - _RESIDENT_WRITABLE
    if unknown:
        raise InvalidArgument([FieldViolation("update_mask", f"cannot update {f}")
                               for f in sorted(unknown)])
    updated = dataclasses.replace(current, **patch, update_time=now, etag=new_etag())
    require(validate_resident(updated))
    if not uow.residents.replace(updated, expected_etag=current.etag):
        raise Aborted("the resident changed concurrently; read it again", reason="ETAG_MISMATCH")
    return updated
