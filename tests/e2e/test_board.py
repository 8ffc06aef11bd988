"""The shift lead's live board at /board (issue 17) in a real headless browser (Debian's
chromium, driven through chromedriver by selenium), on SQLite and PostgreSQL: alerts arrive
live with Danish texts and the facility's local times, acknowledging removes them on the
board and in the server, and a stream that ends (the connection's age, a server restart)
resumes with Last-Event-ID and shows nothing twice.

Without chromium the browser tests skip, unless MEDSERVICE_REQUIRE_BROWSER=1 (CI), where
that is a failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import Engine

from medservice.api.auth import TokenVerifier
from medservice.domain.access import Role
from medservice.server import build_server
from medservice.service.sweeper import Sweeper
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.store import tables
from tests.conftest import TEST_SETTINGS, TestClock, token_for
from tests.e2e.test_alerts import ZONE, set_now, tomorrow_at
from tests.e2e.test_http import ADMIN, LEAD, Http, make_ward, ok

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

REQUIRE_BROWSER_ENV = "MEDSERVICE_REQUIRE_BROWSER"
WAIT_SECONDS = 15.0


def _browser_or_skip() -> tuple[str, str]:
    """chromium and chromedriver, or a skip (a failure where the browser is required)."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromium-driver", driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        why = (f"the board's browser test needs {', '.join(missing)}: "
               "apt-get install -y chromium chromium-driver")
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but {why}")
        pytest.skip(why)
    assert chromium is not None and driver is not None
    return chromium, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1200,900", "--lang=da-DK"):
        options.add_argument(flag)
    # The given driver: selenium then fetches nothing (this machine reaches no browser site).
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


class Board:
    """The page in the browser, as a shift lead sees and uses it."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    def open(self, token: str, facility: str = "f") -> None:
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.base}/board?facility={facility}")
        self.driver.execute_script("sessionStorage.clear()")  # a token of a test before
        self.driver.refresh()
        self.driver.find_element(By.ID, "token").send_keys(token)
        self.driver.find_element(By.ID, "connect").click()

    def wait(self, what: Callable[[], Any], message: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.05).until(
            lambda _: what(), message)

    def state(self) -> str:
        return str(self.driver.execute_script(
            "return document.getElementById('connection').dataset.state"))

    def wait_live(self) -> None:
        self.wait(lambda: self.state() == "live", "the board did not go live")

    def alerts(self) -> list[dict[str, str]]:
        """What each alert on the board shows, top to bottom."""
        shown: list[dict[str, str]] = self.driver.execute_script("""
            return Array.from(document.querySelectorAll('#alerts li.alert'), li => ({
              name: li.dataset.name, kind: li.querySelector('h2').textContent,
              resident: li.querySelector('.resident').textContent,
              due: li.querySelector('.due').textContent,
              when: li.querySelector('.when').textContent,
              summary: li.querySelector('.summary')?.textContent ?? '',
              problem: li.querySelector('.problem').hidden ? ''
                       : li.querySelector('.problem').textContent}))""")
        return shown

    def wait_alerts(self, count: int) -> list[dict[str, str]]:
        """The alerts once `count` are shown and each has its resident and due time."""

        def settled() -> tuple[list[dict[str, str]]] | None:
            shown = self.alerts()
            done = len(shown) == count and all(
                not a["resident"].endswith("…") and a["due"] for a in shown)
            return (shown,) if done else None  # a tuple: an empty board is an answer too

        return list(self.wait(settled, f"the board did not show {count} alerts")[0])

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.driver.execute_script("return window.medserviceBoard")
        return stats

    def acknowledge(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(
            By.CSS_SELECTOR, f'li.alert[data-name="{name}"] button.acknowledge').click()

    def text(self, element_id: str) -> str:
        return str(self.driver.execute_script(
            f"return document.getElementById('{element_id}').textContent"))

    def login_problem(self) -> str:
        return str(self.wait(lambda: self.driver.execute_script(
            "const p = document.getElementById('login-problem');"
            "return p && !p.hidden && !document.getElementById('login').hidden"
            " ? p.textContent : null"), "no problem was shown at the login"))


@pytest.fixture
def board_server(engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
                 server_clock: TestClock) -> Iterator[Http]:
    settings = replace(TEST_SETTINGS, http_listen="127.0.0.1:0", database_url=str(engine.url))
    running = build_server(settings, uow, verifier, server_clock, engine=engine)
    with httpx.Client(timeout=10) as client:
        http = Http(running, f"http://127.0.0.1:{running.http_port}", client)
        try:
            yield make_ward(http, server_clock)
        finally:
            http.running.stop(0)


def local(at: str) -> str:
    """How the board writes an instant: the facility's local time and zone."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(ZONE)
    return f"{moment:%d.%m.%Y} kl. {moment:%H:%M} {moment.tzname()}"


def unacknowledged(http: Http) -> dict[str, dict[str, Any]]:
    listed = ok(http.call("GET", "/v1/facilities/f/alerts", LEAD,
                          params={"unacknowledged_only": "true"})).get("alerts", [])
    return {a["name"]: a for a in listed}


def test_the_board_is_served_with_its_own_files_only(board_server: Http) -> None:
    """No browser needed: the page, its script and style, and what the page may do."""
    http = board_server
    page = http.call("GET", "/board")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="/board/board.js"' in page.text and 'lang="da"' in page.text
    policy = page.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = http.call("GET", "/board/board.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "sessionStorage" in script.text and "last-event-id" in script.text
    assert http.call("GET", "/board/board.css").headers["content-type"].startswith("text/css")
    # Discrepancy codes in the Danish of the server's one catalogue, by their API names;
    # every code of the API has its words.
    codes = ok(http.call("GET", "/board/texts.json"))["discrepancyCode"]
    assert codes["DISCREPANCY_CODE_MISSED_DOSE"] == "Glemt dosis"
    assert codes["DISCREPANCY_CODE_PN_NOT_EVALUATED"] == "PN-effekt ikke evalueret"
    from medservice.v1 import discrepancies_pb2

    assert set(codes) == set(discrepancies_pb2.DiscrepancyCode.keys()) - {
        "DISCREPANCY_CODE_UNSPECIFIED"}
    assert http.call("GET", "/board/../pyproject.toml").status_code == 404
    assert http.call("GET", "/board/secrets.py").status_code == 404
    assert http.call("POST", "/board").status_code == 404


def test_alerts_arrive_live_and_acknowledging_removes_them(
        browser: WebDriver, board_server: Http, server_clock: TestClock) -> None:
    http = board_server
    board = Board(browser, http.base)
    board.open(LEAD)
    board.wait_live()
    from selenium.webdriver.common.by import By

    assert not browser.find_element(By.ID, "login").is_displayed()
    assert browser.find_element(By.ID, "board").is_displayed()
    assert board.text("title") == "Alarmer – Home"
    assert board.text("zone") == "Alle tider er lokal tid (Europe/Copenhagen)."
    assert board.alerts() == [] and board.text("empty") == "Ingen ukvitterede alarmer."
    # The token lives in the tab's sessionStorage, never in the address.
    assert browser.execute_script("return sessionStorage.getItem('medservice.board.token')") \
        == LEAD
    assert LEAD not in browser.current_url

    set_now(server_clock, tomorrow_at(server_clock, 9, 5))  # the morning doses were missed
    http.running.sweeper.run_once()
    shown = board.wait_alerts(2)
    server = unacknowledged(http)
    assert {a["name"] for a in shown} == set(server)
    by_resident = {server[a["name"]]["resident"]: a for a in shown}
    first = by_resident["facilities/f/residents/r1"]
    assert first["kind"] == "Glemt dosis" and first["summary"] == ""  # all said in Danish
    assert first["resident"] == "Beboer: r1, værelse 1"
    made = server[first["name"]]
    assert first["when"].startswith(f"Opstået: {local(made['createTime'])} · Vagt: ")
    assert "Alvor: " in first["when"]
    missed = ok(http.call("GET", f"/v1/{made['discrepancy']}", LEAD))
    assert first["due"] == f"Dosis planlagt: {local(missed['occurrenceTime'])}"
    assert "010145" not in browser.page_source  # no person identifier on the ward's screen
    assert board.stats()["alertEvents"] == 2  # they came over the stream, not a reload

    board.acknowledge(first["name"])
    left = board.wait_alerts(1)
    assert left[0]["name"] == by_resident["facilities/f/residents/r2"]["name"]
    # The server agrees: acknowledged by the lead whose token the board holds.
    assert set(unacknowledged(http)) == {left[0]["name"]}
    done = ok(http.call("GET", "/v1/facilities/f/alerts", LEAD))["alerts"]
    acknowledged = next(a for a in done if a["name"] == first["name"])
    assert acknowledged["acknowledged"] and acknowledged["acknowledgedBy"] == "lead-1"
    events = ok(http.call("GET", "/v1/facilities/f/auditEvents", ADMIN, params={
        "method": "/medservice.v1.AlertService/AcknowledgeAlert"}))["events"]
    assert [(e["resource"], e["subject"], e["outcome"], bool(e.get("requestId")))
            for e in events] == [(first["name"], "lead-1", "OK", True)]

    # Acknowledged meanwhile by another lead: the board's own acknowledgement still
    # removes it, and the first acknowledgement stands.
    other = token_for(Role.SHIFT_LEAD, "f", subject="lead-2")
    ok(http.call("POST", f"/v1/{left[0]['name']}:acknowledge", other,
                 body={"requestId": str(uuid.uuid4())}))
    board.acknowledge(left[0]["name"])
    board.wait_alerts(0)
    assert browser.execute_script("return document.getElementById('empty').hidden") is False
    done = ok(http.call("GET", "/v1/facilities/f/alerts", LEAD))["alerts"]
    assert next(a for a in done if a["name"] == left[0]["name"])["acknowledgedBy"] == "lead-2"
    # Reloaded, the board keeps its token (the tab's sessionStorage) and shows none of
    # them: the list it starts from agrees.
    browser.refresh()
    board.wait_live()
    assert board.alerts() == [] and board.stats()["lists"] == 1


def test_a_stream_ended_by_the_connection_age_resumes_and_shows_nothing_twice(
        browser: WebDriver, engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
        server_clock: TestClock) -> None:
    """The server ends every stream after a second (its connections' maximum age): the board
    comes back with Last-Event-ID each time, and no alert is sent or shown twice."""
    settings = replace(TEST_SETTINGS, http_listen="127.0.0.1:0", database_url=str(engine.url),
                       max_connection_age_seconds=1, max_connection_age_grace_seconds=1)
    running = build_server(settings, uow, verifier, server_clock, engine=engine)
    try:
        with httpx.Client(timeout=10) as client:
            http = make_ward(Http(running, f"http://127.0.0.1:{running.http_port}", client),
                             server_clock)
            board = Board(browser, http.base)
            board.open(LEAD)
            board.wait_live()
            set_now(server_clock, tomorrow_at(server_clock, 9, 5))
            running.sweeper.run_once()
            morning = board.wait_alerts(2)
            connects = board.stats()["connects"]
            board.wait(lambda: board.stats()["connects"] >= connects + 2,
                       "the board did not reconnect after its streams ended")
            set_now(server_clock, tomorrow_at(server_clock, 19, 30))
            running.sweeper.run_once()
            shown = board.wait_alerts(4)
            board.wait(lambda: board.stats()["connects"] >= connects + 4,
                       "the board did not keep reconnecting")
            shown = board.alerts()
            names = [a["name"] for a in shown]
            assert len(set(names)) == 4 and set(names) == set(unacknowledged(http))
            assert {a["name"] for a in morning} < set(names)
            # Each alert came over a stream once: every resume started after the last one.
            assert board.stats()["alertEvents"] == 4
    finally:
        running.stop(0)


def test_a_server_restart_resumes_where_the_board_was(
        browser: WebDriver, board_server: Http, engine: Engine, uow: UnitOfWorkFactory,
        verifier: TokenVerifier, server_clock: TestClock) -> None:
    """The server goes away and comes back on the same address; what was swept while it was
    down reaches the board on reconnect (replayed from Last-Event-ID), once."""
    http = board_server
    board = Board(browser, http.base)
    board.open(LEAD)
    board.wait_live()
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    http.running.sweeper.run_once()
    morning = board.wait_alerts(2)
    board.acknowledge(morning[0]["name"])
    board.wait_alerts(1)
    port = http.running.http_port
    http.running.stop(0)
    board.wait(lambda: board.state() == "waiting", "the board did not see the server go")
    # Swept while no server runs (another replica's sweep, say).
    set_now(server_clock, tomorrow_at(server_clock, 19, 30))
    Sweeper(uow, server_clock, 0).run_once()
    settings = replace(TEST_SETTINGS, http_listen=f"127.0.0.1:{port}",
                       database_url=str(engine.url))
    http.running = build_server(settings, uow, verifier, server_clock, engine=engine)
    shown = board.wait_alerts(3)
    board.wait_live()
    names = [a["name"] for a in shown]
    assert set(names) == set(unacknowledged(http)) and morning[0]["name"] not in names
    stats = board.stats()
    assert stats["connects"] == 2 and stats["alertEvents"] == 4  # the evening two, replayed
    board.acknowledge(names[0])
    assert len(board.wait_alerts(2)) == 2
    assert names[0] not in unacknowledged(http)


def test_a_resume_point_the_log_cannot_serve_starts_again_from_the_list(
        browser: WebDriver, board_server: Http, engine: Engine, uow: UnitOfWorkFactory,
        verifier: TokenVerifier, server_clock: TestClock) -> None:
    """The server comes back on a database restored from before the board's last event: the
    resume is refused (OUT_OF_RANGE), and the board watches from now and shows what the list
    says, not what it had."""
    http = board_server
    board = Board(browser, http.base)
    board.open(LEAD)
    board.wait_live()
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    http.running.sweeper.run_once()
    board.wait_alerts(2)
    port = http.running.http_port
    http.running.stop(0)
    board.wait(lambda: board.state() == "waiting", "the board did not see the server go")
    with engine.begin() as conn:  # the "restore": the same home, no alerts yet
        for table in reversed(tables.metadata.sorted_tables):
            if table is not tables.audit_events:  # append-only, and no part of the point
                conn.execute(table.delete())
    settings = replace(TEST_SETTINGS, http_listen="127.0.0.1:0", database_url=str(engine.url))
    aside = build_server(settings, uow, verifier, server_clock, engine=engine)
    with httpx.Client(timeout=10) as client:
        set_now(server_clock, tomorrow_at(server_clock, 0, 0) - timedelta(minutes=30))
        make_ward(Http(aside, f"http://127.0.0.1:{aside.http_port}", client), server_clock)
    aside.stop(0)
    http.running = build_server(replace(settings, http_listen=f"127.0.0.1:{port}"), uow,
                                verifier, server_clock, engine=engine)
    board.wait_alerts(0)
    board.wait_live()
    assert board.stats()["connects"] == 2 and unacknowledged(http) == {}
    set_now(server_clock, tomorrow_at(server_clock, 9, 5))
    http.running.sweeper.run_once()
    shown = board.wait_alerts(2)
    assert {a["name"] for a in shown} == set(unacknowledged(http))
    assert board.stats()["alertEvents"] == 4


class FreezingRelay:
    """A TCP relay in front of the HTTP port that can freeze the connections carrying an
    alert watch: nothing more passes either way and neither end is told, as when a ward's
    network path dies without closing. Other connections pass as before."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._links: list[dict[str, bool]] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self._target))
            link = {"watch": False, "frozen": False}
            self._links.append(link)
            self._sockets += [client, upstream]
            for source, target, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, target, link, up),
                                 daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, link: dict[str, bool],
              up: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if up and b"alerts:watch" in data:
                    link["watch"] = True
                if not link["frozen"]:
                    target.sendall(data)
            if not link["frozen"]:
                target.shutdown(socket.SHUT_WR)

    def freeze_watches(self) -> int:
        frozen = [link for link in self._links if link["watch"]]
        for link in frozen:
            link["frozen"] = True
        return len(frozen)

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            s.close()


def test_a_stream_gone_silent_is_opened_again(browser: WebDriver, board_server: Http,
                                              server_clock: TestClock) -> None:
    """No byte, not even a heartbeat, for three heartbeat gaps: the board takes the stream
    for dead, opens it again with Last-Event-ID and gets what went down the dead path."""
    http = board_server
    relay = FreezingRelay(http.running.http_port)
    try:
        board = Board(browser, f"http://127.0.0.1:{relay.port}")
        board.open(LEAD)
        board.wait_live()
        board.wait(lambda: board.stats()["heartbeats"] >= 3, "no heartbeats")
        assert relay.freeze_watches() == 1
        set_now(server_clock, tomorrow_at(server_clock, 9, 5))
        http.running.sweeper.run_once()  # the alerts go down the frozen connection
        shown = board.wait_alerts(2)
        assert {a["name"] for a in shown} == set(unacknowledged(http))
        stats = board.stats()
        assert stats["stalls"] == 1 and stats["connects"] == 2, stats
        assert stats["alertEvents"] == 2  # replayed on the new stream, once
    finally:
        relay.close()


def test_the_board_says_why_it_cannot_show_alerts(browser: WebDriver,
                                                  board_server: Http) -> None:
    board = Board(browser, board_server.base)
    board.open("not-a-token")
    assert board.login_problem() == "Adgangstokenet er ugyldigt eller udløbet. Indsæt et nyt."
    board.open(token_for(Role.CARER, "f"))  # a carer does not watch alerts
    assert board.login_problem() \
        == "Dette token giver ikke adgang til alarmerne på plejehjemmet f."
    board.open(token_for(Role.SHIFT_LEAD, "g"))  # another facility's lead
    assert board.login_problem() \
        == "Dette token giver ikke adgang til alarmerne på plejehjemmet f."
    board.open(token_for(Role.SHIFT_LEAD, "nowhere"), facility="nowhere")
    assert board.login_problem() == "Plejehjemmet nowhere findes ikke."
    assert board.stats()["connects"] == 0
    # An administrator may watch; a token pasted with its scheme works as well.
    board.open(f"Bearer {ADMIN}")
    board.wait_live()
