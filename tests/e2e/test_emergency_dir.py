"""Emergency lists written ahead (MEDSERVICE_EMERGENCY_DIR): a server with the folder set
writes every facility's current and coming shifts' lists there, each a whole PDF, and
removes lists older than two days. Instants derive from the server clock's now."""

from __future__ import annotations

import io
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from medservice.demo import seed_demo
from medservice.domain.clock import FacilityClock
from medservice.domain.facility import Facility
from medservice.reports.ahead import coming_shifts, write_atomically
from medservice.settings import Settings
from tests.conftest import TEST_SETTINGS, ServerFixture, TestClock

ZONE = ZoneInfo("Europe/Copenhagen")


@pytest.fixture
def server_settings(tmp_path: Path) -> Settings:
    return replace(TEST_SETTINGS, emergency_dir=str(tmp_path / "lists"),
                   emergency_interval_seconds=3600)


def test_the_server_writes_the_coming_shifts_lists(server: ServerFixture,
                                                   server_clock: TestClock,
                                                   tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    old = folder / "demo" / "2000-01-01-day.pdf"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"%PDF old")
    three_days_ago = time.time() - 3 * 86400
    os.utime(old, (three_days_ago, three_days_ago))
    now = server_clock()
    assert seed_demo(server.uow, now)
    writer = server.running.emergency_lists
    assert writer is not None and writer.folder == folder
    report = writer.run_once()
    assert (report.written, report.failed) == (3, 0)
    assert not old.exists()  # removed by this run or the one at start-up
    expected = [f"{day.isoformat()}-{shift}.pdf" for day, shift in coming_shifts(
        FacilityClock.from_facility(Facility("demo", "x")), now, 3)]
    assert sorted(p.name for p in (folder / "demo").iterdir()) == sorted(expected)
    first = folder / "demo" / expected[0]
    text = " ".join(PdfReader(io.BytesIO(first.read_bytes())).pages[0].extract_text().split())
    assert "Nødliste" in text and "Værelse 101 · Karen Testesen (r01)" in text


def test_coming_shifts_start_with_the_one_running() -> None:
    clock = FacilityClock.from_facility(Facility("f", "x"))
    today = datetime.now(ZONE).date()
    afternoon = datetime.combine(today, datetime.min.time(), ZONE) + timedelta(hours=14)
    assert coming_shifts(clock, afternoon.astimezone(UTC), 3) == [
        (today, "day"), (today, "evening"), (today, "night")]
    small_hours = afternoon - timedelta(hours=12)  # 02:00: yesterday's night shift runs
    assert coming_shifts(clock, small_hours, 4) == [
        (today - timedelta(days=1), "night"), (today, "day"), (today, "evening"),
        (today, "night")]


def test_a_list_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "f" / "list.pdf"
    write_atomically(path, b"first")
    write_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["list.pdf"]  # no temporary left
