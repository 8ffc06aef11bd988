"""`medservice serve --workers N`: N server processes sharing one listening port.

gRPC cannot hand a bound socket to processes forked after it (its core must not be
started before a fork), so each worker builds its own server and binds the port itself
with SO_REUSEPORT; the kernel spreads connections over them (as gRPC's Python
multiprocessing example does). The workers are replicas in one machine: the sweep and the
alert feed already run safely across replicas (the database makes each piece of work
happen once; PostgreSQL's NOTIFY wakes every replica's watchers, and on SQLite the feed
looks at the log twice a second instead, see server.build_server).

The parent binds nothing and serves nothing: it checks the port is free, forks the
workers before any gRPC object exists, passes SIGTERM and SIGINT on to them, and stops
them all should one of them end on its own (a supervisor restarts the whole).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

import structlog

from medservice.settings import Settings

log = structlog.get_logger("medservice.workers")

MAX_WORKERS = 64


def serve_workers(settings: Settings, first_ready: Callable[[object], None] | None = None
                  ) -> int:
    """Run settings.workers server processes on settings.listen until SIGTERM or SIGINT;
    0, or 1 when a worker ended on its own. `first_ready` is called in the first worker
    once it serves (the demo's tokens are printed once)."""
    from medservice.server import ListenError, _check_free, serve

    port = settings.listen.rpartition(":")[2]
    if port == "0":
        raise ListenError("--workers needs a fixed port to share: give --listen HOST:PORT")
    _check_free(settings.listen)
    if settings.http_listen:  # the workers share it too (SO_REUSEPORT): it must be ours alone
        if settings.http_listen.rpartition(":")[2] == "0":
            raise ListenError("--workers needs a fixed HTTP port to share: set "
                              "MEDSERVICE_HTTP_LISTEN to HOST:PORT, or empty for none")
        _check_free(settings.http_listen)
    context = multiprocessing.get_context("fork")  # closures and settings go as they are

    def run(index: int) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):  # not the parent's (below) until serve's
            signal.signal(sig, signal.SIG_DFL)
        serve(settings, on_ready=first_ready if index == 0 else None)

    workers: list[BaseProcess] = [context.Process(target=run, args=(i,), name=f"worker-{i}")
                                  for i in range(settings.workers)]
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        for w in workers:
            if w.pid is not None and w.exitcode is None:
                os.kill(w.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    for w in workers:
        w.start()
    log.info("workers started", workers=len(workers), listen=settings.listen)
    ended_alone = False
    while any(w.is_alive() for w in workers):
        for w in workers:
            w.join(0.2)
            if not w.is_alive() and not stopping.is_set():
                log.error("a worker ended; stopping the others", worker=w.name,
                          exitcode=w.exitcode)
                ended_alone = True
                stop()
    return 1 if ended_alone else 0

