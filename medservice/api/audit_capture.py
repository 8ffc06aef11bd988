"""The audit event of each call (issue 5): what the call addressed, read from its request,
and the event written once with the call's outcome.

A write's event commits in the transaction that does its work: UnitOfWork.commit adds the
call's pending draft with outcome OK; on PostgreSQL a unary read's event commits so too, in
the read's transaction when it ends without error (SqlUnitOfWork.__exit__). Everything
else (reads, failures, retries answered from the request log) gets its event here when the
call ends; a write that committed and then failed gets a second event with the failure. A
stream gets one event, written when it first sends data, or at its end with its code if it
never did. Those events are written by
GroupCommit: several calls' events to a transaction, each call waiting for its own.

Only resource names are kept, and only well-formed ones: a malformed name (which could be
anything a caller typed, a person identifier included) is left out.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

import structlog
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from medservice.domain.access import Principal
from medservice.service.idempotency import is_request_id
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store.audit import AuditDraft, AuditEvent

log = structlog.get_logger("medservice.audit")

AUDITED_PREFIX = "/medservice.v1."
# Where requests carry the name of what they address, in this order of preference.
_NAME_FIELDS = ("name", "parent", "resident", "facility")
# ... and in a request's nested messages: UpdateResidentRequest.resident, SyncMedicineCard-
# Request.card, a RecordDoseRequest.record if it ever names its resident.
_NESTED_NAME_FIELDS = ("resident", "name")

_SEGMENT = r"[a-z0-9][a-z0-9-]{0,62}"
_WELL_FORMED = re.compile(
    rf"^facilities/(-|{_SEGMENT})(/[a-zA-Z]+/[A-Za-z0-9._~:-]{{1,63}}|/medicineCard)*$")
_FACILITY = re.compile(rf"^facilities/({_SEGMENT})(/|$)")
_RESIDENT = re.compile(rf"^facilities/({_SEGMENT})/residents/({_SEGMENT})(/|$)")
_ID = re.compile(rf"^{_SEGMENT}$")
# A CPR number, with or without its hyphen, standing on its own.
_PERSON_ID = re.compile(r"(?<![A-Za-z0-9])\d{6}-?\d{4}(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Addressed:
    """What a call addressed: a resource name and the facility and resident it lies in."""

    resource: str = ""
    facility_id: str | None = None
    resident_id: str | None = None


def _safe(name: str) -> bool:
    return (len(name) <= 300 and _WELL_FORMED.match(name) is not None
            and _PERSON_ID.search(name) is None)


def _string(message: Message, field: str) -> str:
    fd = message.DESCRIPTOR.fields_by_name.get(field)
    if fd is None or fd.type != FieldDescriptor.TYPE_STRING or fd.is_repeated:
        return ""
    return str(getattr(message, field))


def _strings(descriptor: Any, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Those of `fields` that are single strings in messages of `descriptor`."""
    by_name = descriptor.fields_by_name
    return tuple(f for f in fields if f in by_name
                 and by_name[f].type == FieldDescriptor.TYPE_STRING
                 and not by_name[f].is_repeated)


# Per request type, worked out once rather than in every call: its name fields, and each
# nested message field with that message's name fields (see _candidates).
_Plan = tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]
_PLANS: dict[Any, _Plan] = {}  # by message descriptor


def _plan(descriptor: Any) -> _Plan:
    plan = _PLANS.get(descriptor)
    if plan is None:
        nested = tuple((fd.name, _strings(fd.message_type, _NESTED_NAME_FIELDS))
                       for fd in descriptor.fields
                       if fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated)
        plan = _PLANS[descriptor] = (_strings(descriptor, _NAME_FIELDS), nested)
    return plan


def _candidates(request: Message) -> list[str]:
    top, nested = _plan(request.DESCRIPTOR)
    out = [getattr(request, f) for f in top]
    for name, fields in nested:
        if request.HasField(name):
            message = getattr(request, name)
            out += [getattr(message, f) for f in fields]
    return out


def addressed_by_names(candidates: Iterable[str]) -> Addressed:
    """The first well-formed name is the resource; the resident is the first one named
    (any name under facilities/{f}/residents/{r}), the facility its or the first one."""
    names = [n for n in candidates if n and _safe(n)]
    if not names:
        return Addressed()
    resident = next((m for m in map(_RESIDENT.match, names) if m), None)
    if resident is not None:
        return Addressed(names[0], resident.group(1), resident.group(2))
    facility = next((m for m in map(_FACILITY.match, names) if m), None)
    return Addressed(names[0], facility.group(1) if facility else None, None)


def addressed(request: Message) -> Addressed:
    """What `request` addresses. A create that names the new resource's id addresses it:
    CreateFacilityRequest.facility_id, CreateResidentRequest.parent + resident_id."""
    found = addressed_by_names(_candidates(request))
    facility_id, resident_id = _string(request, "facility_id"), _string(request, "resident_id")
    if not found.resource and _ID.match(facility_id) and _PERSON_ID.search(facility_id) is None:
        return Addressed(f"facilities/{facility_id}", facility_id)
    if (found.facility_id and found.resident_id is None
            and found.resource == f"facilities/{found.facility_id}"
            and _ID.match(resident_id) and _PERSON_ID.search(resident_id) is None):
        return Addressed(f"{found.resource}/residents/{resident_id}", found.facility_id,
                         resident_id)
    return found


def _request_id(request: Any) -> str:
    """Only a well-formed one (a UUID): anything else could be what a caller typed."""
    value = getattr(request, "request_id", "")
    return value if is_request_id(value) else ""


M = TypeVar("M", bound=Message)

# The audit event of the call in progress, set by the call interceptor for the duration of
# each call (None outside calls); server.build_server passes it to the call's units of work.
pending_audit: contextvars.ContextVar[AuditDraft | None] = contextvars.ContextVar(
    "pending_audit", default=None)


def address_created(response: M) -> M:
    """A create whose id the service chose names the new resource only in its response:
    take it into the call's pending event before it commits. Only a resource under the one
    the request addressed is taken, and only while no resident is named."""
    draft = pending_audit.get()
    if not isinstance(response, Message):
        return response
    name = _string(response, "name")
    if draft is None or draft.written or draft.event.resident_id or not name:
        return response
    if draft.event.resource and not name.startswith(draft.event.resource + "/"):
        return response
    found = addressed_by_names([name])
    if found.resource:
        draft.event = replace(draft.event, resource=found.resource,
                              facility_id=found.facility_id, resident_id=found.resident_id)
    return response


def note_audit(detail: str) -> None:
    """Record in the call's event what the caller asserted that the call acts on (a fixed
    code such as "unidentified", never request data). Before the work commits, it is in the
    event the work commits; a retry answered from the request log keeps it (run_idempotent
    restores the event as it was before the work)."""
    draft = pending_audit.get()
    if draft is not None and not draft.written:
        draft.event = replace(draft.event, detail=detail)


@contextlib.contextmanager
def item_audit(request: Message) -> Iterator[None]:
    """While a batch does one item: the item's own event (the call's, addressing what the
    item addresses, under its request_id), committed with the item's work. The call keeps
    its own event, written when it ends."""
    call = pending_audit.get()
    if call is None:
        yield
        return
    where = addressed(request)
    token = pending_audit.set(AuditDraft(replace(
        call.event, resource=where.resource,
        facility_id=where.facility_id or call.event.facility_id,
        resident_id=where.resident_id, request_id=_request_id(request))))
    try:
        yield
    finally:
        pending_audit.reset(token)


@dataclass
class CallAudit:
    """The audit of one call in progress."""

    draft: AuditDraft
    token: contextvars.Token[AuditDraft | None] | None
    streamed: bool = False  # a stream's event went out with its first message


class AuditRecorder:
    """Used by the call interceptor: `begin` when a call is authenticated, `end` (and for
    streams `first_message`) as it goes. Writing returns False when it failed; the failure
    is logged, and the caller must then not hand out data the trail does not show."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Callable[[], datetime],
                 append: AppendAudit | None = None) -> None:
        self._clock = clock
        self._events = GroupCommit(append or through_units(uow_factory))

    def begin(self, method: str, request: Any, principal: Principal, *,
              stream: bool = False) -> CallAudit | None:
        """A stream's event goes out with its first message, never with a read."""
        if not method.startswith(AUDITED_PREFIX):
            return None
        where = addressed(request) if isinstance(request, Message) else Addressed()
        draft = AuditDraft(AuditEvent(
            "", self._clock(), where.facility_id, principal.subject, principal.role, method,
            where.resource, where.resident_id, _request_id(request), ""),
            with_reads=not stream)
        return CallAudit(draft, pending_audit.set(draft))

    def first_message(self, call: CallAudit | None) -> bool:
        if call is None or call.draft.written:
            return True
        call.streamed = True
        return self._write(call.draft, "OK")

    def end(self, call: CallAudit | None, outcome: str) -> bool:
        if call is None:
            return True
        if call.token is not None:
            try:
                pending_audit.reset(call.token)
            except ValueError:  # a stream closed from another context
                pending_audit.set(None)
            call.token = None
        if call.draft.written and (outcome == "OK" or call.streamed):
            return True
        return self._write(call.draft, outcome)

    def _write(self, draft: AuditDraft, outcome: str) -> bool:
        written = draft.written
        draft.written = True  # so that this unit of work does not add the draft a second time
        error = self._events.write(draft.completed(outcome))
        if error is None:
            return True
        draft.written = written
        log.error("audit event not written", outcome=outcome, exc_info=error)
        return False


# Inserts and commits the events the callable gives once the transaction is open.
AppendAudit = Callable[[Callable[[], Sequence[AuditEvent]]], None]


def through_units(uow_factory: UnitOfWorkFactory) -> AppendAudit:
    """Appending through a unit of work (where there is no store.audit.AuditAppender: the
    fakes, servers built without their engine)."""

    def append(events: Callable[[], Sequence[AuditEvent]]) -> None:
        # No call's pending draft may ride along (a write unit of work commits the draft
        # it was given).
        token = pending_audit.set(None)
        try:
            with uow_factory() as uow:
                uow.audit.add_all(events())
                uow.commit()
        finally:
            pending_audit.reset(token)

    return append


class _Queued:
    __slots__ = ("_done", "error", "event", "lead")

    def __init__(self, event: AuditEvent) -> None:
        self.event = event
        # Held until written (or not), or until the lead is handed over: a bare lock is
        # the cheapest wake-up (an Event is a Condition, a lock and a list of waiters).
        self._done = threading.Lock()
        self._done.acquire()
        self.lead = False
        self.error: Exception | None = None

    def wait(self) -> None:
        self._done.acquire()

    def wake(self) -> None:  # once per item
        self._done.release()


class GroupCommit:
    """Audit events written by calls that have no transaction of their own to put them in
    (reads, failures), several to a transaction: a commit, not the insert, is what an event
    costs, and with one writer at a time (SQLite) each call's own commit queued behind all
    the others. Each caller still waits until its event has committed, and learns whether
    it did: a read hands out no data that the trail does not show.

    No thread of its own: the first caller to find no commit in progress writes what is
    queued once its transaction is open (its own event first in line) and then hands the
    lead to the first of those who queued meanwhile, who writes theirs together. If a
    shared commit fails, each of its events is tried alone, so that one bad event fails
    only its own call."""

    def __init__(self, append: AppendAudit) -> None:
        self._append = append
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._busy = False

    def write(self, event: AuditEvent) -> Exception | None:
        """Write `event`; None once committed, else the error."""
        mine = _Queued(event)
        with self._lock:
            self._queue.append(mine)
            lead, self._busy = not self._busy, True
        if not lead:
            mine.wait()
            if not mine.lead:
                return mine.error
        batch: list[_Queued] = []
        try:
            self._commit(batch)
        finally:
            self._take(batch)  # if it never was (nothing is left queued for no one)
            with self._lock:
                if self._queue:
                    following = self._queue[0]
                    following.lead = True
                    following.wake()
                else:
                    self._busy = False
            for q in batch:
                if q is not mine:
                    q.wake()
        return mine.error

    def _take(self, batch: list[_Queued]) -> list[AuditEvent]:
        """Move what is queued (the leader's own event first) into `batch`, once; its
        events."""
        if not batch:
            with self._lock:
                batch += self._queue
                self._queue = []
        return [q.event for q in batch]

    def _commit(self, batch: list[_Queued]) -> None:
        """Write the queue as `batch`, taken once the transaction is open: who queued while
        it opened (SQLite: waited for the write lock) goes in the same commit."""
        try:
            self._append(lambda: self._take(batch))
            return
        except Exception as e:
            self._take(batch)
            if len(batch) == 1:
                batch[0].error = e
                return
        for q in batch:
            try:
                self._append([q.event].copy)  # this event alone
            except Exception as e:
                q.error = e
