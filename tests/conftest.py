"""Shared fixtures: a migrated database on SQLite always and on PostgreSQL when
MEDSERVICE_TEST_POSTGRES_URL is given, and a real gRPC server on a free port.

Each PostgreSQL run creates its own database and drops it afterwards: the server keeps
what earlier runs left, and tests never assume an empty one. MEDSERVICE_REQUIRE_POSTGRES=1
(CI) turns "PostgreSQL not given or not reachable" into a failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from clients.client import MedClient
from medservice.api.auth import TokenVerifier, mint_token
from medservice.domain.access import Role
from medservice.logs import configure_logging
from medservice.server import RunningServer, build_server
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.settings import Settings
from medservice.store import tables
from medservice.store.db import make_engine, normalise_url
from medservice.store.migrate import upgrade
from medservice.store.uow import uow_factory

PG_URL_ENV = "MEDSERVICE_TEST_POSTGRES_URL"
REQUIRE_PG_ENV = "MEDSERVICE_REQUIRE_POSTGRES"
TEST_SECRET = "test-secret-for-the-suite-only-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging("console", "info")


def _postgres_admin_url() -> str | None:
    url = os.environ.get(PG_URL_ENV, "")
    if not url:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but {PG_URL_ENV} is not set")
        return None
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test copies the file (cheaper than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    admin_url = _postgres_admin_url()
    if admin_url is None:
        yield None
        return
    name = f"medservice_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # unreachable server, bad credentials
        admin.dispose()
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"PostgreSQL at {PG_URL_ENV} is not reachable: {e}")
        pytest.skip(f"PostgreSQL not reachable: {e}")
    url = make_url(normalise_url(admin_url)).set(database=name).render_as_string(
        hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_postgres(postgres_database: str | None) -> Iterator[str]:
    """A PostgreSQL database of its own with no schema at all, dropped afterwards."""
    if postgres_database is None:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    base = make_url(normalise_url(postgres_database))
    name = f"{base.database}_empty"
    admin = create_engine(base.render_as_string(hide_password=False),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "medservice.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    if url is None:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    return str(url)


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        names = ", ".join(t.name for t in reversed(tables.metadata.sorted_tables))
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    if eng.dialect.name == "postgresql":
        _truncate(eng)
    eng.dispose()


@pytest.fixture
def uow(engine: Engine) -> UnitOfWorkFactory:
    return uow_factory(engine)


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(hmac_secret=TEST_SECRET)


def token_for(role: Role, *facilities: str, subject: str | None = None,
              ttl: timedelta = timedelta(hours=1)) -> str:
    return mint_token(TEST_SECRET, subject=subject or f"test-{role.value}", role=role,
                      facilities=list(facilities) or ["*"], ttl=ttl)


@dataclass
class ServerFixture:
    running: RunningServer
    target: str
    uow: UnitOfWorkFactory
    clients: list[MedClient]

    def client(self, role: Role, *facilities: str, subject: str | None = None) -> MedClient:
        c = MedClient(self.target, token_for(role, *facilities, subject=subject), timeout=10)
        self.clients.append(c)
        return c

    def anonymous(self) -> MedClient:
        c = MedClient(self.target, "", timeout=10)
        self.clients.append(c)
        return c


class TestClock:
    __test__ = False  # a helper, not a test class
    """The server's clock in tests: real time, moved on by `advance` (a window closing)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by

    def to_late_evening(self, zone: ZoneInfo) -> None:
        """23:30 local of the real today: a card mirrored then has no dose of today still
        to come, whatever the hour the tests run at. (Mirrored at 00:30, today's morning
        and evening doses would be missed by tomorrow's round as well.)"""
        today = datetime.now(zone).date()
        self.offset += datetime.combine(today, time(23, 30), zone) - self()


@pytest.fixture
def server_clock() -> TestClock:
    return TestClock()


# No background work unless a test asks for it: the sweep runs when a test says, and no
# webhook deliverers look at the database (tests/e2e/test_webhooks.py turns them on).
TEST_SETTINGS = Settings(listen="127.0.0.1:0", http_listen="", worker_threads=16,
                         max_concurrent_rpcs=64, sweep_interval_seconds=0,
                         alert_heartbeat_seconds=0.5, webhook_workers=0)


@pytest.fixture
def server_settings() -> Settings:
    return TEST_SETTINGS


@pytest.fixture
def server(engine: Engine, uow: UnitOfWorkFactory, verifier: TokenVerifier,
           server_settings: Settings, server_clock: TestClock) -> Iterator[ServerFixture]:
    # With its engine, as `medservice serve` builds it (the audit appender, the metrics).
    running = build_server(replace(server_settings, database_url=str(engine.url)), uow, verifier,
                           server_clock, engine=engine)
    fixture = ServerFixture(running, f"127.0.0.1:{running.port}", uow, [])
    yield fixture
    for c in fixture.clients:
        c.close()
    running.stop(0)


@pytest.fixture
def make_client(server: ServerFixture) -> Callable[..., MedClient]:
    return server.client
