"""Reading the audit trail (issue 5). Events are written by the API layer, one per call
(medservice.api.audit_capture); this is the one use case that reads them."""

from __future__ import annotations

from medservice.service.facilities import get_facility
from medservice.service.paging import Page, next_token
from medservice.service.unit_of_work import UnitOfWork
from medservice.store.audit import AuditEvent, AuditFilter


def list_audit_events(uow: UnitOfWork, flt: AuditFilter, page: Page,
                      facility_id: str | None) -> tuple[list[AuditEvent], str]:
    """Newest first. `facility_id` is the one facility asked for, which must exist (the
    caller has checked permission first); None for "facilities/-"."""
    if facility_id is not None:
        get_facility(uow, facility_id)
    after = tuple(page.after) if page.after else None
    rows = uow.audit.page(flt, limit=page.size + 1, after=after)
    items = rows[: page.size]
    last = [items[-1].event_time.isoformat(), items[-1].event_id] if items else None
    return items, next_token(page, rows, last)
