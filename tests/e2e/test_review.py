"""The pharmacist's review over gRPC, on SQLite and PostgreSQL (issue 5, part 3): the queue,
decisions under the etag, and each discrepancy's history. The discrepancies are real:
produced by recording doses and reconciling two homes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ParamSpec
from zoneinfo import ZoneInfo

import grpc
import pytest

from clients.client import MedClient, MedServiceError
from medservice.domain.access import Role
from medservice.v1 import common_pb2, medicine_cards_pb2_grpc
from medservice.v1 import discrepancies_pb2 as dpb
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, morning_evening, order, ts
from tests.conftest import ServerFixture, TestClock, token_for

# Request ids are UUIDs (AIP-155); anything else is refused.
RID_RV_1 = "68dd5537-5b36-5929-8482-7a187e8aad09"

ZONE = ZoneInfo("Europe/Copenhagen")
P = ParamSpec("P")
HIGH, MEDIUM, INFO = common_pb2.SEVERITY_HIGH, common_pb2.SEVERITY_MEDIUM, common_pb2.SEVERITY_INFO
WRONG_DOSE = dpb.DISCREPANCY_CODE_WRONG_DOSE
MISSED = dpb.DISCREPANCY_CODE_MISSED_DOSE
MANUAL = dpb.DISCREPANCY_CODE_NEEDS_MANUAL_SCHEDULE
NOT_GIVEN = dpb.DISCREPANCY_CODE_NOT_GIVEN
CONFIRMED = dpb.REVIEW_DECISION_CONFIRMED_ERROR
NOT_AN_ERROR = dpb.REVIEW_DECISION_NOT_AN_ERROR
FOLLOW_UP = dpb.REVIEW_DECISION_NEEDS_FOLLOW_UP


def _resident(facility: str) -> str:
    return f"facilities/{facility}/residents/r1"


@dataclass
class Homes:
    """Homes "a" and "b", one resident each (paracetamol morning and evening, and a
    free-text order that needs a manual schedule), on the day of the round."""

    server: ServerFixture
    clock: TestClock
    day: datetime  # local midnight of the round's day
    carers: dict[str, MedClient]
    pharmacist: MedClient  # every facility

    def set_now(self, at: datetime) -> None:
        self.clock.advance(at - self.clock())

    def doses(self, facility: str) -> list[pb.ScheduledDose]:
        c = self.carers[facility]
        return list(c.call(c.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
            parent=_resident(facility), start_time=ts(self.day),
            end_time=ts(self.day + timedelta(days=1)))).doses)

    def record(self, facility: str, d: pb.ScheduledDose, *, quantity: str = "2",
               ack: tuple[str, ...] = ()) -> pb.RecordDoseResponse:
        c = self.carers[facility]
        return c.call(c.rounds.RecordDose, pb.RecordDoseRequest(
            parent=_resident(facility), acknowledged_reasons=ack, record=pb.AdministrationRecord(
                dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity=quantity,
                route="oral", administration_time=d.due_time)))

    def refuse(self, facility: str, d: pb.ScheduledDose) -> None:
        c = self.carers[facility]
        c.call(c.rounds.RecordDose, pb.RecordDoseRequest(
            parent=_resident(facility), record=pb.AdministrationRecord(
                dose_id=d.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_NOT_GIVEN,
                not_given_reason=pb.NOT_GIVEN_REASON_REFUSED, administration_time=d.due_time)))

    def reconcile(self, facility: str) -> None:
        p = self.pharmacist
        p.call(p.discrepancies.ReconcileFacility, dpb.ReconcileFacilityRequest(
            facility=f"facilities/{facility}", start_time=ts(self.day),
            end_time=ts(self.day + timedelta(days=1))))

    def find(self, facility: str, code: dpb.DiscrepancyCode.ValueType) -> dpb.Discrepancy:
        p = self.pharmacist
        [found] = p.call(p.discrepancies.ListDiscrepancies, dpb.ListDiscrepanciesRequest(
            parent=f"facilities/{facility}", code=code)).discrepancies
        return found


@pytest.fixture
def homes(server: ServerFixture, server_clock: TestClock) -> Homes:
    server_clock.to_late_evening(ZONE)  # the cards are mirrored after today's rounds
    admin = server.client(Role.ADMIN)
    integration = server.client(Role.INTEGRATION)
    cards = medicine_cards_pb2_grpc.MedicineCardServiceStub(integration.channel)
    for i, f in enumerate(("a", "b")):
        admin.create_facility(fpb.Facility(display_name=f"Home {f}"), f)
        admin.create_resident(f, fpb.Resident(person_id=f"01014{i}-111{i}", display_name="A",
                                              room="1"), "r1")
        r = _resident(f)
        integration.call(cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
            card=cpb.MedicineCard(name=f"{r}/medicineCard", card_version=1, orders=[
                order(r, "para", "Paracetamol", morning_evening("2")),
                order(r, "inr", "Marevan", cpb.Dosage(free_text="efter INR"))]),
            valid_time=ts(CARD_VALID_FROM)))
    # The round is tomorrow, at 09:00 (after the morning dose).
    tomorrow = server_clock().astimezone(ZONE).date() + timedelta(days=1)
    day = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZONE)
    h = Homes(server, server_clock, day,
              {f: server.client(Role.CARER, f, subject=f"carer-{f}") for f in ("a", "b")},
              server.client(Role.PHARMACIST, subject="pharmacist-1"))
    h.set_now(day + timedelta(hours=9))
    return h


@pytest.fixture
def round_done(homes: Homes) -> Homes:
    """A wrong dose in a (high), a refusal in b (info), then both evening doses missed
    (high) once the evening windows have closed; each home has a manual schedule (medium)."""
    homes.record("a", homes.doses("a")[0], quantity="3", ack=("WRONG_DOSE",))
    homes.refuse("b", homes.doses("b")[0])
    homes.set_now(homes.day + timedelta(hours=21))
    homes.reconcile("a")
    homes.reconcile("b")
    return homes


def _queue(c: MedClient, parent: str = "facilities/-", page_size: int = 0
           ) -> list[dpb.Discrepancy]:
    return list(c.review_queue(parent, page_size))


def _facility(d: dpb.Discrepancy) -> str:
    return d.name.split("/")[1]


def _summary(queue: list[dpb.Discrepancy]) -> list[tuple[str, int, int]]:
    return [(_facility(d), d.code, d.status) for d in queue]


def _fails(fn: Callable[P, object], *args: P.args, **kw: P.kwargs) -> MedServiceError:
    with pytest.raises(MedServiceError) as info:
        fn(*args, **kw)
    return info.value


def _history(c: MedClient, name: str) -> list[tuple[str, str, str]]:
    return [(e.kind, e.actor, e.detail) for e in c.discrepancy_events(name)]


OPEN, REVIEWED = dpb.DISCREPANCY_STATUS_OPEN, dpb.DISCREPANCY_STATUS_REVIEWED


def test_the_queue_is_open_first_then_by_severity_then_by_facility(round_done: Homes) -> None:
    p = round_done.pharmacist
    queue = _queue(p)
    assert _summary(queue) == [
        ("a", WRONG_DOSE, OPEN), ("a", MISSED, OPEN), ("b", MISSED, OPEN),  # high
        ("a", MANUAL, OPEN), ("b", MANUAL, OPEN),  # medium
        ("b", NOT_GIVEN, OPEN),  # info
    ]
    # Within a facility and severity, the oldest occurrence first.
    assert queue[0].occurrence_time.ToDatetime() < queue[1].occurrence_time.ToDatetime()
    # Needing follow-up: still queued, after every open one; decided otherwise: gone.
    wrong, missed_a = queue[0], queue[1]
    p.review_discrepancy(missed_a.name, FOLLOW_UP, "ask the GP", missed_a.etag)
    p.review_discrepancy(wrong.name, CONFIRMED, "", wrong.etag)
    assert _summary(_queue(p)) == [
        ("b", MISSED, OPEN), ("a", MANUAL, OPEN), ("b", MANUAL, OPEN), ("b", NOT_GIVEN, OPEN),
        ("a", MISSED, REVIEWED)]
    # One facility, and a pharmacist who may see only "b".
    assert [_facility(d) for d in _queue(p, "facilities/b")] == ["b"] * 3
    only_b = round_done.server.client(Role.PHARMACIST, "b")
    assert _summary(_queue(only_b)) == _summary(_queue(p, "facilities/b"))
    err = _fails(_queue, only_b, "facilities/a")
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "FACILITY_NOT_ALLOWED")


def test_the_queue_pages_and_its_token_is_bound_to_the_query(round_done: Homes) -> None:
    p = round_done.pharmacist
    everything = _queue(p)
    pages, token, seen = 0, "", []
    while True:
        resp = p.call(p.discrepancies.ListReviewQueue, dpb.ListReviewQueueRequest(
            parent="facilities/-", page_size=4, page_token=token))
        seen += list(resp.discrepancies)
        pages += 1
        token = resp.next_page_token
        if not token:
            break
        # A token is refused with another parent.
        err = _fails(p.call, p.discrepancies.ListReviewQueue, dpb.ListReviewQueueRequest(
            parent="facilities/a", page_token=token))
        assert (err.code, err.violations[0][0]) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                     "page_token")
    assert pages == 2 and [d.name for d in seen] == [d.name for d in everything]
    assert [d.name for d in _queue(p, page_size=1)] == [d.name for d in everything]
    err = _fails(p.call, p.discrepancies.ListReviewQueue, dpb.ListReviewQueueRequest(
        parent="facilities/-", page_size=-1))
    assert err.violations[0][0] == "page_size"


def test_a_review_records_the_decision_the_reviewer_and_a_new_etag(round_done: Homes) -> None:
    p = round_done.pharmacist
    wrong = round_done.find("a", WRONG_DOSE)
    done = p.review_discrepancy(wrong.name, NOT_AN_ERROR, "quantity typed wrong", wrong.etag)
    assert done.status == REVIEWED and done.etag and done.etag != wrong.etag
    assert (done.review.decision, done.review.note, done.review.reviewer) == (
        NOT_AN_ERROR, "quantity typed wrong", "pharmacist-1")
    assert abs(done.review.review_time.ToDatetime(tzinfo=UTC) - round_done.clock()) < \
        timedelta(seconds=5)
    assert p.get_discrepancy(wrong.name) == done
    # A re-decision with the current etag, e.g. after follow-up: another event.
    again = p.review_discrepancy(wrong.name, CONFIRMED, "GP confirms", done.etag)
    assert (again.review.decision, again.etag != done.etag) == (CONFIRMED, True)
    assert _history(p, wrong.name) == [
        ("DETECTED", "reconciliation", ""),
        ("REVIEWED", "pharmacist-1", "decision=not_an_error: quantity typed wrong"),
        ("REVIEWED", "pharmacist-1", "decision=confirmed_error: GP confirms")]


def test_a_stale_etag_is_aborted_and_changes_nothing(round_done: Homes) -> None:
    p = round_done.pharmacist
    missed = round_done.find("b", MISSED)
    done = p.review_discrepancy(missed.name, FOLLOW_UP, "first", missed.etag)
    err = _fails(p.review_discrepancy, missed.name, CONFIRMED, "second", missed.etag)
    assert (err.code, err.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert p.get_discrepancy(missed.name) == done
    assert [k for k, _, _ in _history(p, missed.name)] == ["DETECTED", "REVIEWED"]
    err = _fails(p.review_discrepancy, missed.name, CONFIRMED, "", "")
    assert (err.code, [f for f, _ in err.violations]) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                          ["etag"])


def test_two_reviewers_with_one_etag_exactly_one_wins(round_done: Homes) -> None:
    reviewers = [round_done.server.client(Role.PHARMACIST, "a", "b", subject=f"pharmacist-{i}")
                 for i in (2, 3)]
    def review(c: MedClient, subject: str, target: dpb.Discrepancy,
               barrier: threading.Barrier, out: dict[str, object]) -> None:
        barrier.wait()
        try:
            out[subject] = c.review_discrepancy(target.name, CONFIRMED, "", target.etag)
        except MedServiceError as e:
            out[subject] = e

    for target in _queue(round_done.pharmacist)[:3]:
        barrier = threading.Barrier(len(reviewers))
        results: dict[str, object] = {}
        threads = [threading.Thread(target=review, args=(c, f"pharmacist-{i}", target,
                                                         barrier, results))
                   for c, i in zip(reviewers, (2, 3), strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wins = {s: r for s, r in results.items() if isinstance(r, dpb.Discrepancy)}
        losses = [r for r in results.values() if isinstance(r, MedServiceError)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert (losses[0].code, losses[0].reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
        [(winner, won)] = wins.items()
        stored = round_done.pharmacist.get_discrepancy(target.name)
        assert stored == won and stored.review.reviewer == winner
        assert [(k, a) for k, a, _ in _history(round_done.pharmacist, target.name)] == [
            ("DETECTED", "reconciliation"), ("REVIEWED", winner)]


def test_withdrawn_cannot_be_reviewed_and_the_history_shows_why(homes: Homes) -> None:
    p = homes.pharmacist
    morning = homes.doses("a")[0]
    given = homes.record("a", morning, quantity="3", ack=("WRONG_DOSE",))
    wrong = homes.find("a", WRONG_DOSE)
    reviewed = p.review_discrepancy(wrong.name, CONFIRMED, "too much", wrong.etag)
    # Entered in error: the wrong dose no longer applies, reviewed or not.
    carer = homes.carers["a"]
    carer.call(carer.rounds.CorrectRecord, pb.CorrectRecordRequest(name=given.record.name,
                                                                   reason="typo"))
    withdrawn = p.get_discrepancy(wrong.name)
    assert withdrawn.status == dpb.DISCREPANCY_STATUS_WITHDRAWN
    assert withdrawn.review.decision == CONFIRMED and withdrawn.etag != reviewed.etag
    assert _history(p, wrong.name) == [
        ("DETECTED", "reconciliation", ""),
        ("REVIEWED", "pharmacist-1", "decision=confirmed_error: too much"),
        ("WITHDRAWN", "reconciliation", "no longer found")]
    err = _fails(p.review_discrepancy, wrong.name, NOT_AN_ERROR, "", withdrawn.etag)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                      "DISCREPANCY_WITHDRAWN")
    assert wrong.name not in [d.name for d in _queue(p)]
    # Its window has closed with no record left: missed. Reviewed, then given after all
    # (withdrawn), then that record entered in error too: found again, and open again.
    missed = homes.find("a", MISSED)
    p.review_discrepancy(missed.name, FOLLOW_UP, "call the home", missed.etag)
    late = homes.record("a", morning)
    assert p.get_discrepancy(missed.name).status == dpb.DISCREPANCY_STATUS_WITHDRAWN
    carer.call(carer.rounds.CorrectRecord, pb.CorrectRecordRequest(name=late.record.name,
                                                                   reason="not given"))
    again = p.get_discrepancy(missed.name)
    assert again.status == OPEN and not again.HasField("review")
    assert [k for k, _, _ in _history(p, missed.name)] == [
        "DETECTED", "REVIEWED", "WITHDRAWN", "REDETECTED"]
    assert missed.name in [d.name for d in _queue(p)]


def test_the_history_pages(round_done: Homes) -> None:
    p = round_done.pharmacist
    d = round_done.find("b", NOT_GIVEN)
    etag = d.etag
    for note in ("one", "two", "three"):
        etag = p.review_discrepancy(d.name, FOLLOW_UP, note, etag).etag
    events = list(p.discrepancy_events(d.name, page_size=1))
    assert [e.detail for e in events] == ["", "decision=needs_follow_up: one",
                                          "decision=needs_follow_up: two",
                                          "decision=needs_follow_up: three"]
    times = [e.event_time.ToDatetime() for e in events]
    assert times == sorted(times)
    # The history of another facility's discrepancy is denied before it is looked up.
    only_a = round_done.server.client(Role.PHARMACIST, "a")
    for name in (d.name, "facilities/b/discrepancies/" + "0" * 32):
        err = _fails(list, only_a.discrepancy_events(name))
        assert err.code == grpc.StatusCode.PERMISSION_DENIED
    err = _fails(list, p.discrepancy_events("facilities/b/discrepancies/" + "0" * 32))
    assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "DISCREPANCY_NOT_FOUND")
    err = _fails(list, p.discrepancy_events("facilities/b"))
    assert err.violations[0][0] == "parent"


def test_who_may_review_and_what_a_review_needs(round_done: Homes) -> None:
    server = round_done.server
    d = round_done.find("a", MISSED)
    err = _fails(round_done.pharmacist.review_discrepancy, d.name,
                 dpb.REVIEW_DECISION_UNSPECIFIED, "", d.etag)
    assert (err.code, [f for f, _ in err.violations]) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                          ["decision"])
    for role in (Role.CARER, Role.SHIFT_LEAD, Role.ADMIN, Role.INTEGRATION):
        err = _fails(server.client(role, "a").review_discrepancy, d.name, CONFIRMED, "", d.etag)
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED,
                                          "ROLE_NOT_ALLOWED"), role
    for role in (Role.CARER, Role.SHIFT_LEAD):
        err = _fails(_queue, server.client(role, "a"))
        assert err.code == grpc.StatusCode.PERMISSION_DENIED, role
    assert _queue(server.client(Role.ADMIN))  # administrators may see the queue
    # A pharmacist of "b" cannot review "a"'s, existing or not: permission first.
    of_b = server.client(Role.PHARMACIST, "b")
    for name in (d.name, "facilities/a/discrepancies/" + "f" * 32):
        err = _fails(of_b.review_discrepancy, name, CONFIRMED, "", d.etag)
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED,
                                          "FACILITY_NOT_ALLOWED")
    err = _fails(round_done.pharmacist.review_discrepancy,
                 "facilities/a/discrepancies/" + "f" * 32, CONFIRMED, "", d.etag)
    assert (err.code, err.reason) == (grpc.StatusCode.NOT_FOUND, "DISCREPANCY_NOT_FOUND")
    assert round_done.pharmacist.get_discrepancy(d.name) == d  # nothing changed


def test_a_retried_review_returns_the_first_answer(round_done: Homes) -> None:
    p = round_done.pharmacist
    d = round_done.find("b", MISSED)
    first = p.review_discrepancy(d.name, CONFIRMED, "late round", d.etag, request_id=RID_RV_1)
    # The etag is stale now, but a retry is answered from the request log, not redone.
    assert p.review_discrepancy(d.name, CONFIRMED, "late round", d.etag,
                                request_id=RID_RV_1) == first
    assert [k for k, _, _ in _history(p, d.name)] == ["DETECTED", "REVIEWED"]
    err = _fails(p.review_discrepancy, d.name, NOT_AN_ERROR, "late round", d.etag,
                 request_id=RID_RV_1)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                      "REQUEST_ID_REUSED")


def test_medctl_review_list_decide_and_history(round_done: Homes,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    base = ["--target", round_done.server.target, "--token",
            token_for(Role.PHARMACIST, "a", subject="pharmacist-9")]
    assert main([*base, "review", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ALVOR", "TILSTAND", "KODE", "SKET", "BEBOER", "AFVIGELSE"]
    assert [line.split()[2] for line in out[1:]] == ["WRONG_DOSE", "MISSED_DOSE",
                                                     "NEEDS_MANUAL_SCHEDULE"]
    wrong = out[1].split()[-1]
    stale = round_done.pharmacist.get_discrepancy(wrong).etag
    assert main([*base, "review", "decide", wrong, "--decision", "needs-follow-up",
                 "--note", "ring the GP"]) == 0
    assert capsys.readouterr().out.strip() == f"vurderet {wrong}: kræver opfølgning"
    assert main([*base, "review", "decide", wrong, "--decision", "confirmed-error",
                 "--etag", stale]) == 1
    err = capsys.readouterr().err
    assert "er ændret, siden den blev læst" in err and "intet blev registreret" in err
    assert main([*base, "review", "history", wrong]) == 0
    out = capsys.readouterr().out.splitlines()
    # Times on the facility's clock with its zone, never UTC ("2026-12-05 10:49:00 CET").
    assert [line.split()[2] for line in out[1:]] == ["CET", "CET"] or \
        [line.split()[2] for line in out[1:]] == ["CEST", "CEST"]
    assert [line.split()[3] for line in out[1:]] == ["opdaget", "vurderet"]
    assert "pharmacist-9" in out[2] and "decision=needs_follow_up: ring the GP" in out[2]
    assert main([*base, "review", "list", "--facility", "a"]) == 0
    assert "vurderet (kræver opfølgning)" in capsys.readouterr().out
