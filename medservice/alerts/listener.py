"""LISTEN on PostgreSQL: every replica hears each commit that appended alerts (NOTIFY is
sent in the appending transaction, so it is delivered at commit) and wakes its feed."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from sqlalchemy.engine import make_url

from medservice.store.alerts import CHANNEL

log = structlog.get_logger("medservice.alerts")


def libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class PgListener:
    """A dedicated connection that LISTENs and calls `on_notify(facility_id)`; after each
    (re)connect it calls `on_connect()`, since notifications sent meanwhile are lost."""

    def __init__(self, database_url: str, on_notify: Callable[[str], None],
                 on_connect: Callable[[], None]) -> None:
        self._url = libpq_url(database_url)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        # Imported here: a server on SQLite never listens, and never loads the driver.
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._on_connect()
                    while not self._stopped.is_set():
                        for n in conn.notifies(timeout=1.0):
                            self._on_notify(n.payload)
            except psycopg.Error as e:
                log.warning("alert listener reconnecting", error=type(e).__name__)
                self._stopped.wait(1.0)
