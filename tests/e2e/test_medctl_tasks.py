"""medctl for every task of every role (issue 15), against a real server on SQLite and
PostgreSQL: the defaults people expect (today and the shift on duty, short resident ids,
drug by name or ATC code, the decimal comma), --json on every command, and bad input
answered in one line naming the valid values, the role needed or the --ack to give."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clients import defaults
from medservice.domain.access import Role
from medservice.v1 import common_pb2
from medservice.v1 import facilities_pb2 as fpb
from medservice.v1 import medicine_cards_pb2 as cpb
from medservice.v1 import rounds_pb2 as pb
from tests.builders import CARD_VALID_FROM, K, dose, morning_evening, order, structured, ts
from tests.conftest import ServerFixture, TestClock, token_for

ZONE = ZoneInfo("Europe/Copenhagen")
R1 = "facilities/f/residents/r1"
ZONED = r"\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)"  # a time as staff read it


def _drug(o: cpb.Order, atc: str, strength: str) -> cpb.Order:
    o.drug.atc_code, o.drug.strength = atc, strength
    return o


@pytest.fixture
def day(server: ServerFixture, server_clock: TestClock,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """Home f with r1 in room 1: paracetamol morning and evening, morphine PN, two
    ibuprofen orders. The card is mirrored late today; medctl's now is the server's,
    08:30 tomorrow (the day shift, the morning dose due). Yields that day's midnight."""
    server_clock.to_late_evening(ZONE)
    admin = server.client(Role.ADMIN)
    admin.create_facility(fpb.Facility(display_name="Home"), "f")
    admin.create_resident("f", fpb.Resident(person_id="010145-1111", display_name="A",
                                            room="1"), "r1")
    integration = server.client(Role.INTEGRATION, "f")
    integration.call(integration.cards.SyncMedicineCard, cpb.SyncMedicineCardRequest(
        card=cpb.MedicineCard(name=f"{R1}/medicineCard", card_version=1, orders=[
            _drug(order(R1, "para", "Paracetamol", morning_evening("1")), "N02BE01",
                  "500 mg"),
            _drug(order(R1, "pn", "Morfin", structured(
                [dose(K.DOSE_TIME_KIND_ANY, "5", as_needed=True)] * 2),
                mode=common_pb2.DISPENSING_MODE_STAFF_POURED), "N02AA01", "5 mg"),
            _drug(order(R1, "ibu1", "Ibuprofen", morning_evening("1")), "M01AE01", "200 mg"),
            _drug(order(R1, "ibu2", "Ibuprofen", morning_evening("2")), "M01AE01", "400 mg"),
        ]), valid_time=ts(CARD_VALID_FROM)))
    tomorrow = server_clock().astimezone(ZONE).date() + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZONE)
    server_clock.advance(midnight + timedelta(hours=8, minutes=30) - server_clock())
    monkeypatch.setattr(defaults, "CLOCK", server_clock)
    yield midnight


def _run(server: ServerFixture, role: Role, *args: str) -> int:
    from clients.medctl import main

    return main(["--target", server.target, "--token", token_for(role, "f", subject="nina"),
                 *args])


def _one_line(err: str) -> str:
    """The error medctl printed: exactly one line, no traceback."""
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _morning_dose(server: ServerFixture, day: datetime) -> pb.ScheduledDose:
    c = server.client(Role.CARER, "f")
    doses = c.call(c.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
        parent=R1, start_time=ts(day), end_time=ts(day + timedelta(hours=10)))).doses
    return next(d for d in doses if d.order.endswith("/para"))


def test_round_and_dispensing_default_to_today_and_the_shift_on_duty(
        server: ServerFixture, day: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    carer, iso = Role.CARER, day.date().isoformat()
    assert _run(server, carer, "residents", "list", "--facility", "f") == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["1", "r1", "A", "010145-****"]
    assert _run(server, carer, "round", "--facility", "f") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"f  day {iso}  (tider Europe/Copenhagen)") and "Paracetamol" in out
    # i morgen / tomorrow, DD-MM-YYYY, --json after the command.
    nxt = (day + timedelta(days=1)).date()
    for said in ("i morgen", "tomorrow", nxt.strftime("%d-%m-%Y")):
        assert _run(server, carer, "round", "--facility", "f", "--date", said, "--shift",
                    "evening", "--json") == 0
        schedule = json.loads(capsys.readouterr().out)
        assert (schedule["date"], schedule["shift_id"]) == (nxt.isoformat(), "evening")
    assert _run(server, carer, "dispensing", "--facility", "f", "--json") == 0
    lst = json.loads(capsys.readouterr().out)
    assert (lst["date"], lst["shift_id"]) == (iso, "day")
    # Bad input: one line naming what is valid.
    assert _run(server, carer, "round", "--facility", "f", "--date", "32-13-2026") == 2
    assert "DD-MM-YYYY" in _one_line(capsys.readouterr().err)
    assert _run(server, carer, "dispensing", "--facility", "f", "--shift", "brunch") == 2
    assert _one_line(capsys.readouterr().err) == (
        "medctl: --shift: 'brunch' is not a shift of f; its shifts are day, evening, night\n")
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusals: one line too
        _run(server, carer, "round")
    assert exit_.value.code == 2
    assert _one_line(capsys.readouterr().err) == (
        "medctl round: the following arguments are required: --facility (see medctl round "
        "--help)\n")


def test_check_give_correct_and_pn_by_drug_name_with_short_ids(
        server: ServerFixture, day: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    carer, r1 = Role.CARER, ["--facility", "f", "--resident", "r1"]
    for drug in ("paracetamol", "N02BE01"):  # by name (any case) or ATC code
        assert _run(server, carer, "check", *r1, "--drug", drug, "--quantity", "1,0") == 0
        out = capsys.readouterr().out
        assert out.startswith("OK") and re.search(
            rf"  dosis \S+ skal gives {day.date().isoformat()} 08:00 (CET|CEST)\n", out), out
    assert _run(server, carer, "check", *r1, "--drug", "Paracetamol", "--quantity", "1",
                "--json") == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "CHECK_VERDICT_OK"
    # A drug not on the card is the service's to judge; two orders of one drug are not.
    assert _run(server, carer, "check", *r1, "--drug", "Warfarin", "--quantity", "1") == 4
    assert "UNORDERED_DRUG" in capsys.readouterr().out
    assert _run(server, carer, "check", *r1, "--drug", "ibuprofen", "--quantity", "1") == 2
    err = _one_line(capsys.readouterr().err)
    assert "ibu1 (Ibuprofen 200 mg" in err and "ibu2 (Ibuprofen 400 mg" in err \
        and "--order" in err
    assert _run(server, carer, "check", *r1, "--drug", "Paracetamol", "--quantity",
                "en halv") == 2
    assert "--quantity: 'en halv' is not a quantity; write it as 1,5 or 1.5" in \
        _one_line(capsys.readouterr().err)
    assert _run(server, carer, "check", "--resident", "r1", "--drug", "Paracetamol") == 2
    assert "needs --facility" in _one_line(capsys.readouterr().err)

    # Given at twice the dose: refused until acknowledged, and the error says how.
    dose_id = _morning_dose(server, day).dose_id
    assert _run(server, carer, "give", dose_id, *r1, "--quantity", "2") == 1
    err = _one_line(capsys.readouterr().err)
    assert "[CHECK_NOT_ACKNOWLEDGED]" in err and err.rstrip().endswith(
        "registrér den igen med --ack WRONG_DOSE")
    assert _run(server, carer, "give", dose_id, *r1, "--quantity", "2", "--ack",
                "wrong_dose", "--time", "8.05", "--json") == 0
    given = json.loads(capsys.readouterr().out)
    record = given["record"]["name"]
    assert given["record"]["quantity"] == "2" and given["discrepancies"]
    assert datetime.fromisoformat(given["record"]["administration_time"]) == \
        day + timedelta(hours=8, minutes=5)  # --time: facility time, documented afterwards

    assert _run(server, carer, "records", "list", *r1) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:3] == ["TIDSPUNKT", "LÆGEMIDDEL", "UDFALD"]
    assert re.match(ZONED, rows[1]) and "Paracetamol 500 mg" in rows[1] and "givet" in rows[1]
    assert _run(server, carer, "correct", record.rsplit("/", 1)[-1], *r1, "--reason",
                "wrong resident") == 0
    assert capsys.readouterr().out == \
        f"markeret som fejlregistreret: {record} (wrong resident)\n"
    assert _run(server, carer, "records", "list", *r1, "--json") == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["state"] == "RECORD_STATE_ENTERED_IN_ERROR"
    assert _run(server, carer, "correct", "nope", "--reason", "x") == 2
    assert "--resident" in _one_line(capsys.readouterr().err)

    # PN by name: the order's PN quantity by default, now.
    assert _run(server, carer, "pn", *r1, "--drug", "morfin", "--reason", "smerter",
                "--json") == 0
    pn = json.loads(capsys.readouterr().out)["record"]
    assert (pn["outcome"], pn["quantity"], pn["order"], pn["pn_reason"]) == (
        "ADMINISTRATION_OUTCOME_PN_GIVEN", "5", f"{R1}/orders/pn", "smerter")
    assert _run(server, carer, "evaluate", pn["name"].rsplit("/", 1)[-1], *r1, "--effect",
                "good") == 0
    assert capsys.readouterr().out == f"effekt vurderet {pn['name']}: god\n"
    assert _run(server, carer, "pn", *r1, "--drug", "morfin", "--quantity", "5,0",
                "--time", "08:15") == 0
    assert capsys.readouterr().out.startswith(f"registreret {R1}/administrations/")
    assert _run(server, carer, "pn", *r1, "--drug", "morfin", "--time", "25:00") == 2
    assert "--time" in _one_line(capsys.readouterr().err)


def test_pharmacist_admin_and_integration_tasks_and_the_role_each_needs(
        server: ServerFixture, day: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    carer = server.client(Role.CARER, "f")
    morning = _morning_dose(server, day)
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, acknowledged_reasons=["WRONG_DOSE"], record=pb.AdministrationRecord(
            dose_id=morning.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="3",
            route="oral", administration_time=morning.due_time)))
    ph = Role.PHARMACIST

    assert _run(server, ph, "discrepancies", "list", "--facility", "f") == 0
    out = capsys.readouterr().out.splitlines()
    [wrong] = [line for line in out if "WRONG_DOSE" in line]
    assert re.match(ZONED, wrong) and "r1" in wrong and "UTC" not in wrong
    name = wrong.split()[-1]
    assert _run(server, ph, "discrepancies", "get", name.rsplit("/", 1)[-1],
                "--facility", "f") == 0
    shown = capsys.readouterr().out
    assert f"afvigelse:   {name}" in shown and "kode:        WRONG_DOSE" in shown
    assert _run(server, ph, "review", "history", name.rsplit("/", 1)[-1], "--facility",
                "f") == 0
    assert "opdaget" in capsys.readouterr().out
    assert _run(server, ph, "review", "history", "D1") == 2
    assert "--facility" in _one_line(capsys.readouterr().err)
    assert _run(server, ph, "discrepancies", "list", "--facility", "f", "--code",
                "wrong_dose", "--date", "today", "--json") == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["name"] == name
    with pytest.raises(SystemExit):
        _run(server, ph, "discrepancies", "list", "--code", "BOGUS")
    assert "MISSED_DOSE" in _one_line(capsys.readouterr().err)  # names the valid codes

    assert _run(server, ph, "error-rate", "--facility", "f", "--date", "today") == 0
    assert capsys.readouterr().out.endswith(
        ": fejlrate 100,00 % (1 fejl af 1 dosis: 1 givet, 0 ikke givet)\n")
    assert _run(server, ph, "error-rate", "--facility", "f", "--json") == 0
    assert json.loads(capsys.readouterr().out)["errors"] == "1"
    assert _run(server, ph, "error-rate", "--facility", "f", "--month", "2026-13") == 2
    assert "YYYY-MM" in _one_line(capsys.readouterr().err)

    assert _run(server, ph, "reconcile", "--facility", "f", "--json") == 0
    assert "doses_examined" in json.loads(capsys.readouterr().out)
    assert _run(server, Role.CARER, "reconcile", "--facility", "f") == 1
    err = _one_line(capsys.readouterr().err)
    assert "PERMISSION_DENIED" in err and "it takes one of the roles pharmacist, admin" in err

    # Settings: only what is given changes; the role is named when it is the wrong one.
    assert _run(server, Role.CARER, "facilities", "set", "f", "--morning", "07:30") == 1
    err = _one_line(capsys.readouterr().err)
    assert "it takes the role admin" in err and "brug et token med den rolle" in err
    # A shift given replaces its namesake only: the evening and night stay.
    assert _run(server, Role.ADMIN, "facilities", "set", "f", "--shift", "day=07:00-14:45",
                "--json") == 0
    f = json.loads(capsys.readouterr().out)
    assert [s["shift_id"] for s in f["shifts"]] == ["day", "evening", "night"]
    assert f["shifts"][0]["end_time"] == "14:45"
    assert _run(server, Role.ADMIN, "facilities", "set", "f", "--morning", "7.30",
                "--replace-shifts", "--shift", "day=07-15", "--shift", "late=15:00-07:00",
                "--window-daily", "90", "--escalation", "20", "--json") == 0
    f = json.loads(capsys.readouterr().out)
    assert f["medication_times"] == {"morning": "07:30", "noon": "12:00",
                                     "evening": "18:00", "night": "22:00"}
    assert [(s["shift_id"], s["start_time"], s["end_time"]) for s in f["shifts"]] == [
        ("day", "07:00", "15:00"), ("late", "15:00", "07:00")]
    assert (f["timing_windows"]["daily_or_less_minutes"],
            f["timing_windows"]["more_than_daily_minutes"],
            f["alert_escalation_minutes"]) == (90, 60, 20)
    assert _run(server, Role.ADMIN, "facilities", "set", "f", "--night", "25:00") == 2
    assert "--night" in _one_line(capsys.readouterr().err)
    assert _run(server, Role.ADMIN, "facilities", "set", "f") == 2
    assert "nothing to change" in _one_line(capsys.readouterr().err)

    # Orders: by drug name or order id (integrations, which feed the mirror).
    it, r1 = Role.INTEGRATION, ["--facility", "f", "--resident", "r1"]
    assert _run(server, it, "order", "pause", *r1, "--drug", "paracetamol") == 0
    assert capsys.readouterr().out == (
        f"sat på pause {R1}/orders/para (Paracetamol 500 mg): nu pauseret\n")
    assert _run(server, it, "order", "resume", *r1, "--order", "para", "--json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "ORDER_STATE_ACTIVE"
    assert _run(server, it, "order", "discontinue", *r1, "--order", "para", "--reason",
                "stopped by GP") == 0
    assert capsys.readouterr().out.endswith("nu seponeret\n")
    assert _run(server, it, "order", "reverse-discontinuation", *r1, "--order", "para") == 0
    assert capsys.readouterr().out.endswith("nu aktiv\n")
    assert _run(server, Role.CARER, "order", "pause", *r1, "--order", "para") == 1
    assert "it takes the role integration" in _one_line(capsys.readouterr().err)
    assert _run(server, it, "order", "pause", *r1, "--drug", "ibuprofen") == 2
    assert "choose one with --order" in _one_line(capsys.readouterr().err)


def test_bad_token_and_unreachable_service_are_one_line(
        server: ServerFixture, day: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.medctl import main

    assert main(["--target", server.target, "--token", "garbage", "round", "--facility",
                 "f"]) == 1
    assert "--token eller MEDSERVICE_TOKEN" in _one_line(capsys.readouterr().err)
    assert main(["--target", "127.0.0.1:1", "--timeout", "1", "--token", "x",
                 "facilities", "list"]) == 1
    assert "(--target)" in _one_line(capsys.readouterr().err)


def test_medctl_says_its_words_in_danish_by_default_and_in_english_when_asked(
        server: ServerFixture, day: datetime, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers, status words and lines from the catalogue: Danish, or English with --lang en
    (or MEDCTL_LANG=en); --json the same in both."""
    carer = server.client(Role.CARER, "f")
    morning = _morning_dose(server, day)
    carer.call(carer.rounds.RecordDose, pb.RecordDoseRequest(
        parent=R1, acknowledged_reasons=["WRONG_DOSE"], record=pb.AdministrationRecord(
            dose_id=morning.dose_id, outcome=pb.ADMINISTRATION_OUTCOME_GIVEN, quantity="1.5",
            route="oral", administration_time=morning.due_time)))
    r1 = ["--facility", "f", "--resident", "r1"]

    def shown(role: Role, *args: str) -> list[list[str]]:
        assert _run(server, role, *args) == 0
        return [line.split() for line in capsys.readouterr().out.splitlines()]

    for lang, words in (([], {
            "card": ["ORDINATION", "LÆGEMIDDEL", "STYRKE", "ADM.VEJ", "TILSTAND", "DOSERING"],
            "para": ["para", "Paracetamol", "500", "mg", "oral", "anvendelse", "aktiv", "1",
                     "tablet", "morgen", "og", "aften"],
            "records": ["TIDSPUNKT", "LÆGEMIDDEL", "UDFALD", "MÆNGDE", "AF", "TILSTAND",
                        "REGISTRERING"],
            "given": ["givet", "1,5"],
            "review": ["ALVOR", "TILSTAND", "KODE", "SKET", "BEBOER", "AFVIGELSE"],
            "open": ["høj", "åben", "WRONG_DOSE"],
            "rate": "fejlrate 100,00 % (1 fejl af 1 dosis: 1 givet, 0 ikke givet)"}),
            (["--lang", "en"], {
            "card": ["ORDER", "DRUG", "STRENGTH", "ROUTE", "STATE", "DOSAGE"],
            "para": ["para", "Paracetamol", "500", "mg", "oral", "active", "1", "tablet",
                     "morning", "and", "evening"],
            "records": ["TIME", "DRUG", "OUTCOME", "QUANTITY", "BY", "STATE", "RECORD"],
            "given": ["given", "1.5"],
            "review": ["SEVERITY", "STATE", "CODE", "OCCURRED", "RESIDENT", "DISCREPANCY"],
            "open": ["high", "open", "WRONG_DOSE"],
            "rate": "error rate 100.00 % (1 error of 1 dose: 1 given, 0 not given)"})):
        card = shown(Role.CARER, *lang, "card", "get", "r1", "--facility", "f")
        assert card[0] == (["kortversion", "1"] if not lang else ["card", "version", "1"])
        assert card[1] == words["card"] and words["para"] in card
        records = shown(Role.CARER, *lang, "records", "list", *r1)
        assert records[0] == words["records"] and records[1][6:8] == words["given"]
        review = shown(Role.PHARMACIST, *lang, "review", "list", "--facility", "f")
        assert review[0] == words["review"] and review[1][:3] == words["open"]
        rate = shown(Role.PHARMACIST, *lang, "error-rate", "--facility", "f", "--date",
                     "today")
        assert " ".join(rate[0][2:]) == words["rate"]
        # medctl's advice after the server's reason (API errors stay English by design).
        from clients.medctl import main
        assert main(["--target", server.target, "--token", "garbage", *lang, "round",
                     "--facility", "f"]) == 1
        assert _one_line(capsys.readouterr().err).endswith(
            "giv et gyldigt token med --token eller MEDSERVICE_TOKEN\n" if not lang else
            "give a valid token with --token or MEDSERVICE_TOKEN\n")
    # MEDCTL_LANG=en as --lang en; --json is the same in either language.
    assert _run(server, Role.CARER, "records", "list", *r1, "--json") == 0
    as_json = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    monkeypatch.setenv("MEDCTL_LANG", "en")
    assert shown(Role.CARER, "records", "list", *r1)[0][:3] == ["TIME", "DRUG", "OUTCOME"]
    assert _run(server, Role.CARER, "records", "list", *r1, "--json") == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == as_json


def test_a_new_resident_is_shown_with_the_cpr_number_masked(
        day: datetime, server: ServerFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """The terminal shows what the list shows: never the whole CPR number; --json gives the
    resource as the API does."""
    assert _run(server, Role.ADMIN, "residents", "create", "--facility", "f",
                "--person-id", "020245-2222", "--name", "B", "--room", "2", "--id", "r2") == 0
    out = capsys.readouterr().out
    assert "020245-****" in out and "2222" not in out and "r2" in out
    assert _run(server, Role.ADMIN, "--json", "residents", "create", "--facility", "f",
                "--person-id", "030345-3333", "--name", "C", "--id", "r3") == 0
    assert json.loads(capsys.readouterr().out)["name"] == "facilities/f/residents/r3"


def test_not_given_is_dated_at_the_dose_unless_a_time_is_given(
        server: ServerFixture, day: datetime, server_clock: TestClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    r1 = ["--facility", "f", "--resident", "r1", "--reason", "refused"]
    c = server.client(Role.CARER, "f")
    doses = c.call(c.rounds.ListScheduledDoses, pb.ListScheduledDosesRequest(
        parent=R1, start_time=ts(day), end_time=ts(day + timedelta(days=1)))).doses
    para = [d for d in doses if d.order.endswith("/para")]
    ibu = next(d for d in doses if d.order.endswith("/ibu1"))
    server_clock.advance(timedelta(hours=3))  # typed in at 11:30, after the 08:00 round

    def recorded(dose: pb.ScheduledDose) -> datetime:
        records = c.call(c.rounds.ListAdministrationRecords,
                         pb.ListAdministrationRecordsRequest(parent=R1)).records
        [r] = [r for r in records if r.dose_id == dose.dose_id]
        return r.administration_time.ToDatetime(tzinfo=UTC)

    assert _run(server, Role.CARER, "not-given", para[0].dose_id, *r1) == 0
    assert recorded(para[0]) == para[0].due_time.ToDatetime(tzinfo=UTC)  # 08:00, its time
    assert _run(server, Role.CARER, "not-given", ibu.dose_id, *r1, "--time", "9.15") == 0
    assert recorded(ibu) == day + timedelta(hours=9, minutes=15)  # the time given
    # A dose still to come (the evening's, the resident leaves for hospital) is dated now.
    assert _run(server, Role.CARER, "not-given", para[1].dose_id, "--facility", "f",
                "--resident", "r1", "--reason", "resident-absent") == 0
    assert abs(recorded(para[1]) - server_clock()) < timedelta(seconds=1)
    capsys.readouterr()
